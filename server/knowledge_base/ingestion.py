"""Ingestion: stage a file, load, split, embed (through the cache), index, then record it in the database.

A knowledge base changes under its writer lock, one batch of files at a time. Each file's new
chunks go into the in-memory store before its old ones are removed; the store is saved once for the
whole batch (a save rewrites the whole store, so per-file saves made big uploads slow), and only
then are the content files moved in and the rows written. A failed save reloads the store from
disk and turns every file of the batch into an error, leaving the previous files, chunks and rows
as they were. Searches during a batch see its chunks before they are saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
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
    sentence_vectors: list[np.ndarray] | None
    loader: str
    splitter: str


@dataclass
class Pending:
    """A file whose chunks are in the in-memory store; its content file and row wait for the save."""

    result: FileResult
    source: Path
    staged: bool
    digest: str
    docs: list[tuple[str, dict[str, Any]]]
    loader: str
    splitter: str


@dataclass
class Batch:
    """The files of one add or re-ingest, applied to one store object and saved together."""

    store: VectorStore | None  # None after a failure, until the next file reloads it
    reporter: Reporter
    pending: list[Pending] = field(default_factory=list)
    failed: dict[str, FileResult] = field(default_factory=dict)
    changed: bool = False  # whether the store has unsaved changes

    def owns(self, path: Path) -> bool:
        return any(p.source == path for p in self.pending)

    def fail(self, name: str, message: str) -> None:
        """A file reported done has failed after all."""
        self.failed[name] = FileResult(file_name=name, status="error", error=message)
        self.reporter.file_failed(name, message)

    def fail_all(self, message: str) -> None:
        """Turn every pending file into an error (their changes to the store are gone)."""
        for p in self.pending:
            self.fail(p.result.file_name, message)
            if p.staged:
                p.source.unlink(missing_ok=True)
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
    return json.loads(json.dumps(metadata, ensure_ascii=False, default=str))


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
        items = list(zip(check_upload([name for name, _ in items]), (data for _, data in items)))
        reporter = Reporter(progress, len(items))
        results = []
        with self.m.pool.writer_lock(kb):
            # A knowledge base whose store cannot be opened fails as a whole (409/503).
            batch = Batch(self.m.pool.get(kb), reporter)
            try:
                for name, data in items:
                    reporter.file_start(name)
                    result = self.guard(name, lambda: self._add_one(row, name, data, override, to_vector_store,
                                                                     params, reporter, batch))
                    results.append(result)
                    reporter.file_done(result)
                self._commit(row, batch)
            finally:
                if batch.pending:  # only after an exception that stopped the batch: its changes are not saved
                    self.m.pool.discard(kb)
                    batch.fail_all("the upload was interrupted")
        results = [batch.failed.get(r.file_name, r) for r in results]
        reporter.done(results)
        return results

    def reingest(self, kb: str, file_name: str, *, chunk_size: int | None, chunk_overlap: int | None,
                 progress: ProgressFn | None) -> FileResult:
        row = self.m.kb_row(kb)
        params = self.chunk_params(chunk_size, chunk_overlap)
        file_name = check_upload([file_name])[0]
        content = self.m.content_dir(kb) / file_name
        if not content.is_file():
            raise NotFound(f"file {file_name!r} is not in the content folder of knowledge base {kb!r}")
        reporter = Reporter(progress, 1)
        reporter.file_start(file_name)
        with self.m.pool.writer_lock(kb):
            existing = self.m.db.run(repo.get_file, row.id, file_name)
            keep_old = existing is not None and existing.status != "error"
            digest = file_sha256(content)
            batch = Batch(self.m.pool.get(kb), Reporter(None, 1))  # file_done below reports the final result
            result = self.guard(file_name, lambda: self._ingest(
                row, file_name, content, digest, True, params, reporter, batch, staged=False, keep_old=keep_old))
            self._commit(row, batch)
        result = batch.failed.get(file_name, result)
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
                 params: ChunkParams, reporter: Reporter, batch: Batch) -> FileResult:
        ext = Path(name).suffix.lower()
        if ext not in SUPPORTED_EXTENSIONS:
            supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
            raise UnsupportedFileType(name, f"unsupported file type {ext or '(no extension)'}; supported: {supported}")
        content = self.m.content_dir(row.name) / name
        staged, digest = self._stage(row.name, name, data)
        try:
            existing = self.m.db.run(repo.get_file, row.id, name)
            reason = None if override else _skip_reason(existing, content, digest, to_vs)
            if reason:
                return FileResult(file_name=name, status="skipped", error=reason)
            keep_old = (existing is not None and existing.status != "error") or (
                existing is None and content.exists())
            return self._ingest(row, name, staged, digest, to_vs, params, reporter, batch, staged=True,
                                keep_old=keep_old)
        finally:
            if not batch.owns(staged):  # a pending file keeps its staged copy until the batch is saved
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
                reporter: Reporter, batch: Batch, *, staged: bool, keep_old: bool) -> FileResult:
        """Put one file's chunks into the batch's store and queue its content file and row for the save."""
        kb = row.name
        store = batch.store = batch.store or self.m.pool.get(kb)
        splitter = splitter_name(params.size, params.overlap, params.unit)
        if not to_vs:
            self._replace_chunks(kb, batch, store, name, [], np.zeros((0, 1), dtype=np.float32))
            result = FileResult(file_name=name, status="stored")
            batch.pending.append(Pending(result, source, staged, digest, [], loader_name(Path(name).suffix), splitter))
            return result
        try:
            prepared = self.prepare(row.embed_model, name, source, params, store.index_headings, reporter)
        except AppError as exc:
            if not keep_old:
                # A new file that cannot be read is kept with an error row, so the failure stays visible.
                self._place(source, name, kb, staged)
                self._record(row, name, digest, "error", exc.message, [], loader_name(Path(name).suffix), splitter)
            raise
        docs = [(uuid.uuid4().hex, c.text, json_safe(c.metadata)) for c in prepared.chunks]
        self._replace_chunks(kb, batch, store, name, docs, prepared.vectors, prepared.sentence_vectors)
        result = FileResult(file_name=name, status="indexed", chunks=len(docs))
        batch.pending.append(Pending(result, source, staged, digest, [(d, meta) for d, _, meta in docs],
                                     prepared.loader, prepared.splitter))
        return result

    def prepare(self, embed_model: str, name: str, path: Path, params: ChunkParams, with_headings: bool,
                reporter: Reporter) -> Prepared:
        """Load, split and embed one file (nothing is stored yet)."""
        docs = load_file(path, source=name)
        counter = self.m.embeddings.get(embed_model).count_tokens if params.unit == "tokens" else None
        chunks = split_documents(docs, params.size, params.overlap, params.unit, counter)
        if not chunks:
            raise UnreadableFile(name, "the file contains no text")
        texts = [index_text(c.text, c.metadata, with_headings) for c in chunks]
        vectors, sentence_vectors = self.m.embeddings.embed_chunks(
            embed_model, texts, [c.text for c in chunks], self.m.settings.kb.sentence_vectors,
            lambda d, t: reporter.chunks(name, d, t))
        splitter = splitter_name(params.size, params.overlap, params.unit)
        return Prepared(chunks, vectors, sentence_vectors, loader_name(Path(name).suffix), splitter)

    def _replace_chunks(self, kb: str, batch: Batch, store: VectorStore, name: str, docs: list,
                        vectors: np.ndarray, sentence_vectors: list[np.ndarray] | None = None) -> None:
        """Add the new chunks, then drop the file's old ones, in memory.

        If the store fails midway its state is unknown: it is reloaded from disk, and the files
        pending in it fail with this one.
        """
        old = [d.doc_id for d in store.docs_for_source(name)]
        if not docs and not old:
            return
        batch.changed = True
        try:
            store.add(docs, vectors, sentence_vectors)
            store.delete(old)
        except BaseException as exc:
            self.m.pool.discard(kb)
            batch.fail_all(f"not saved: the vector store failed while adding {name}: {exc}")
            batch.store = None
            raise

    def _commit(self, row: "KnowledgeBase", batch: Batch) -> None:
        """Save the batch's store once, then move its files into content/ and write their rows."""
        if not batch.pending or batch.store is None:
            return
        kb = row.name
        if batch.changed:
            batch.reporter.saving()
            try:
                batch.store.save()
            except Exception as exc:  # noqa: BLE001 - every file of the batch reports the failure
                logger.exception("saving the vector store of %s failed", kb)
                self.m.pool.discard(kb)
                batch.fail_all(f"not saved: writing the vector store failed: {type(exc).__name__}: {exc}")
                return
            self.m.pool.put(kb, batch.store)
        for p in batch.pending:
            name = p.result.file_name
            try:
                self._place(p.source, name, kb, p.staged)
                self._record(row, name, p.digest, p.result.status, "", p.docs, p.loader, p.splitter)
            except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the others
                logger.exception("recording %s failed", name)
                batch.fail(name, f"internal error: {type(exc).__name__}: {exc}")
        batch.pending.clear()

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
