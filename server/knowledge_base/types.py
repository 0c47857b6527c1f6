"""Data types passed between loaders, the splitter and the knowledge-base manager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadedDoc:
    """One logical unit a loader produced: a page, a sheet, a slide, a chapter or a whole text file."""

    text: str
    # Always "source" (file name relative to the KB content dir); where known "page" (1-based),
    # "sheet", "slide" (1-based), "title", "format" (extension without the dot) and "ocr" (True when
    # the text was read off an image). A table's LoadedDoc also has "row_spans": [[offset, row], ...],
    # the character offset in the text where each row's line starts and the row's number in the file;
    # the splitter turns it into each chunk's "rows" ([first, last]). "heading_path" (list[str]), when a loader
    # knows one (a spreadsheet table's title rows), heads the heading path of each of the doc's chunks.
    metadata: dict[str, Any] = field(default_factory=dict)


def loaded_doc(text: str, source: str, title: str | None = None, **location: int | str) -> LoadedDoc:
    """A LoadedDoc whose metadata names its file, where in the file the text is (``page=3``, ``slide=2``,
    ``sheet="Q1"``, ``chapter=4``; nothing for a whole file) and the document's title when it has one."""
    metadata: dict[str, Any] = {"source": source, **location}
    if title:
        metadata["title"] = title
    return LoadedDoc(text=text, metadata=metadata)


@dataclass(frozen=True)
class LoadOptions:
    """How a file is read: whether images are OCRed, whether PDF tables are looked for, and who hears of
    each OCRed page (done, total)."""

    ocr: bool = True
    pdf_tables: bool = True
    on_ocr_page: Callable[[int, int], None] | None = None

    def ocr_page(self, done: int, total: int) -> None:
        if self.on_ocr_page is not None:
            self.on_ocr_page(done, total)


@dataclass
class Chunk:
    """A piece of a LoadedDoc small enough to embed and index."""

    text: str
    # LoadedDoc metadata plus "chunk_index" (0-based within the file), "heading_path" (list[str])
    # and "start" (character offset of the chunk in the LoadedDoc text).
    metadata: dict[str, Any] = field(default_factory=dict)
