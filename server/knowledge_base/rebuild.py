"""Rebuild of a knowledge base's store from its content folder, optionally with another embedding model.

Every file is indexed into a fresh store that replaces the old one only once it is complete and
saved; the database rows are then replaced in one transaction. Vectors come from the embedding
cache wherever the text is unchanged, so a rebuild costs little more than reading the files.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.db import kb_repository as repo
from server.errors import AppError
from server.knowledge_base.ingestion import ChunkParams, ProgressFn, check_upload, file_sha256, json_safe
from server.knowledge_base.loaders import loader_name
from server.knowledge_base.progress import Reporter
from server.knowledge_base.schemas import FileResult
from server.knowledge_base.splitter import splitter_name
from server.knowledge_base.vector_store import STORE_KINDS, VectorStore

if TYPE_CHECKING:
    from server.knowledge_base.ingestion import Ingestor

_SPLITTER_PARAMS = re.compile(r":(\d+)/(\d+):(chars|tokens)$")


def rebuild_kb(ingestor: "Ingestor", kb: str, *, embed_model: str | None,
               progress: ProgressFn | None) -> list[FileResult]:
    """Index every file of content/ into a fresh store, then switch the store and rows over at once."""
    m = ingestor.m
    row = m.kb_row(kb)
    model = embed_model or row.embed_model
    m.embeddings.config(model)
    content_dir = m.content_dir(kb)
    files = sorted(p for p in content_dir.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if content_dir.is_dir() else []
    reporter = Reporter(progress, len(files))
    results: list[FileResult] = []
    with m.pool.writer_lock(kb):
        old_params = {f.file_name: f.splitter for f in m.db.run(repo.list_files, row.id)}
        store = STORE_KINDS[row.vector_store](m.store_dir(kb), kb, model, **m.store_options())
        records: list[dict[str, Any]] = []
        for path in files:
            reporter.file_start(path.name)
            params = _params_of(ingestor, old_params.get(path.name))
            result = ingestor.guard(path.name, lambda: _rebuild_one(
                ingestor, row.name, model, path, store, params, reporter, records))
            results.append(result)
            reporter.file_done(result)
        reporter.saving()
        store.save()
        m.pool.put(kb, store)
        m.db.run(_replace_rows, row.id, records, model)
    shutil.rmtree(m.kb_dir(kb) / ".staging", ignore_errors=True)
    reporter.done(results)
    return results


def _rebuild_one(ingestor: "Ingestor", kb: str, model: str, path: Path, store: VectorStore, params: ChunkParams,
                 reporter: Reporter, records: list[dict[str, Any]]) -> FileResult:
    name = path.name
    check_upload([name])
    digest = file_sha256(path)
    splitter = splitter_name(params.size, params.overlap, params.unit)
    try:
        prepared = ingestor.prepare(model, name, path, params, store.index_headings, reporter)
    except AppError as exc:
        fields = ingestor.file_fields(kb, name, digest, "error", exc.message, loader_name(path.suffix), splitter)
        records.append({"name": name, "docs": [], **fields})
        raise
    docs = [(uuid.uuid4().hex, c.text, json_safe(c.metadata)) for c in prepared.chunks]
    store.add(docs, prepared.vectors, prepared.sentence_vectors)
    fields = ingestor.file_fields(kb, name, digest, "indexed", "", prepared.loader, prepared.splitter)
    records.append({"name": name, "docs": [(d, meta) for d, _, meta in docs], **fields})
    return FileResult(file_name=name, status="indexed", chunks=len(docs))


def _params_of(ingestor: "Ingestor", splitter: str | None) -> ChunkParams:
    """The chunk parameters a file was last ingested with, else the defaults."""
    match = _SPLITTER_PARAMS.search(splitter or "")
    if match:
        size, overlap = int(match.group(1)), int(match.group(2))
        if 20 <= size <= 10000 and 0 <= overlap < size:
            return ChunkParams(size, overlap, match.group(3))
    return ingestor.chunk_params(None, None)


def _replace_rows(session: Any, kb_id: int, records: list[dict[str, Any]], embed_model: str) -> None:
    repo.delete_all_files(session, kb_id)
    for record in records:
        fields = dict(record)
        name, docs = fields.pop("name"), fields.pop("docs")
        repo.save_file(session, kb_id, name, docs, **fields)
    kb = repo.refresh_kb_counts(session, kb_id)
    kb.embed_model = embed_model
