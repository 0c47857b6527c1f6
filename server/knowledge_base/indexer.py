"""KBIndexer: adds, re-ingests and rebuilds the files of knowledge bases (see ingestion.py for the design).

A rebuild indexes every file of content/ into a fresh store that replaces the old one only once it is
complete and saved; the database rows are then replaced in one transaction. Vectors come from the
embedding cache wherever the text is unchanged, so a rebuild costs little more than reading the files.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from server.db import kb_repository as repo
from server.db.kb_repository import DocRows
from server.db.records import FileFields, FileRecord, KBRecord
from server.errors import AppError, InvalidInput, NotFound
from server.knowledge_base.context import KBContext
from server.knowledge_base.ingestion import (
    AddRequest,
    Batch,
    ChunkParams,
    FileInput,
    FileJob,
    NewChunks,
    Pending,
    Prepared,
    ProgressFn,
    check_upload,
    chunk_params,
    file_sha256,
    json_safe,
    skip_reason,
)
from server.knowledge_base.loaders import (
    SUPPORTED_EXTENSIONS,
    UnreadableFile,
    UnsupportedFileType,
    load_file,
    loader_name,
)
from server.knowledge_base.progress import Reporter
from server.knowledge_base.schemas import FileResult
from server.knowledge_base.splitter import split_documents
from server.knowledge_base.types import LoadOptions
from server.knowledge_base.vector_store import VectorStore
from server.knowledge_base.vector_store.base import index_text

logger = logging.getLogger(__name__)

RebuiltFile = tuple[str, DocRows, FileFields]


@dataclass
class RebuildRun:
    """A rebuild under way: the fresh store being filled and the rows that will replace the old ones."""

    record: KBRecord
    embed_model: str
    store: VectorStore
    reporter: Reporter
    files: list[RebuiltFile] = field(default_factory=list)


class KBIndexer:
    """Puts files into knowledge bases: one batch at a time per knowledge base, under its writer lock."""

    def __init__(self, ctx: KBContext) -> None:
        self.ctx = ctx

    def chunk_params(self, chunk_size: int | None, chunk_overlap: int | None) -> ChunkParams:
        return chunk_params(self.ctx.settings, chunk_size, chunk_overlap)

    # ----- public operations
    def add_files(self, kb: str, files: list[FileInput], request: AddRequest,
                  progress: ProgressFn | None) -> list[FileResult]:
        """Stage, index and record a batch of uploads; per-file failures are reported in the results."""
        record = self.ctx.record(kb)
        given: list[tuple[str, bytes | Path]] = [(f.name, f) if isinstance(f, Path) else (f[0], f[1]) for f in files]
        items = list(zip(check_upload([name for name, _ in given]), (data for _, data in given)))
        reporter = Reporter(progress, len(items))
        results = []
        with self.ctx.pool.writer_lock(kb):
            # A knowledge base whose store cannot be opened fails as a whole (409/503).
            batch = Batch(kb, self.ctx.pool.get(kb), reporter)
            try:
                for name, data in items:
                    reporter.file_start(name)
                    result = self._guard(name, lambda: self._add_one(record, name, data, request, batch))
                    results.append(result)
                    reporter.file_done(result)
                self._commit(batch)
            finally:
                if batch.pending:  # only after an exception that stopped the batch: its changes are not saved
                    self.ctx.pool.discard(kb)
                    batch.fail_all("the upload was interrupted")
        results = [batch.failed.get(r.file_name, r) for r in results]
        reporter.done(results)
        return results

    def reingest(self, kb: str, file_name: str, params: ChunkParams, progress: ProgressFn | None) -> FileResult:
        """Index a file of content/ again (with these chunk parameters)."""
        record = self.ctx.record(kb)
        file_name = check_upload([file_name])[0]
        content = self.ctx.layout.content_dir(kb) / file_name
        if not content.is_file():
            raise NotFound(f"file {file_name!r} is not in the content folder of knowledge base {kb!r}")
        reporter = Reporter(progress, 1)
        reporter.file_start(file_name)
        with self.ctx.pool.writer_lock(kb):
            if not content.is_file():  # deleted by another writer while this one waited for the lock
                raise NotFound(f"file {file_name!r} is not in the content folder of knowledge base {kb!r}")
            existing = self.ctx.db.run(repo.get_file, record.id, file_name)
            job = FileJob(record, file_name, content, file_sha256(content), params, record.embed_model,
                          keep_old=existing is not None and existing.status != "error")
            batch = Batch(kb, self.ctx.pool.get(kb), Reporter(None, 1))  # file_done below reports the result
            result = self._guard(file_name, lambda: self._ingest(job, batch, reporter))
            self._commit(batch)
        result = batch.failed.get(file_name, result)
        reporter.file_done(result)
        reporter.done([result])
        return result

    def rebuild(self, kb: str, embed_model: str | None, progress: ProgressFn | None) -> list[FileResult]:
        """Index every file of content/ into a fresh store, then switch the store and rows over at once."""
        record = self.ctx.record(kb)
        model = embed_model or record.embed_model
        self.ctx.embeddings.config(model)
        content_dir = self.ctx.layout.content_dir(kb)
        results: list[FileResult] = []
        with self.ctx.pool.writer_lock(kb):
            # Listed under the lock: no other writer adds or deletes files while they are indexed.
            files = sorted(p for p in content_dir.iterdir() if p.is_file() and not p.name.startswith(".")) \
                if content_dir.is_dir() else []
            reporter = Reporter(progress, len(files))
            previous = {f.file_name: f for f in self.ctx.db.run(repo.list_files, record.id)}
            run = RebuildRun(record, model, self.ctx.new_store(record, model), reporter)
            for path in files:
                reporter.file_start(path.name)
                params = self._params_of(previous.get(path.name))
                result = self._guard(path.name, lambda: self._rebuild_one(run, path, params))
                results.append(result)
                reporter.file_done(result)
            reporter.saving()
            run.store.save()
            self.ctx.pool.put(kb, run.store)
            self.ctx.db.run(repo.replace_all_files, record.id, run.files, model)
        shutil.rmtree(self.ctx.layout.staging_dir(kb), ignore_errors=True)
        reporter.done(results)
        return results

    # ----- steps
    def _guard(self, name: str, step: Callable[[], FileResult]) -> FileResult:
        """Run one file's step, turning its failure into an error result."""
        try:
            return step()
        except AppError as exc:
            return FileResult.failure(name, exc)
        except Exception as exc:  # noqa: BLE001 - one broken file must not stop the batch
            logger.exception("ingesting %s failed", name)
            return FileResult(file_name=name, status="error", error=f"internal error: {type(exc).__name__}: {exc}",
                              code=AppError.code)

    def _add_one(self, record: KBRecord, name: str, data: bytes | Path, request: AddRequest,
                 batch: Batch) -> FileResult:
        ext = Path(name).suffix.lower()
        if ext not in SUPPORTED_EXTENSIONS:
            supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
            raise UnsupportedFileType(name, f"unsupported file type {ext or '(no extension)'}; supported: {supported}")
        content = self.ctx.layout.content_dir(record.name) / name
        staged, digest = self._stage(record.name, name, data)
        try:
            existing = self.ctx.db.run(repo.get_file, record.id, name)
            reason = None if request.override else skip_reason(existing, content, digest, request.to_vector_store)
            if reason:
                return FileResult(file_name=name, status="skipped", error=reason)
            keep_old = (existing is not None and existing.status != "error") or (
                existing is None and content.exists())
            job = FileJob(record, name, staged, digest, request.params, record.embed_model, staged=True,
                          keep_old=keep_old, to_vector_store=request.to_vector_store, ocr=request.ocr)
            return self._ingest(job, batch, batch.reporter)
        finally:
            if not batch.owns(staged):  # a pending file keeps its staged copy until the batch is saved
                staged.unlink(missing_ok=True)

    def _stage(self, kb: str, name: str, data: bytes | Path) -> tuple[Path, str]:
        """Copy the upload next to content/ (same filesystem, so it can be moved in atomically)."""
        staging = self.ctx.layout.staging_dir(kb)
        staging.mkdir(parents=True, exist_ok=True)
        path = staging / f"{uuid.uuid4().hex}{Path(name).suffix.lower()}"
        if isinstance(data, Path):
            if not data.is_file():
                raise NotFound(f"file {str(data)!r} does not exist")
            shutil.copyfile(data, path)
        else:
            path.write_bytes(data)
        return path, file_sha256(path)

    def _ingest(self, job: FileJob, batch: Batch, reporter: Reporter) -> FileResult:
        """Put one file's chunks into the batch's store and queue its content file and row for the save."""
        store = batch.store = batch.store or self.ctx.pool.get(job.kb.name)
        if not job.to_vector_store:
            self._replace_chunks(batch, store, job.name, NewChunks([], np.zeros((0, 1), dtype=np.float32)))
            result = FileResult(file_name=job.name, status="stored")
            batch.pending.append(Pending(job, result, [], loader_name(job.ext)))
            return result
        try:
            prepared = self._prepare(job, store.index_headings, reporter)
        except AppError as exc:
            if not job.keep_old:
                # A new file that cannot be read is kept with an error row, so the failure stays visible.
                self._place(job)
                self._record(job, FileResult.failure(job.name, exc), [],
                             loader_name(job.ext))
            raise
        chunks = self._new_chunks(prepared)
        self._replace_chunks(batch, store, job.name, chunks)
        result = FileResult(file_name=job.name, status="indexed", chunks=len(chunks.docs))
        batch.pending.append(Pending(job, result, chunks.rows(), prepared.loader))
        return result

    def _prepare(self, job: FileJob, with_headings: bool, reporter: Reporter) -> Prepared:
        """Load, split and embed one file (nothing is stored yet)."""
        ocr = self.ctx.settings.ocr if job.ocr is None else job.ocr
        # Reading the file, each page OCR reads and each batch embedded give way to chat answers first.
        foreground, paused = self.ctx.embeddings.foreground, partial(reporter.paused, job.name)

        def ocr_page(done: int, total: int) -> None:
            reporter.ocr_page(job.name, done, total)
            if done < total:
                foreground.give_way(paused)

        foreground.give_way(paused)
        docs = load_file(job.source, source=job.name, options=LoadOptions(ocr=ocr, on_ocr_page=ocr_page))
        params = job.params
        counter = self.ctx.embeddings.get(job.embed_model).count_tokens if params.unit == "tokens" else None
        chunks = split_documents(docs, params.size, params.overlap, params.unit, counter)
        if not chunks:
            raise UnreadableFile(job.name, "the file contains no text")
        texts = [index_text(c.text, c.metadata, with_headings) for c in chunks]
        vectors, sentence_vectors = self.ctx.embeddings.embed_chunks(
            job.embed_model, texts, [c.text for c in chunks], self.ctx.settings.sentence_vectors,
            lambda d, t: reporter.chunks(job.name, d, t), background=True, on_pause=paused)
        return Prepared(chunks, vectors, sentence_vectors, loader_name(job.ext))

    @staticmethod
    def _new_chunks(prepared: Prepared) -> NewChunks:
        docs = [(uuid.uuid4().hex, c.text, json_safe(c.metadata)) for c in prepared.chunks]
        return NewChunks(docs, prepared.vectors, prepared.sentence_vectors)

    def _replace_chunks(self, batch: Batch, store: VectorStore, name: str, chunks: NewChunks) -> None:
        """Add the new chunks, then drop the file's old ones, in memory.

        If the store fails midway its state is unknown: it is reloaded from disk, and the files
        pending in it fail with this one.
        """
        old = [d.doc_id for d in store.docs_for_source(name)]
        if not chunks.docs and not old:
            return
        batch.changed = True
        try:
            store.add(chunks.docs, chunks.vectors, chunks.sentence_vectors)
            store.delete(old)
        except BaseException as exc:
            self.ctx.pool.discard(batch.kb)
            batch.fail_all(f"not saved: the vector store failed while adding {name}: {exc}")
            batch.store = None
            raise

    def _commit(self, batch: Batch) -> None:
        """Save the batch's store once, then move its files into content/ and write their rows."""
        if not batch.pending or batch.store is None:
            return
        if batch.changed:
            batch.reporter.saving()
            try:
                batch.store.save()
            except Exception as exc:  # noqa: BLE001 - every file of the batch reports the failure
                logger.exception("saving the vector store of %s failed", batch.kb)
                self.ctx.pool.discard(batch.kb)
                batch.fail_all(f"not saved: writing the vector store failed: {type(exc).__name__}: {exc}")
                return
            self.ctx.pool.put(batch.kb, batch.store)
        for p in batch.pending:
            name = p.result.file_name
            try:
                self._place(p.job)
                self._record(p.job, p.result, p.docs, p.loader)
            except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the others
                logger.exception("recording %s failed", name)
                batch.fail(name, f"internal error: {type(exc).__name__}: {exc}")
        batch.pending.clear()

    def _place(self, job: FileJob) -> None:
        """Put the file's bytes into content/ (moving a staged copy in atomically)."""
        target = self.ctx.layout.content_dir(job.kb.name) / job.name
        if job.source == target:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if job.staged:
            os.replace(job.source, target)
        else:
            shutil.copyfile(job.source, target)

    def _record(self, job: FileJob, result: FileResult, docs: DocRows, loader: str) -> None:
        """Write the file's row and chunk rows."""
        fields = self._file_fields(job, result, loader)
        self.ctx.db.run(repo.save_file, job.kb.id, job.name, docs, fields)

    def _file_fields(self, job: FileJob, result: FileResult, loader: str) -> FileFields:
        """Column values of a file row, measured from its copy in content/."""
        stat = (self.ctx.layout.content_dir(job.kb.name) / job.name).stat()
        return FileFields(ext=job.ext, size=stat.st_size, mtime=stat.st_mtime, content_hash=job.digest,
                          status=result.status, error=result.error, loader=loader, splitter=job.params.splitter,
                          chunk_size=job.params.size, chunk_overlap=job.params.overlap, chunk_unit=job.params.unit)

    # ----- rebuild
    def _rebuild_one(self, run: RebuildRun, path: Path, params: ChunkParams) -> FileResult:
        name = path.name
        check_upload([name])
        job = FileJob(run.record, name, path, file_sha256(path), params, run.embed_model)
        try:
            prepared = self._prepare(job, run.store.index_headings, run.reporter)
        except AppError as exc:
            failed = FileResult.failure(name, exc)
            run.files.append((name, [], self._file_fields(job, failed, loader_name(job.ext))))
            raise
        chunks = self._new_chunks(prepared)
        run.store.add(chunks.docs, chunks.vectors, chunks.sentence_vectors)
        result = FileResult(file_name=name, status="indexed", chunks=len(chunks.docs))
        run.files.append((name, chunks.rows(), self._file_fields(job, result, prepared.loader)))
        return result

    def _params_of(self, previous: FileRecord | None) -> ChunkParams:
        """The chunk parameters a file was last ingested with, else the defaults."""
        if previous is not None and previous.chunk_size is not None and previous.chunk_overlap is not None:
            try:
                params = self.chunk_params(previous.chunk_size, previous.chunk_overlap)
            except InvalidInput:
                return self.chunk_params(None, None)
            return replace(params, unit=previous.chunk_unit or params.unit)
        return self.chunk_params(None, None)
