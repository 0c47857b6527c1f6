"""KnowledgeBaseManager: the one entry point to knowledge bases, their files, chunks and search.

Methods are synchronous and CPU-bound; async callers wrap them with ``anyio.to_thread.run_sync``.
Each knowledge base lives in ``<kb_root>/<name>/`` with ``content/`` (the files) and
``vector_store/`` (see vector_store/base.py); the database holds its rows.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast, get_args

import numpy as np

from configs import Settings
from configs.settings import SearchMode
from server.db import Database
from server.db import kb_repository as repo
from server.db.records import KBRecord
from server.errors import Conflict, InvalidInput, NotFound
from server.knowledge_base.bm25 import rare_word_weight
from server.knowledge_base.context import KBContext
from server.knowledge_base.embeddings import EmbeddingService
from server.knowledge_base.foreground import Foreground
from server.knowledge_base.indexer import KBIndexer
from server.knowledge_base.ingestion import AddRequest, check_upload
from server.knowledge_base.loaders.tables import table_of
from server.knowledge_base.names import (
    CONVERSATION_KB_PREFIX,
    is_conversation_kb,
    split_kb_names,
    validate_file_name,
    validate_kb_name,
)
from server.knowledge_base.rerank import Reranker, make_reranker, reading_text
from server.knowledge_base.retriever import (
    FusionParams,
    SearchResult,
    applied_threshold,
    candidate_count,
    fuse_rankings,
    hit_of,
    merge_kb_rankings,
    rerank_hits,
    retrieve,
)
from server.knowledge_base.schemas import ChunkInfo, FileInfo, FileResult, KBInfo, ProgressEvent, SearchHit
from server.knowledge_base.store_pool import StorePool
from server.knowledge_base.store_migration import migrate_store
from server.knowledge_base.vector_store import STORE_KINDS, VectorStore, check_kind, set_threads, usable_kinds
from server.limits import MAX_QUERY_CHARS, without_control_chars
from server.llm.local.status import local_score_url

logger = logging.getLogger(__name__)

ProgressFn = Callable[[ProgressEvent], None]
MAX_CHUNK_CHARS = 100000

__all__ = [
    "ChunkInfo",
    "FileInfo",
    "FileResult",
    "KBInfo",
    "KnowledgeBaseManager",
    "ProgressEvent",
    "SearchHit",
    "SearchResult",
]


def _kb_info(record: KBRecord) -> KBInfo:
    return KBInfo(
        name=record.name, description=record.description, vector_store=record.vector_store,
        embed_model=record.embed_model, file_count=record.file_count, chunk_count=record.chunk_count,
        created_at=record.created_at,
    )


class KnowledgeBaseManager:
    """Creates, fills, searches and deletes knowledge bases; thread-safe."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        paths = settings.paths
        assert paths.kb_root is not None and paths.cache_dir is not None  # PathSettings derives both
        self.kb_root = Path(paths.kb_root)
        self.ctx = KBContext.build(settings.kb, db, self.kb_root, Path(paths.cache_dir))
        set_threads(settings.kb.faiss_threads)
        self.indexer = KBIndexer(self.ctx)
        self.reranker = make_reranker(settings.kb.rerank, local_score_url(settings), settings.server.api_key)
        self._lock = threading.RLock()

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def pool(self) -> StorePool:
        return self.ctx.pool

    @property
    def embeddings(self) -> EmbeddingService:
        return self.ctx.embeddings

    @property
    def foreground(self) -> Foreground:
        """Chat answers run inside ``foreground.answering()``; adding files gives way to them."""
        return self.ctx.embeddings.foreground

    # ----- layout
    def kb_dir(self, kb: str) -> Path:
        return self.ctx.layout.kb_dir(kb)

    def content_dir(self, kb: str) -> Path:
        return self.ctx.layout.content_dir(kb)

    def store_dir(self, kb: str) -> Path:
        return self.ctx.layout.store_dir(kb)

    def kb_row(self, kb: str) -> KBRecord:
        """The database record of a knowledge base, or NotFound."""
        return self.ctx.record(kb)

    # ----- knowledge bases
    def list_kbs(self) -> list[KBInfo]:
        """The knowledge bases people made (those of conversations' dropped files are not listed)."""
        return [_kb_info(row) for row in self.db.run(repo.list_kbs) if not is_conversation_kb(row.name)]

    def migrate_kb(self, name: str, to_kind: str) -> KBInfo:
        """Move a knowledge base to another vector store kind, reading its vectors back (no re-embedding)."""
        return _kb_info(migrate_store(self.ctx, name, to_kind))

    def vector_store_kinds(self) -> list[str]:
        """The vector stores a new knowledge base may use with this configuration."""
        return usable_kinds(self.ctx.store_options)

    def get_kb(self, name: str) -> KBInfo:
        return _kb_info(self.kb_row(name))

    def create_kb(self, name: str, description: str = "", embed_model: str | None = None,
                  vector_store: str | None = None, *, for_conversation: bool = False) -> KBInfo:
        validate_kb_name(name)
        if is_conversation_kb(name) != for_conversation:
            raise InvalidInput(f"knowledge base names starting with {CONVERSATION_KB_PREFIX!r} are kept for files "
                               "dropped into a conversation")
        if not isinstance(description, str) or len(description) > 2000:
            raise InvalidInput("description must be a string of at most 2000 characters")
        embed_model = embed_model or self.settings.kb.default_embed_model
        self.embeddings.config(embed_model)
        vector_store = check_kind(vector_store or self.settings.kb.default_vector_store, self.ctx.store_options)
        with self._lock, self.pool.writer_lock(name), self.db.unit_of_work() as session:
            if repo.get_kb(session, name) is not None:
                raise Conflict(f"knowledge base {name!r} already exists", code="kb_exists")
            stale = self.store_dir(name)
            if stale.exists():
                # A store without a database row is left from cleared tables; its chunks are unknown to the DB.
                logger.warning("removing stale vector store of %s at %s", name, stale)
                shutil.rmtree(stale)
            self.pool.discard(name)
            self.content_dir(name).mkdir(parents=True, exist_ok=True)
            row = repo.add_kb(session, name, description, vector_store, embed_model)
        logger.info("created knowledge base %s (%s, %s)", name, vector_store, embed_model)
        return _kb_info(row)

    def delete_kb(self, name: str) -> None:
        """Delete a knowledge base with its files and index."""
        validate_kb_name(name)
        with self._lock, self.pool.writer_lock(name):
            record = self.db.run(repo.get_kb, name)
            if record is None or not self.db.run(repo.delete_kb, name):
                raise NotFound(f"knowledge base {name!r} does not exist", code="kb_not_found")
            self.pool.discard(name)
            if record.vector_store in STORE_KINDS:
                STORE_KINDS[record.vector_store].discard_saved(self.ctx.store_options, name)
            shutil.rmtree(self.kb_dir(name), ignore_errors=True)
        logger.info("deleted knowledge base %s", name)

    # ----- files
    def add_files(self, kb: str, files: list[tuple[str, bytes]] | list[Path], *, override: bool = False,
                  chunk_size: int | None = None, chunk_overlap: int | None = None, to_vector_store: bool = True,
                  ocr: bool | None = None, progress: ProgressFn | None = None) -> list[FileResult]:
        """Store files in content/ and ingest them; per-file failures are reported in the results.
        ocr=False reads no pictures (None follows the setting kb.ocr)."""
        self.kb_row(kb)  # an unknown knowledge base is reported before bad parameters
        request = AddRequest(self.indexer.chunk_params(chunk_size, chunk_overlap), override, to_vector_store, ocr)
        return self.indexer.add_files(kb, list(files), request, progress)

    def check_upload(self, kb: str, file_names: list[str], chunk_size: int | None = None,
                     chunk_overlap: int | None = None) -> None:
        """Validate an upload before anything is stored (unknown KB, bad names or chunk sizes, no supported type)."""
        self.kb_row(kb)
        self.indexer.chunk_params(chunk_size, chunk_overlap)
        check_upload(file_names)

    def reingest_file(self, kb: str, file_name: str, *, chunk_size: int | None = None,
                      chunk_overlap: int | None = None, progress: ProgressFn | None = None) -> FileResult:
        self.kb_row(kb)
        return self.indexer.reingest(kb, file_name, self.indexer.chunk_params(chunk_size, chunk_overlap), progress)

    def rebuild(self, kb: str, progress: ProgressFn | None = None, *,
                embed_model: str | None = None) -> list[FileResult]:
        """Recreate the vector store from content/ (optionally switching the embedding model)."""
        return self.indexer.rebuild(kb, embed_model, progress)

    def list_files(self, kb: str) -> list[FileInfo]:
        """Files recorded in the database, plus files found in content/ that were never ingested ("pending")."""
        row = self.kb_row(kb)
        infos = {
            f.file_name: FileInfo(file_name=f.file_name, ext=f.ext, size=f.size, mtime=f.mtime,
                                  chunk_count=f.chunk_count, status=f.status, error=f.error or "", loader=f.loader,
                                  splitter=f.splitter)
            for f in self.db.run(repo.list_files, row.id)
        }
        content = self.content_dir(kb)
        if content.is_dir():
            for path in sorted(content.iterdir()):
                if path.is_file() and not path.name.startswith(".") and path.name not in infos:
                    stat = path.stat()
                    infos[path.name] = FileInfo(file_name=path.name, ext=path.suffix.lower(), size=stat.st_size,
                                                mtime=stat.st_mtime, status="pending")
        return [infos[name] for name in sorted(infos)]

    def file_path(self, kb: str, file_name: str) -> Path:
        """Path of a file in content/, for downloads; NotFound when absent."""
        self.kb_row(kb)
        path = self.content_dir(kb) / validate_file_name(file_name)
        if not path.is_file():
            raise NotFound(f"file {file_name!r} is not in knowledge base {kb!r}", code="file_not_found")
        return path

    def delete_file(self, kb: str, file_name: str, delete_content: bool = False) -> None:
        """Remove a file's chunks and row; with delete_content also the file itself."""
        row = self.kb_row(kb)
        file_name = validate_file_name(file_name)
        path = self.content_dir(kb) / file_name
        with self.pool.writer_lock(kb):
            existing = self.db.run(repo.get_file, row.id, file_name)
            if existing is None and not path.is_file():
                raise NotFound(f"file {file_name!r} is not in knowledge base {kb!r}", code="file_not_found")
            store = self.pool.get(kb)
            if store.docs_for_source(file_name):
                with self.pool.saving(kb, store):
                    store.delete_source(file_name)
            self.db.run(repo.delete_file, row.id, file_name)
            if delete_content:
                path.unlink(missing_ok=True)

    # ----- chunks
    def list_chunks(self, kb: str, file_name: str) -> list[ChunkInfo]:
        row = self.kb_row(kb)
        file_name = validate_file_name(file_name)
        if self.db.run(repo.get_file, row.id, file_name) is None:
            raise NotFound(f"file {file_name!r} is not in knowledge base {kb!r}", code="file_not_found")
        return [ChunkInfo(doc_id=d.doc_id, text=d.text, metadata=d.metadata)
                for d in self.pool.get(kb).docs_for_source(file_name)]

    def update_chunk(self, kb: str, doc_id: str, text: str) -> ChunkInfo:
        """Replace a chunk's text and re-embed it; its metadata is kept."""
        row = self.kb_row(kb)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("chunk text must not be empty")
        if len(text) > MAX_CHUNK_CHARS:
            raise InvalidInput(f"chunk text is longer than {MAX_CHUNK_CHARS} characters")
        with self.pool.writer_lock(kb):
            store = self.pool.get(kb)
            doc = store.get(doc_id)
            if doc is None:
                raise NotFound(f"chunk {doc_id!r} is not in knowledge base {kb!r}", code="chunk_not_found")
            vectors, sentence_vectors = self.embeddings.embed_chunks(
                row.embed_model, [store.index_text(text, doc.metadata)], [text], self.settings.kb.sentence_vectors)
            with self.pool.saving(kb, store):
                updated = store.update(doc_id, text, vectors[0], sentence_vectors[0] if sentence_vectors else None)
        return ChunkInfo(doc_id=updated.doc_id, text=updated.text, metadata=updated.metadata)

    def delete_chunk(self, kb: str, doc_id: str) -> None:
        row = self.kb_row(kb)
        with self.pool.writer_lock(kb):
            store = self.pool.get(kb)
            if store.get(doc_id) is None:
                raise NotFound(f"chunk {doc_id!r} is not in knowledge base {kb!r}", code="chunk_not_found")
            with self.pool.saving(kb, store):
                store.delete([doc_id])
            self.db.run(repo.delete_doc, row.id, doc_id)

    # ----- retrieval
    def score_threshold(self, kb: str, requested: float | None = None) -> float:
        """The vector score threshold a search of ``kb`` applies when asked for ``requested`` (None: the
        configured one, else the one calibrated for its embedding model); for several "+"-joined knowledge
        bases the lowest of theirs."""
        cfg = self.settings.kb
        return min(applied_threshold(requested, cfg, self.embeddings.config(self.kb_row(name).embed_model))
                   for name in split_kb_names(kb))

    def opening_chunks(self, kb: str, limit: int, file_names: Sequence[str] | None = None) -> list[SearchHit]:
        """The first chunks of the knowledge base's files (or of ``file_names`` among them), in the order the files
        were added: the first chunk of each, then the second of each, up to ``limit``. What a document is about is
        said at its start, so this is what a question about files as a whole is answered from. Scores are 0:
        nothing was searched."""
        row = self.kb_row(kb)
        store = self.pool.get(kb)
        files = sorted((f for f in self.db.run(repo.list_files, row.id)
                        if f.chunk_count and (file_names is None or f.file_name in file_names)), key=lambda f: f.id)
        per_file = [store.docs_for_source(f.file_name) for f in files]
        hits: list[SearchHit] = []
        depth = 0
        while len(hits) < limit and any(depth < len(docs) for docs in per_file):
            for doc in (docs[depth] for docs in per_file if depth < len(docs)):
                if len(hits) < limit:
                    hits.append(hit_of(doc, 0.0, len(hits) + 1, kb))
            depth += 1
        return hits

    def file_titles(self, kb: str) -> dict[str, str]:
        """Each file of ``kb`` with its document's title as its loader read it ("" for none)."""
        store = self.pool.get(kb)
        firsts = {source: store.docs_for_source(source)[:1] for source in store.sources()}
        return {source: str(docs[0].metadata.get("title") or "") for source, docs in firsts.items() if docs}

    def table_chunks(self, kb: str, hit: SearchHit) -> list[SearchHit]:
        """The chunks of the table that ``hit`` (a chunk of a table's rows) belongs to, in order: those of its file
        and sheet under the same headings that hold rows. They carry ``hit``'s score."""
        table = table_of(hit.metadata)
        same = [d for d in self.pool.get(kb).docs_for_source(str(hit.metadata.get("source") or ""))
                if d.metadata.get("rows") and table_of(d.metadata) == table]
        return [hit_of(d, hit.score, n, kb) for n, d in enumerate(same, 1)]

    def closest_chunk(self, kb: str, query: str) -> SearchHit | None:
        """The chunk of ``kb`` (or of several "+"-joined ones) that comes closest to the query, by its own vector
        or by its closest sentence's, whatever the score; its score is that cosine. None for an empty one."""
        best: tuple[float, SearchHit] | None = None
        for name in split_kb_names(kb):
            store = self.pool.get(name)
            if len(store) == 0:
                continue
            vector = self.embeddings.embed_query(self.kb_row(name).embed_model, query)
            for doc, score in store.vector_search(vector, 1) + store.sentence_search(vector, 1):
                if best is None or score > best[0]:
                    best = (score, hit_of(doc, score, 1, name))
        return None if best is None else best[1]

    def relevance_floor(self, kb: str, lang: str) -> float | None:
        """The cosine below which ``kb``'s passages are taken not to answer a question in ``lang`` (its embedding
        model's ``relevance_floor``); for several "+"-joined knowledge bases the lowest, and None when any of
        their models has none."""
        return self._lowest_cosine(kb, lang, "relevance_floor")

    def relevance_doubt(self, kb: str, lang: str) -> float | None:
        """The cosine below which a question in ``lang`` must also share a distinctive word with ``kb`` to be
        taken as answerable (its embedding model's ``relevance_doubt``); lowest and None as for the floor."""
        return self._lowest_cosine(kb, lang, "relevance_doubt")

    def _lowest_cosine(self, kb: str, lang: str, field: str) -> float | None:
        configs = [self.embeddings.config(self.kb_row(name).embed_model) for name in split_kb_names(kb)]
        values = [getattr(c, field).get(lang) for c in configs]
        return None if any(v is None for v in values) else min(v for v in values if v is not None)

    def keyword_score(self, kb: str, query: str) -> float:
        """How distinctive the words are that the query shares with ``kb``: the BM25 score of its best-matching
        chunk over the weight of a word that only one chunk holds (``rare_word_weight``): about 0.4 for one rare
        word shared once (bm25s scores a single occurrence at 1 / (1 + k1) of the word's weight), more for more
        words or more occurrences, 0 when no chunk holds any of its words; for several "+"-joined knowledge bases
        the highest."""
        best = 0.0
        for name in split_kb_names(kb):
            store = self.pool.get(name)
            unit = rare_word_weight(len(store))
            hits = store.bm25_search(query, 1) if unit > 0 else []
            best = max([best, *(float(score) / unit for _, score in hits)])
        return best

    def unmentioned(self, kb: str, terms: Sequence[str]) -> list[str]:
        """Those of ``terms`` (codes.codes of a question) that no chunk of ``kb``, or of any of several "+"-joined
        knowledge bases, mentions (``VectorStore.mentions``)."""
        if not terms:
            return []
        stores = [self.pool.get(name) for name in split_kb_names(kb)]
        return [term for term in terms if not any(store.mentions(term) for store in stores)]

    def search(self, kb: str, query: str, top_k: int | None = None, score_threshold: float | None = None,
               mode: str | None = None, file_name: str | None = None, rerank: bool = True,
               rerank_query: str | None = None, context: str | None = None) -> SearchResult:
        """Top chunks for a query; scores in [0, 1] (see retriever.py for their meaning per mode).

        ``kb`` may name several knowledge bases joined by "+" ("laws+handbook"): each is searched and
        the rankings are merged (see ``merge_kb_rankings``); every hit then says its ``kb`` in its metadata.
        With a reranker configured (settings ``kb.rerank``) and ``rerank`` true, its top candidates
        are reordered by the reranker, which judges them against ``rerank_query`` when given (a search
        with the question and a hypothetical answer is reranked for the question as asked), else against
        ``query``. With ``context`` (the question a follow-up follows), the chunks are also ranked for ``context``
        then ``query``, and the two rankings fused by reciprocal rank before any reranking: a follow-up rewritten
        to stand alone still finds what the exchange it continues was about. The result also says the score
        threshold that was applied.
        """
        names = split_kb_names(kb)
        if len(names) > 1:
            if file_name is not None:
                raise InvalidInput("file_name needs a single knowledge base")
            top_k = self.settings.kb.top_k if top_k is None else top_k
            results = {name: self.search(name, query, top_k, score_threshold, mode, None, rerank, rerank_query,
                                         context)
                       for name in names}
            same_model = len({self.kb_row(name).embed_model for name in names}) == 1
            by_score = same_model and (mode or self.settings.kb.search_mode) == "vector"
            merged = merge_kb_rankings(dict(results), top_k, by_score, self.settings.kb.rrf_k)
            return SearchResult(merged, min(r.threshold_applied for r in results.values()))
        row = self.kb_row(kb)
        cfg = self.settings.kb
        query = without_control_chars(query) if isinstance(query, str) else query
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must not be empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"query is longer than {MAX_QUERY_CHARS} characters")
        top_k = cfg.top_k if top_k is None else top_k
        if not isinstance(top_k, int) or not 1 <= top_k <= 100:
            raise InvalidInput(f"top_k must be an integer from 1 to 100, got {top_k!r}")
        mode = mode or cfg.search_mode
        if mode not in get_args(SearchMode):
            raise InvalidInput(f"search mode must be one of {', '.join(get_args(SearchMode))}, got {mode!r}")
        threshold = applied_threshold(score_threshold, cfg, self.embeddings.config(row.embed_model))
        if not 0.0 <= float(threshold) <= 1.0:
            raise InvalidInput(f"score_threshold must be between 0 and 1, got {threshold!r}")
        store = self.pool.get(kb)
        if file_name is not None:
            file_name = validate_file_name(file_name)
            if file_name not in store.sources() and self.db.run(repo.get_file, row.id, file_name) is None:
                raise NotFound(f"file {file_name!r} is not in knowledge base {kb!r}", code="file_not_found")
        if len(store) == 0:
            return SearchResult([], float(threshold))
        vector = self.embeddings.embed_query(row.embed_model, query) if mode != "bm25" else None
        params = FusionParams.from_settings(cfg)
        reranker = self.reranker if rerank else None
        pool = max(top_k, cfg.rerank.pool) if reranker is not None else top_k
        context = without_control_chars(context or "").strip()
        # Fused rankings are read deeper than the hits wanted, as each ranking's own candidates are.
        depth = candidate_count(pool) if context else pool
        hits = retrieve(store, query, vector, top_k=depth, mode=mode, score_threshold=float(threshold),
                        source=file_name, params=params)
        if context:
            joined = f"{context[: MAX_QUERY_CHARS - len(query) - 1]} {query}"
            joined_vector = self.embeddings.embed_query(row.embed_model, joined) if mode != "bm25" else None
            in_context = retrieve(store, joined, joined_vector, top_k=depth, mode=mode,
                                  score_threshold=float(threshold), source=file_name, params=params)
            hits = fuse_rankings([hits, in_context], pool, cfg.rrf_k)
        if reranker is not None:
            texts = self._reading_texts(reranker, row, store, query, vector, hits)
            hits = rerank_hits(reranker, rerank_query or query, hits, top_k, texts)
        return SearchResult([hit.model_copy(update={"metadata": {**hit.metadata, "kb": kb}}) for hit in hits],
                            float(threshold))

    def _reading_texts(self, reranker: Reranker, row: KBRecord, store: VectorStore, query: str,
                       vector: np.ndarray | None, hits: list[SearchHit]) -> list[str] | None:
        """What the reranker reads of each hit: None for whole texts, else each hit's title and its sentences
        closest to the query."""
        if reranker.passage_sentences is None:
            return None
        vector = self.embeddings.embed_query(row.embed_model, query) if vector is None else vector
        texts = []
        for hit in hits:
            similarities = store.sentence_scores(hit.doc_id, vector)
            title = str((hit.metadata.get("heading_path") or [""])[0])
            texts.append(reading_text(hit.text, title, None if similarities is None else similarities.tolist(),
                                      reranker.passage_sentences))
        return texts

    def sentence_similarities(self, query: str, hits: list[SearchHit]) -> list[list[float] | None]:
        """Per hit, the cosine of each of its sentences with the query, in text order (see
        ``sentences.sentence_spans``); None for a hit whose chunk has no sentence vectors or is gone."""
        out: list[list[float] | None] = []
        vectors: dict[str, np.ndarray] = {}
        for hit in hits:
            kb = str(hit.metadata.get("kb") or "")
            try:
                model = self.kb_row(kb).embed_model
                store = self.pool.get(kb)
            except NotFound:
                out.append(None)
                continue
            if model not in vectors:
                vectors[model] = self.embeddings.embed_query(model, query)
            scores = store.sentence_scores(hit.doc_id, vectors[model])
            out.append(None if scores is None else [round(float(x), 6) for x in scores])
        return out

    def embed(self, texts: list[str], model: str | None = None, is_query: bool = False) -> list[list[float]]:
        """Vectors of texts with a configured embedding model (passages go through the cache)."""
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("texts must be a list of strings")
        if is_query:
            return [cast(list[float], self.embeddings.embed_query(model, t).tolist()) for t in texts]
        return cast(list[list[float]], self.embeddings.embed_passages(model, texts).tolist())

    def close(self) -> None:
        if self.reranker is not None:
            self.reranker.close()
        self.pool.clear()
        self.embeddings.close()
