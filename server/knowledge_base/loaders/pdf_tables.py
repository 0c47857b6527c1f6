"""Ruled tables of PDF pages through pdfplumber: a page that has one is read as its text around the tables
and each table as 'header: value' rows, in order from the top of the page (pdf_layout.py decides which
pages are read so)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from server.knowledge_base.loaders.tables import render_table

# A line break inside a cell between two CJK characters is wrapping, not a space.
_CJK_WRAP = re.compile(r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\n(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])")


@dataclass(frozen=True)
class RuledTable:
    """A ruled table found on a page: where it sits, top down, and its rows as text ('' when no cell holds
    any: the ruling of a figure or a frame, not a table)."""

    top: float
    bottom: float
    text: str


def ruled_tables(page: Any) -> list[RuledTable]:
    """The ruled tables of a pdfplumber page, top first."""
    found = []
    for table in sorted(page.find_tables(), key=lambda t: t.bbox[1]):
        _, top, _, bottom = table.bbox
        rows = [[_CJK_WRAP.sub("", cell or "") for cell in row] for row in table.extract()]
        found.append(RuledTable(float(top), float(bottom), render_table(rows).text))
    return found


def text_with_tables(page: Any, tables: list[RuledTable]) -> str:
    """The page's text around its tables, each table as rows, in order from the top of the page."""
    blocks: list[str] = []
    top = 0.0
    for table in tables:
        blocks.append(_text(page, top, table.top))
        blocks.append(table.text)
        top = max(top, table.bottom)
    blocks.append(_text(page, top, float(page.height)))
    return "\n\n".join(block for block in blocks if block.strip())


def _text(page: Any, top: float, bottom: float) -> str:
    if bottom - top < 1:
        return ""
    band = page.crop((0, max(top, 0), float(page.width), min(bottom, float(page.height))), strict=False)
    return str(band.extract_text() or "").strip()
