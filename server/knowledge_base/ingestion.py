"""Ingestion: stage a file, load, split, embed (through the cache), index, then record it in the database.

A knowledge base changes under its writer lock, one file at a time. New chunks are indexed before
the old chunks of the same file are removed, and the content file is replaced only after the
store has been saved, so a failed re-ingest leaves the previous file, chunks and row as they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from server.db import kb_repository as repo
from server.errors import AppError, InvalidInput, NotFound, UnsupportedMediaType
from server.knowledge_base.loaders import (
    SUPPORTED_EXTENSIONS,
    UnreadableFile,
    UnsupportedFileType,
    load_file,
    loader_name,
)
from server.knowledge_base.names import validate_file_name
from server.knowledge_base.progress import Reporter
from server.knowledge_base.schemas import FileResult, ProgressEvent
from server.knowledge_base.splitter import split_documents, splitter_name
from server.knowledge_base.types import Chunk
from server.knowledge_base.vector_store import VectorStore
from server.knowledge_base.vector_store.base import index_text

if TYPE_CHECKING:
    from server.db.models import KnowledgeBase
    from server.knowledge_base.manager import KnowledgeBaseManager

logger = logging.getLogger(__name__)

ProgressFn = Callable[[ProgressEvent], None]
FileInput = tuple[str, bytes] | Path
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class ChunkParams:
    size: int
    overlap: int
    unit: str


@dataclass
class Prepared:
    chunks: list[Chunk]
    vectors: np.ndarray
    loader: str
    splitter: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def json_safe(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata as plain JSON values (loaders may put dates or paths in it)."""
    return json.loads(json.dumps(metadata, ensure_ascii=False, default=str))


def check_upload(names: list[str]) -> None:
    """Reject a batch before anything is stored: bad or duplicate names (422), or no supported file at all (415)."""
    if not names:
        raise InvalidInput("no files were given")
    for name in names:
        validate_file_name(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"the same file name appears more than once: {', '.join(duplicates)}")
    if not any(Path(n).suffix.lower() in SUPPORTED_EXTENSIONS for n in names):
        raise UnsupportedMediaType(
            f"none of the files has a supported type ({', '.join(names)}); "
            f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}",
            code="unsupported_file_type",
        )


