"""Ingestion: stage a file, load, split, embed (through the cache), index, then record it in the database.

A knowledge base changes under its writer lock, one batch of files at a time. Each file's new
chunks go into the in-memory store before its old ones are removed; the store is saved once for the
whole batch (a save rewrites the whole store, so per-file saves made big uploads slow), and only
then are the content files moved in and the rows written. A failed save reloads the store from
disk and turns every file of the batch into an error, leaving the previous files, chunks and rows
as they were. Searches during a batch see its chunks before they are saved.

This module holds the values that travel through those steps (a file's job, a batch, its pending
files) and the checks done before anything is stored; ``indexer.KBIndexer`` runs the steps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from configs.settings import CHUNK_SIZE_MAX, CHUNK_SIZE_MIN, KBSettings
from server.db.kb_repository import DocRows
from server.db.records import FileRecord, KBRecord
from server.errors import AppError, InvalidInput, UnsupportedMediaType
from server.knowledge_base.loaders import SUPPORTED_EXTENSIONS
from server.knowledge_base.names import validate_file_name
from server.knowledge_base.progress import Reporter
from server.knowledge_base.schemas import FileResult, ProgressEvent
from server.knowledge_base.splitter import Unit, splitter_name
from server.knowledge_base.types import Chunk
from server.knowledge_base.vector_store import VectorStore

ProgressFn = Callable[[ProgressEvent], None]
FileInput = tuple[str, bytes] | Path
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class ChunkParams:
    """How a file is split: chunk size and overlap, in ``unit``."""

    size: int
    overlap: int
    unit: Unit

    @property
    def splitter(self) -> str:
        """The splitter identifier recorded with the file."""
        return splitter_name(self.size, self.overlap, self.unit)


def chunk_params(settings: KBSettings, chunk_size: int | None, chunk_overlap: int | None) -> ChunkParams:
    """The requested chunk parameters (settings' defaults where None), or InvalidInput."""
    size = settings.chunk_size if chunk_size is None else chunk_size
    overlap = settings.chunk_overlap if chunk_overlap is None else chunk_overlap
    if not isinstance(size, int) or not CHUNK_SIZE_MIN <= size <= CHUNK_SIZE_MAX:
        raise InvalidInput(f"chunk_size must be an integer from {CHUNK_SIZE_MIN} to {CHUNK_SIZE_MAX}, got {size!r}")
    if not isinstance(overlap, int) or not 0 <= overlap < size:
        raise InvalidInput(f"chunk_overlap must be an integer from 0 to chunk_size - 1, got {overlap!r}")
    return ChunkParams(size, overlap, settings.chunk_unit)


@dataclass(frozen=True)
class AddRequest:
    """What an upload asks for, beyond its files."""

    params: ChunkParams
    override: bool = False
    to_vector_store: bool = True
    ocr: bool | None = None  # None: the setting kb.ocr


@dataclass(frozen=True)
class FileJob:
    """One file on its way into a knowledge base."""

    kb: KBRecord
    name: str  # the file's name in content/
    source: Path  # where its bytes are now: a staged copy, or the content file itself
    digest: str  # sha256 of those bytes
    params: ChunkParams
    embed_model: str
    staged: bool = False  # source is a staged copy, moved into content/ when the file is recorded
    keep_old: bool = False  # an earlier version stays in place if this one cannot be read
    to_vector_store: bool = True
    ocr: bool | None = None  # None: the setting kb.ocr

    @property
    def ext(self) -> str:
        return Path(self.name).suffix.lower()


@dataclass
class Prepared:
    """A file loaded, split and embedded, not yet stored anywhere."""

    chunks: list[Chunk]
    vectors: np.ndarray
    sentence_vectors: list[np.ndarray] | None
    loader: str


@dataclass
class NewChunks:
    """Chunks about to enter a store: (doc_id, text, metadata) rows and their vectors."""

    docs: list[tuple[str, str, dict[str, Any]]]
    vectors: np.ndarray
    sentence_vectors: list[np.ndarray] | None = None

    def rows(self) -> DocRows:
        """(doc_id, metadata) of each chunk, as the database records them."""
        return [(doc_id, meta) for doc_id, _, meta in self.docs]


@dataclass
class Pending:
    """A file whose chunks are in the in-memory store; its content file and row wait for the save."""

    job: FileJob
    result: FileResult
    docs: DocRows
    loader: str


@dataclass
class Batch:
    """The files of one add or re-ingest, applied to one store object and saved together."""

    kb: str
    store: VectorStore | None  # None after a failure, until the next file reloads it
    reporter: Reporter
    pending: list[Pending] = field(default_factory=list)
    failed: dict[str, FileResult] = field(default_factory=dict)
    changed: bool = False  # whether the store has unsaved changes

    def owns(self, path: Path) -> bool:
        return any(p.job.source == path for p in self.pending)

    def fail(self, name: str, message: str, code: str = AppError.code) -> None:
        """A file reported done has failed after all."""
        self.failed[name] = FileResult(file_name=name, status="error", error=message, code=code)
        self.reporter.file_failed(name, message)

    def fail_all(self, message: str) -> None:
        """Turn every pending file into an error (their changes to the store are gone)."""
        for p in self.pending:
            self.fail(p.result.file_name, message)
            if p.job.staged:
                p.job.source.unlink(missing_ok=True)
        self.pending.clear()
        self.changed = False


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def json_safe(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata as plain JSON values (loaders may put dates or paths in it)."""
    safe: dict[str, Any] = json.loads(json.dumps(metadata, ensure_ascii=False, default=str))
    return safe


def check_upload(names: list[str]) -> list[str]:
    """The batch's names in NFC, or a refusal before anything is stored: bad or duplicate names (422), or no
    supported file at all (415)."""
    if not names:
        raise InvalidInput("no files were given")
    names = [validate_file_name(name) for name in names]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"the same file name appears more than once: {', '.join(duplicates)}")
    if not any(Path(n).suffix.lower() in SUPPORTED_EXTENSIONS for n in names):
        raise UnsupportedMediaType(
            f"none of the files has a supported type ({', '.join(names)}); "
            f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}",
            code="unsupported_file_type",
        )
    return names


def skip_reason(existing: FileRecord | None, content: Path, digest: str, to_vector_store: bool) -> str | None:
    """Why an upload without override is skipped (the same file is in already, or a different one holds the
    name), or None to ingest it."""
    if existing is not None:
        if existing.content_hash == digest:
            if existing.status == "indexed" or not to_vector_store:
                return "unchanged: the same file is already in the knowledge base"
            return None
        return "a different file with this name is already in the knowledge base; set override to replace it"
    if content.exists() and file_sha256(content) != digest:
        return "a different file with this name is already in the content folder; set override to replace it"
    return None
