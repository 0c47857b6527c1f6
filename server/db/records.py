"""Read models of the knowledge-base tables: what the KB repository returns instead of ORM rows.

They are plain frozen values, safe to keep and pass around after their session has closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from server.db.models import KnowledgeBase, KnowledgeFile

ChunkUnit = Literal["chars", "tokens"]


@dataclass(frozen=True)
class KBRecord:
    """A knowledge base row."""

    id: int
    name: str
    description: str
    vector_store: str
    embed_model: str
    file_count: int
    chunk_count: int
    created_at: datetime | None

    @classmethod
    def of(cls, row: KnowledgeBase) -> "KBRecord":
        return cls(id=row.id, name=row.name, description=row.description or "", vector_store=row.vector_store,
                   embed_model=row.embed_model, file_count=row.file_count or 0, chunk_count=row.chunk_count or 0,
                   created_at=row.created_at)


@dataclass(frozen=True)
class FileFields:
    """The values a file row is written with (everything but its identity and counts)."""

    ext: str
    size: int
    mtime: float
    content_hash: str
    status: str
    error: str
    loader: str
    splitter: str
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    chunk_unit: ChunkUnit | None = None


@dataclass(frozen=True)
class FileRecord:
    """A file row of a knowledge base: the state of its ingestion and the chunk parameters it used."""

    id: int
    kb_id: int
    file_name: str
    ext: str
    size: int
    mtime: float
    content_hash: str
    loader: str
    splitter: str
    chunk_size: int | None
    chunk_overlap: int | None
    chunk_unit: ChunkUnit | None
    chunk_count: int
    status: str
    error: str

    @classmethod
    def of(cls, row: KnowledgeFile) -> "FileRecord":
        unit: ChunkUnit | None = "tokens" if row.chunk_unit == "tokens" else "chars" if row.chunk_unit else None
        return cls(id=row.id, kb_id=row.kb_id, file_name=row.file_name, ext=row.ext or "", size=row.size or 0,
                   mtime=row.mtime or 0.0, content_hash=row.content_hash or "", loader=row.loader or "",
                   splitter=row.splitter or "", chunk_size=row.chunk_size, chunk_overlap=row.chunk_overlap,
                   chunk_unit=unit, chunk_count=row.chunk_count or 0, status=row.status, error=row.error or "")
