"""Pydantic models the knowledge-base manager returns (and the KB API serialises as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from server.errors import AppError


class KBInfo(BaseModel):
    """A knowledge base and its counts."""

    name: str
    description: str = ""
    vector_store: str
    embed_model: str
    file_count: int = 0
    chunk_count: int = 0
    created_at: datetime | None = None


class FileInfo(BaseModel):
    """A file of a knowledge base and the state of its ingestion."""

    file_name: str
    ext: str = ""
    size: int = 0
    mtime: float = 0.0
    chunk_count: int = 0
    status: str = Field("pending", description="indexed | stored | error | pending (in content/ but not ingested)")
    error: str = ""
    loader: str = ""
    splitter: str = ""


class FileResult(BaseModel):
    """Outcome of adding or re-ingesting one file."""

    file_name: str
    status: Literal["indexed", "stored", "error", "skipped"]
    chunks: int = 0
    error: str = ""
    code: str = ""  # with status "error": the error's stable code, e.g. unreadable_file

    @classmethod
    def failure(cls, file_name: str, error: AppError) -> "FileResult":
        """The result of a file that could not be added, with the error's message and code."""
        return cls(file_name=file_name, status="error", error=error.message, code=error.code)


class ProgressEvent(BaseModel):
    """Progress of an ingestion or rebuild, reported file by file and batch by batch."""

    stage: Literal["file_start", "file_done", "ocr", "chunks", "paused", "saving", "done", "error"] = Field(
        description="'paused': adding the file waits while a chat answer is written (kb.yield_to_chat)."
    )
    file_name: str = ""
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    chunks_total: int = 0
    pages_done: int = Field(0, description="Stage 'ocr': pages (or pictures) of the file read by OCR so far.")
    pages_total: int = Field(0, description="Stage 'ocr': pages (or pictures) of the file that OCR reads.")
    message: str = ""


class ChunkInfo(BaseModel):
    """One stored chunk of a file."""

    doc_id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchHit(BaseModel):
    """A retrieved chunk; score in [0, 1], higher is better; rank is 1-based."""

    doc_id: str
    text: str
    score: float
    metadata: dict[str, Any] = Field(default_factory=dict)
    rank: int
