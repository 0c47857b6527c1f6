"""OpenDocument loaders through odfpy: text (.odt), presentations (.odp) and spreadsheets (.ods)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server.knowledge_base.loaders.office import check_zip
from server.knowledge_base.loaders.tables import render_sheet, render_table
from server.knowledge_base.types import LoadedDoc, LoadOptions, loaded_doc

# A row or cell repeated this often is a formatting run to the sheet's end, not data.
_MAX_REPEAT = 1000


def _opendocument(path: Path, source: str, kind: str) -> Any:
    from odf.opendocument import load

    check_zip(path, source, kind)
    return load(str(path))


def _text(element: Any) -> str:
    from odf import teletype

    return " ".join(str(teletype.extractText(element)).split())


def _qname(element: Any) -> str:
    return str(getattr(element, "qname", ("", ""))[1])


def load_odt(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """An ODF text document as one LoadedDoc: headings as '#' lines, lists as '- ' lines, tables by rows."""
    document = _opendocument(path, source, "odt")
    blocks = list(_odt_blocks(document.text))
    title = _meta_title(document)
    return [loaded_doc("\n\n".join(b for b in blocks if b.strip()), source, title)]


def _odt_blocks(parent: Any) -> Iterator[str]:
    for node in parent.childNodes:
        name = _qname(node)
        if name == "h":
            level = int(node.getAttribute("outlinelevel") or 1)
            text = _text(node)
            if text:
                yield f"{'#' * min(level, 6)} {text}"
        elif name == "p":
            yield _text(node)
        elif name == "list":
            items = [_text(item) for item in node.childNodes if _qname(item) == "list-item"]
            yield "\n".join(f"- {item}" for item in items if item)
        elif name == "table":
            yield render_table(_table_rows(node)).text
        elif name in ("section", "soft-page-break", "sequence-decls", "tracked-changes"):
            yield from _odt_blocks(node)


def _meta_title(document: Any) -> str | None:
    from odf import dc

    titles = document.meta.getElementsByType(dc.Title) if document.meta is not None else []
    text = _text(titles[0]) if titles else ""
    return text or None


def _table_rows(table: Any) -> list[list[str]]:
    rows: list[list[str]] = []
    for row in _descendants(table, "table-row"):
        cells: list[str] = []
        for cell in row.childNodes:
            if _qname(cell) not in ("table-cell", "covered-table-cell"):
                continue
            value = _text(cell)
            repeat = int(cell.getAttribute("numbercolumnsrepeated") or 1)
            cells.extend([value] * (min(repeat, _MAX_REPEAT) if value else min(repeat, 1)))
        repeat = int(row.getAttribute("numberrowsrepeated") or 1)
        rows.extend([cells] * (min(repeat, _MAX_REPEAT) if any(cells) else 1))
    return rows


def _descendants(node: Any, name: str) -> Iterator[Any]:
    for child in node.childNodes:
        if _qname(child) == name:
            yield child
        elif _qname(child) in ("table-header-rows", "table-rows", "table-row-group"):
            yield from _descendants(child, name)


def load_ods(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """An ODF spreadsheet: one LoadedDoc per table of each sheet (``render_sheet``), each row as
    'header: value; ...'."""
    from odf import table

    document = _opendocument(path, source, "ods")
    docs: list[LoadedDoc] = []
    for sheet in document.spreadsheet.getElementsByType(table.Table):
        name = str(sheet.getAttribute("name") or "")
        docs.extend(t.doc(source, sheet=name) for t in render_sheet(_table_rows(sheet)) if t.text.strip())
    return docs


def load_odp(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """An ODF presentation: one LoadedDoc per slide with text, with metadata 'slide'."""
    from odf import draw, text

    document = _opendocument(path, source, "odp")
    docs = []
    for number, page in enumerate(document.presentation.getElementsByType(draw.Page), start=1):
        lines = [_text(p) for p in page.getElementsByType(text.P)]
        body = "\n".join(line for line in lines if line)
        if body:
            docs.append(loaded_doc(body, source, slide=number))
    return docs
