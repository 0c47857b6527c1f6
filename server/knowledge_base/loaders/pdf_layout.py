"""Pages of a PDF that pdfplumber reads better than the text layer through pypdf: pages with ruled tables
(pdf_tables.py) and pages set in columns (pdf_columns.py). One pdfplumber pass over the file serves both."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

from server.knowledge_base.loaders.pdf_columns import column_text
from server.knowledge_base.loaders.pdf_tables import ruled_tables, text_with_tables

logger = logging.getLogger(__name__)
logging.getLogger("pdfminer").setLevel(logging.ERROR)


class LaidOutPage(NamedTuple):
    """A page's text as pdfplumber reads it, and whether it was read column by column."""

    text: str
    in_columns: bool


def laid_out_pages(path: Path, source: str, pages: list[int], tables: bool) -> dict[int, LaidOutPage]:
    """Text of each of these pages (1-based) that holds a ruled table (when tables is set) or is set in
    columns; other pages are left out, and a page pdfplumber cannot read keeps the caller's text."""
    import pdfplumber

    found: dict[int, LaidOutPage] = {}
    try:
        with pdfplumber.open(str(path)) as pdf:
            for number in pages:
                page = pdf.pages[number - 1]
                try:
                    laid_out = _page_text(page, tables)
                except Exception as exc:  # noqa: BLE001 - pdfminer raises anything on odd pages
                    logger.warning("%s: layout of page %d could not be read (%r)", source, number, exc)
                    continue
                finally:
                    page.close()  # drop the page's parsed objects: a long PDF would hold them all
                if laid_out is not None:
                    found[number] = laid_out
    except Exception as exc:  # noqa: BLE001 - the pypdf text stands when pdfplumber cannot open the file
        logger.warning("%s: pdfplumber could not open it (%r); its pages are read as plain text", source, exc)
    return found


def _page_text(page: Any, tables: bool) -> LaidOutPage | None:
    """A table page as text and tables; else a page in columns in reading order; else None. Tables whose
    cells are all empty (the ruling of a figure) do not keep a page in columns from being read so; when
    tables are not looked for, a page in columns that has a ruled table keeps its pypdf text."""
    found = ruled_tables(page) if tables else []
    if not any(table.text for table in found):
        columns = column_text(page)
        if columns is not None and (tables or not any(table.text for table in ruled_tables(page))):
            return LaidOutPage(columns, in_columns=True)
    return LaidOutPage(text_with_tables(page, found), in_columns=False) if found else None
