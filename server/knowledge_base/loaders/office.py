"""Loaders for Office Open XML files: docx, xlsx and pptx; pictures in docx and pptx are read by OCR."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from server.knowledge_base.loaders.ocr import ocr_picture
from server.knowledge_base.loaders.tables import render_sheet, render_table
from server.knowledge_base.types import LoadedDoc, LoadOptions, loaded_doc

if TYPE_CHECKING:
    from docx.table import Table
    from docx.text.paragraph import Paragraph
    from pptx.shapes.base import BaseShape

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*([1-9])$", re.I)


def check_zip(path: Path, source: str, kind: str) -> None:
    """Office files are zip archives; say so plainly instead of surfacing a parser traceback."""
    from server.knowledge_base.loaders import UnreadableFile

    if not zipfile.is_zipfile(path):
        raise UnreadableFile(source, f"not a valid {kind} file (corrupt, or another format renamed to .{kind})")


# ---------------------------------------------------------------- docx


def load_docx(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """A Word document as one LoadedDoc: paragraphs in order, headings as '#' lines, tables as
    'header: value' rows, and the OCR text of pictures after the paragraph that holds them."""
    import docx

    check_zip(path, source, "docx")
    document = docx.Document(str(path))
    blocks: list[str] = []
    pictures = _DocxPictures(document, options)
    for item in document.iter_inner_content():
        if isinstance(item, docx.table.Table):
            rendered = render_table(list(_docx_table_rows(item)))
            if rendered.text:
                blocks.append(rendered.text)
            continue
        text = item.text.strip()
        blocks.extend(pictures.texts(item))
        if not text:
            continue
        level = _heading_level(item)
        if level:
            blocks.append(f"{'#' * level} {' '.join(text.split())}")
        elif (item.style.name if item.style is not None else "").lower().startswith("list"):
            blocks.append(f"- {text}")
        else:
            blocks.append(text)
    title = (document.core_properties.title or "").strip()
    doc = loaded_doc("\n\n".join(blocks), source, title)
    if pictures.read:
        doc.metadata["ocr"] = True
    return [doc]


class _DocxPictures:
    """OCR of the pictures a paragraph shows, each picture read once however often it is shown."""

    def __init__(self, document: object, options: LoadOptions) -> None:
        self.part = getattr(document, "part")
        self.options = options
        self.seen: set[str] = set()
        self.read = False
        ids = self.part.element.xpath(".//a:blip/@r:embed") if options.ocr else []
        self.total = len(set(ids))

    def texts(self, paragraph: Paragraph) -> list[str]:
        if not self.options.ocr:
            return []
        found = []
        for rid in paragraph._p.xpath(".//a:blip/@r:embed"):
            if rid in self.seen or rid not in self.part.related_parts:
                continue
            self.options.ocr_page(len(self.seen), self.total)
            self.seen.add(rid)
            text = ocr_picture(self.part.related_parts[rid].blob)
            if text:
                found.append(text)
                self.read = True
        return found


def _heading_level(paragraph: Paragraph) -> int:
    style = paragraph.style.name if paragraph.style is not None else ""
    if style.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(style.strip())
    return int(match.group(1)) if match else 0


def _docx_table_rows(table: Table) -> Iterator[list[str]]:
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(cell.text)
        yield cells


# ---------------------------------------------------------------- xlsx


def load_xlsx(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """An Excel workbook: one LoadedDoc per table of each sheet (``render_sheet``), rows as 'header: value; ...'
    lines, its title rows as its heading path."""
    import openpyxl

    check_zip(path, source, "xlsx")
    workbook = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    try:
        docs: list[LoadedDoc] = []
        for sheet in workbook.worksheets:
            tables = render_sheet([list(row) for row in sheet.iter_rows(values_only=True)], sheet.min_row or 1)
            docs.extend(t.doc(source, sheet=sheet.title) for t in tables if t.text.strip())
        return docs
    finally:
        workbook.close()


# ---------------------------------------------------------------- pptx


def load_pptx(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """A PowerPoint deck: one LoadedDoc per slide with text (title first, text frames, tables, the OCR text
    of pictures, notes)."""
    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    check_zip(path, source, "pptx")
    presentation = Presentation(str(path))
    docs = []
    slides = list(presentation.slides)
    for number, slide in enumerate(slides, start=1):
        if options.ocr:
            options.ocr_page(number - 1, len(slides))
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        blocks = [title] if title else []
        read_by_ocr = False
        for shape in _shapes(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            texts = _shape_text(shape, options)
            read_by_ocr = read_by_ocr or (bool(texts) and shape.shape_type == MSO_SHAPE_TYPE.PICTURE)
            blocks.extend(texts)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                blocks.append(f"Notes: {notes.text.strip()}")
        text = "\n\n".join(block for block in blocks if block.strip())
        if not text:
            continue
        doc = loaded_doc(text, source, title, slide=number)
        if read_by_ocr:
            doc.metadata["ocr"] = True
        docs.append(doc)
    if options.ocr:
        options.ocr_page(len(slides), len(slides))
    return docs


def _shapes(shapes: Iterable[BaseShape]) -> Iterator[BaseShape]:
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if isinstance(shape, GroupShape):
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _shape_text(shape: BaseShape, options: LoadOptions) -> list[str]:
    from pptx.shapes.autoshape import Shape
    from pptx.shapes.graphfrm import GraphicFrame
    from pptx.shapes.picture import Picture

    if isinstance(shape, Picture) and options.ocr:
        try:
            blob = shape.image.blob
        except (ValueError, KeyError, AttributeError):  # a linked, not embedded, picture
            return []
        text = ocr_picture(blob)
        return [text] if text else []
    if isinstance(shape, GraphicFrame) and shape.has_table:
        rendered = render_table([[cell.text for cell in row.cells] for row in shape.table.rows])
        return [rendered.text] if rendered.text else []
    if isinstance(shape, Shape) and shape.has_text_frame:
        lines = [p.text.strip() for p in shape.text_frame.paragraphs]
        text = "\n".join(line for line in lines if line)
        return [text] if text else []
    return []


__all__ = ["load_docx", "load_pptx", "load_xlsx"]
