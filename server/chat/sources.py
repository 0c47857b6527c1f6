"""Turning knowledge-base hits and web results into numbered passages and ``sources`` entries.

A knowledge-base source names its knowledge base and file (and where in the file); turning that
into a link is the transport's business (``server.api.locations``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from server.chat import events
from server.chat.schemas import Source
from server.chat.search_engines import WebResult
from server.knowledge_base.manager import SearchHit

# Longest passage text repeated in a ``sources`` event (the prompt gets the whole passage).
SOURCE_TEXT_MAX = 2000


def location_of(metadata: dict[str, Any]) -> str:
    """Where in its file a chunk comes from: page / sheet / slide / table rows and heading path."""
    parts = []
    if metadata.get("page") is not None:
        parts.append(f"p. {metadata['page']}")
    if metadata.get("sheet"):
        parts.append(f"sheet {metadata['sheet']}")
    if metadata.get("slide") is not None:
        parts.append(f"slide {metadata['slide']}")
    rows = metadata.get("rows")
    if isinstance(rows, list) and len(rows) == 2:
        parts.append(f"row {rows[0]}" if rows[0] == rows[1] else f"rows {rows[0]}-{rows[1]}")
    headings = [str(h) for h in metadata.get("heading_path") or [] if str(h).strip()]
    if headings:
        parts.append("§ " + " > ".join(headings))
    return ", ".join(parts)


def kb_source(index: int, hit: SearchHit, kb: str) -> Source:
    """A knowledge-base hit as a source; a hit of a search over several knowledge bases names its own."""
    metadata = hit.metadata
    source = events.source(
        index=index,
        file=str(metadata.get("source") or ""),
        location=location_of(metadata),
        score=round(float(hit.score), 4),
        text=hit.text[:SOURCE_TEXT_MAX],
        kb=str(metadata.get("kb") or kb),
    )
    page = metadata.get("page")
    if isinstance(page, int) and source["file"].lower().endswith(".pdf"):
        source["page"] = page
    return source


def web_source(index: int, result: WebResult) -> Source:
    return events.source(
        index=index,
        file=result.title or result.url,
        location=urlparse(result.url).netloc,
        score=None,
        text=result.snippet[:SOURCE_TEXT_MAX],
        url=result.url or None,
        kb=None,
    )


def passage(source: Source, text: str) -> str:
    """``[n] (file, location)`` then the passage text, as the prompt shows it."""
    where = ", ".join(p for p in (source["file"], source["location"]) if p)
    return f"[{source['index']}] ({where})\n{text.strip()}"
