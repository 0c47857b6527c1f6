"""Data types passed between loaders, the splitter and the knowledge-base manager."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadedDoc:
    """One logical unit a loader produced: a page, a sheet, a slide, a chapter or a whole text file."""

    text: str
    # Always "source" (file name relative to the KB content dir); where known "page" (1-based),
    # "sheet", "slide" (1-based), "title" and "format" (extension without the dot).
    metadata: dict[str, Any] = field(default_factory=dict)


def loaded_doc(text: str, source: str, title: str | None = None, **location: int | str) -> LoadedDoc:
    """A LoadedDoc whose metadata names its file, where in the file the text is (``page=3``, ``slide=2``,
    ``sheet="Q1"``, ``chapter=4``; nothing for a whole file) and the document's title when it has one."""
    metadata: dict[str, Any] = {"source": source, **location}
    if title:
        metadata["title"] = title
    return LoadedDoc(text=text, metadata=metadata)


@dataclass
class Chunk:
    """A piece of a LoadedDoc small enough to embed and index."""

    text: str
    # LoadedDoc metadata plus "chunk_index" (0-based within the file), "heading_path" (list[str])
    # and "start" (character offset of the chunk in the LoadedDoc text).
    metadata: dict[str, Any] = field(default_factory=dict)
