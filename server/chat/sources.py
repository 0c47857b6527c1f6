"""Turning knowledge-base hits and web results into numbered passages and ``sources`` entries."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlparse

from server.chat import events

# Longest passage text repeated in a ``sources`` event (the prompt gets the whole passage).
SOURCE_TEXT_MAX = 2000


def field_of(item: Any, name: str, default: Any = None) -> Any:
    """Read a field from a pydantic model, dataclass or dict alike."""
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def location_of(metadata: dict[str, Any]) -> str:
    """Where in its file a chunk comes from: page / sheet / slide and heading path."""
    parts = []
    if metadata.get("page") is not None:
        parts.append(f"p. {metadata['page']}")
    if metadata.get("sheet"):
        parts.append(f"sheet {metadata['sheet']}")
    if metadata.get("slide") is not None:
        parts.append(f"slide {metadata['slide']}")
    headings = [str(h) for h in metadata.get("heading_path") or [] if str(h).strip()]
    if headings:
        parts.append("§ " + " > ".join(headings))
    return ", ".join(parts)


def download_url(kb: str, file_name: str) -> str:
    return f"/kbs/{quote(kb, safe='')}/files/{quote(file_name, safe='')}/download"


def kb_source(index: int, hit: Any, kb: str) -> dict[str, Any]:
    """A knowledge-base hit as a source; a hit of a search over several knowledge bases names its own."""
    metadata = field_of(hit, "metadata") or {}
    kb = str(metadata.get("kb") or kb)
    file_name = str(metadata.get("source") or "")
    score = field_of(hit, "score")
    return events.source(
        index=index,
        file=file_name,
        location=location_of(metadata),
        score=round(float(score), 4) if score is not None else None,
        text=str(field_of(hit, "text") or "")[:SOURCE_TEXT_MAX],
        url=download_url(kb, file_name) if file_name else None,
        kb=kb,
    )


def web_source(index: int, result: Any) -> dict[str, Any]:
    url = str(field_of(result, "url") or "")
    return events.source(
        index=index,
        file=str(field_of(result, "title") or url),
        location=urlparse(url).netloc,
        score=None,
        text=str(field_of(result, "snippet") or "")[:SOURCE_TEXT_MAX],
        url=url or None,
        kb=None,
    )


def passage(source: dict[str, Any], text: str) -> str:
    """``[n] (file, location)`` then the passage text, as the prompt shows it."""
    where = ", ".join(p for p in (source["file"], source.get("location") or "") if p)
    return f"[{source['index']}] ({where})\n{text.strip()}"
