"""Ruled tables of PDF pages through pdfplumber: a page that has one is read as its text around the tables
and each table as 'header: value' rows, in order from the top of the page."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from server.knowledge_base.loaders.tables import render_table

logger = logging.getLogger(__name__)
logging.getLogger("pdfminer").setLevel(logging.ERROR)

# A line break inside a cell between two CJK characters is wrapping, not a space.
_CJK_WRAP = re.compile(r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\n(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])")


def tabled_pages(path: Path, source: str, pages: list[int]) -> dict[int, str]:
    """Text of each of these pages (1-based) that holds a table; pages without one are left out, and a
    page pdfplumber cannot read keeps the caller's text."""
    import pdfplumber

    found: dict[int, str] = {}
    try:
        with pdfplumber.open(str(path)) as pdf:
            for number in pages:
                try:
                    text = _page(pdf.pages[number - 1])
                except Exception as exc:  # noqa: BLE001 - pdfminer raises anything on odd pages
                    logger.warning("%s: tables of page %d could not be read (%r)", source, number, exc)
                    continue
                if text is not None:
                    found[number] = text
    except Exception as exc:  # noqa: BLE001 - the pypdf text stands when pdfplumber cannot open the file
        logger.warning("%s: pdfplumber could not open it (%r); tables are read as plain text", source, exc)
    return found


def _page(page: Any) -> str | None:
    tables = sorted(page.find_tables(), key=lambda t: t.bbox[1])
    if not tables:
        return None
    blocks: list[str] = []
    top = 0.0
    for table in tables:
        _, t_top, _, t_bottom = table.bbox
        blocks.append(_text(page, top, t_top))
        rows = [[_CJK_WRAP.sub("", cell or "") for cell in row] for row in table.extract()]
        blocks.append(render_table(rows).text)
        top = max(top, t_bottom)
    blocks.append(_text(page, top, float(page.height)))
    return "\n\n".join(block for block in blocks if block.strip())


def _text(page: Any, top: float, bottom: float) -> str:
    if bottom - top < 1:
        return ""
    band = page.crop((0, max(top, 0), float(page.width), min(bottom, float(page.height))), strict=False)
    return str(band.extract_text() or "").strip()