class Ingestor:
    """Adds, re-ingests and rebuilds the files of knowledge bases for a KnowledgeBaseManager."""

    def __init__(self, manager: "KnowledgeBaseManager") -> None:
        self.m = manager
        self.kb_settings = manager.settings.kb

    def chunk_params(self, chunk_size: int | None, chunk_overlap: int | None) -> ChunkParams:
        size = self.kb_settings.chunk_size if chunk_size is None else chunk_size
        overlap = self.kb_settings.chunk_overlap if chunk_overlap is None else chunk_overlap
        if not isinstance(size, int) or not 20 <= size <= 10000:
            raise InvalidInput(f"chunk_size must be an integer from 20 to 10000, got {size!r}")
        if not isinstance(overlap, int) or not 0 <= overlap < size:
            raise InvalidInput(f"chunk_overlap must be an integer from 0 to chunk_size - 1, got {overlap!r}")
        return ChunkParams(size, overlap, self.kb_settings.chunk_unit)

    # ----- public operations
    def add_files(self, kb: str, files: list[FileInput], *, override: bool, chunk_size: int | None,
                  chunk_overlap: int | None, to_vector_store: bool, progress: ProgressFn | None) -> list[FileResult]:
        row = self.m.kb_row(kb)
        params = self.chunk_params(chunk_size, chunk_overlap)
        items = [(f.name, f) if isinstance(f, Path) else (f[0], f[1]) for f in files]
        check_upload([name for name, _ in items])
        self.m.pool.get(kb)  # a knowledge base whose store cannot be opened fails as a whole (409/503)
        reporter = Reporter(progress, len(items))
        results = []
        for name, data in items:
            reporter.file_start(name)
            result = self.guard(name, lambda: self._add_one(row, name, data, override, to_vector_store, params,
                                                             reporter))
            results.append(result)
            reporter.file_done(result)
        reporter.done(results)
        return results

    def reingest(self, kb: str, file_name: str, *, chunk_size: int | None, chunk_overlap: int | None,
                 progress: ProgressFn | None) -> FileResult:
        row = self.m.kb_row(kb)
        params = self.chunk_params(chunk_size, chunk_overlap)
        content = self.m.content_dir(kb) / validate_file_name(file_name)
        if not content.is_file():
            raise NotFound(f"file {file_name!r} is not in the content folder of knowledge base {kb!r}")
        check_upload([file_name])
        reporter = Reporter(progress, 1)
        reporter.file_start(file_name)
        with self.m.pool.writer_lock(kb):
            existing = self.m.db.run(repo.get_file, row.id, file_name)
            keep_old = existing is not None and existing.status != "error"
            digest = file_sha256(content)
            result = self.guard(file_name, lambda: self._ingest(
                row, file_name, content, digest, True, params, reporter, staged=False, keep_old=keep_old))
        reporter.file_done(result)
        reporter.done([result])
        return result

    # ----- steps
    def guard(self, name: str, step: Callable[[], FileResult]) -> FileResult:
        """Run one file's step, turning its failure into an error result."""
        try:
            return step()
        except AppError as exc:
            return FileResult(file_name=name, status="error", error=exc.message)
        except Exception as exc:  # noqa: BLE001 - one broken file must not stop the batch
            logger.exception("ingesting %s failed", name)
            return FileResult(file_name=name, status="error", error=f"internal error: {type(exc).__name__}: {exc}")

    def _add_one(self, row: "KnowledgeBase", name: str, data: bytes | Path, override: bool, to_vs: bool,
                 params: ChunkParams, reporter: Reporter) -> FileResult:
        ext = Path(name).suffix.lower()
        if ext not in SUPPORTED_EXTENSIONS:
            supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
            raise UnsupportedFileType(name, f"unsupported file type {ext or '(no extension)'}; supported: {supported}")
        content = self.m.content_dir(row.name) / name
        with self.m.pool.writer_lock(row.name):
            staged, digest = self._stage(row.name, name, data)
            try:
                existing = self.m.db.run(repo.get_file, row.id, name)
                reason = None if override else _skip_reason(existing, content, digest, to_vs)
                if reason:
                    return FileResult(file_name=name, status="skipped", error=reason)
                keep_old = (existing is not None and existing.status != "error") or (
                    existing is None and content.exists())
                return self._ingest(row, name, staged, digest, to_vs, params, reporter, staged=True, keep_old=keep_old)
            finally:
                staged.unlink(missing_ok=True)

    def _stage(self, kb: str, name: str, data: bytes | Path) -> tuple[Path, str]:
        """Copy the upload next to content/ (same filesystem, so it can be moved in atomically)."""
        staging = self.m.kb_dir(kb) / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        path = staging / f"{uuid.uuid4().hex}{Path(name).suffix.lower()}"
        if isinstance(data, Path):
            if not data.is_file():
                raise NotFound(f"file {str(data)!r} does not exist")
            shutil.copyfile(data, path)
        else:
            path.write_bytes(data)
        return path, file_sha256(path)

    def _ingest(self, row: "KnowledgeBase", name: str, source: Path, digest: str, to_vs: bool, params: ChunkParams,
                reporter: Reporter, *, staged: bool, keep_old: bool) -> FileResult:
        kb = row.name
        store = self.m.pool.get(kb)
        splitter = splitter_name(params.size, params.overlap, params.unit)
        if not to_vs:
            self._replace_chunks(kb, store, name, [], np.zeros((0, 1), dtype=np.float32))
            self._place(source, name, kb, staged)
            self._record(row, name, digest, "stored", "", [], loader_name(Path(name).suffix), splitter)
            return FileResult(file_name=name, status="stored")
        try:
            prepared = self.prepare(row.embed_model, name, source, params, store.index_headings, reporter)
        except AppError as exc:
            if not keep_old:
                # A new file that cannot be read is kept with an error row, so the failure stays visible.
                self._place(source, name, kb, staged)
                self._record(row, name, digest, "error", exc.message, [], loader_name(Path(name).suffix), splitter)
            raise
        docs = [(uuid.uuid4().hex, c.text, json_safe(c.metadata)) for c in prepared.chunks]
        self._replace_chunks(kb, store, name, docs, prepared.vectors)
        self._place(source, name, kb, staged)
        self._record(row, name, digest, "indexed", "", [(d, meta) for d, _, meta in docs], prepared.loader,
                     prepared.splitter)
        return FileResult(file_name=name, status="indexed", chunks=len(docs))

    def prepare(self, embed_model: str, name: str, path: Path, params: ChunkParams, with_headings: bool,
                reporter: Reporter) -> Prepared:
        """Load, split and embed one file (nothing is stored yet)."""
        docs = load_file(path, source=name)
        counter = self.m.embeddings.get(embed_model).count_tokens if params.unit == "tokens" else None
        chunks = split_documents(docs, params.size, params.overlap, params.unit, counter)
        if not chunks:
            raise UnreadableFile(name, "the file contains no text")
        texts = [index_text(c.text, c.metadata, with_headings) for c in chunks]
        vectors = self.m.embeddings.embed_passages(embed_model, texts, lambda d, t: reporter.chunks(name, d, t))
        splitter = splitter_name(params.size, params.overlap, params.unit)
        return Prepared(chunks, vectors, loader_name(Path(name).suffix), splitter)

    def _replace_chunks(self, kb: str, store: VectorStore, name: str, docs: list, vectors: np.ndarray) -> None:
        """Add the new chunks, then drop the file's old ones, then save; on failure reload from disk."""
        old = [d.doc_id for d in store.docs_for_source(name)]
        if not docs and not old:
            return
        try:
            store.add(docs, vectors)
            store.delete(old)
            store.save()
        except BaseException:
            self.m.pool.discard(kb)
            raise
        self.m.pool.put(kb, store)

    def _place(self, source: Path, name: str, kb: str, staged: bool) -> None:
        target = self.m.content_dir(kb) / name
        if source == target:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if staged:
            os.replace(source, target)
        else:
            shutil.copyfile(source, target)

    def _record(self, row: "KnowledgeBase", name: str, digest: str, status: str, error: str,
                docs: list[tuple[str, dict[str, Any]]], loader: str, splitter: str) -> None:
        fields = self.file_fields(row.name, name, digest, status, error, loader, splitter)
        self.m.db.run(repo.save_file, row.id, name, docs, **fields)

    def file_fields(self, kb: str, name: str, digest: str, status: str, error: str, loader: str,
                    splitter: str) -> dict[str, Any]:
        """Column values of a file row, measured from its copy in content/."""
        stat = (self.m.content_dir(kb) / name).stat()
        return {"ext": Path(name).suffix.lower(), "size": stat.st_size, "mtime": stat.st_mtime,
                "content_hash": digest, "status": status, "error": error, "loader": loader, "splitter": splitter}


def _skip_reason(existing: Any, content: Path, digest: str, to_vs: bool) -> str | None:
    if existing is not None:
        if existing.content_hash == digest:
            if existing.status == "indexed" or not to_vs:
                return "unchanged: the same file is already in the knowledge base"
            return None
        return "a different file with this name is already in the knowledge base; set override to replace it"
    if content.exists() and file_sha256(content) != digest:
        return "a different file with this name is already in the content folder; set override to replace it"
    return None
