"""Driving the real KnowledgeBaseManager from benchmarks: temp instances, passage ingestion, scored searches."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import make_settings
from benchmarks.datasets import RetrievalSet
from benchmarks.metrics import GoldMatcher, RankingScores, contains_answer

logger = logging.getLogger("benchmarks.kb")

E5 = "multilingual-e5-small"
MINILM = "all-MiniLM-L6-v2"
EMBED_MODELS = (E5, MINILM)


@contextlib.contextmanager
def open_manager(data_root: Path, cache_dir: Path | None = None, **kb_overrides: Any) -> Iterator[Any]:
    """A KnowledgeBaseManager over a fresh database under data_root, closed afterwards.

    ``cache_dir`` shares one embedding cache between managers (the same texts are embedded once).
    """
    from server.db.engine import Database
    from server.knowledge_base.embeddings import use_sleeping_openmp_threads
    from server.knowledge_base.manager import KnowledgeBaseManager

    # Every search encodes its query, as a first question does, so timings include the encoder.
    sections: dict[str, Any] = {"kb": {"query_cache": 0, **kb_overrides}}
    paths = {"data_root": data_root, **({"cache_dir": cache_dir} if cache_dir else {})}
    settings = make_settings(data_root, **sections)
    settings = settings.model_copy(update={"paths": settings.paths.model_validate(paths)})
    use_sleeping_openmp_threads()
    db = Database(settings.paths.database_url)
    db.create_tables()
    manager = KnowledgeBaseManager(settings, db)
    try:
        yield manager
    finally:
        manager.close()
        db.dispose()


def passage_file_name(index: int) -> str:
    return f"p{index:05d}.txt"


@dataclass
class IngestReport:
    """What ingesting one retrieval set into one knowledge base cost."""

    kb: str
    files: int
    chunks: int
    seconds: float
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"kb": self.kb, "files": self.files, "chunks": self.chunks, "seconds": round(self.seconds, 2),
                "errors": self.errors[:20], "error_count": len(self.errors)}


def ingest_passages(
    manager: Any,
    kb: str,
    passages: list[str],
    *,
    embed_model: str,
    chunk_size: int,
    chunk_overlap: int,
    via: str = "rebuild",
    batch: int = 200,
) -> IngestReport:
    """Create kb and ingest each passage as its own .txt file: loader, splitter, embeddings, index.

    via="rebuild" writes the files into the knowledge base's content folder and calls rebuild(),
    which indexes them all and saves the store once; via="add_files" uploads them in batches through
    add_files(), which saves the store after every file (the upload path, slower for many files).
    """
    manager.create_kb(kb, embed_model=embed_model)
    files = [(passage_file_name(i), text.encode("utf-8")) for i, text in enumerate(passages)]
    start = time.perf_counter()
    if via == "rebuild":
        content = manager.content_dir(kb)
        for name, data in files:
            (content / name).write_bytes(data)
        with chunking(manager, chunk_size, chunk_overlap):
            results = manager.rebuild(kb)
    else:
        results = []
        for first in range(0, len(files), batch):
            results += manager.add_files(kb, files[first : first + batch], chunk_size=chunk_size,
                                         chunk_overlap=chunk_overlap)
    seconds = time.perf_counter() - start
    chunks = sum(int(r.chunks or 0) for r in results)
    errors = [f"{r.file_name}: {r.error}" for r in results if r.status == "error"]
    if errors:
        logger.warning("%s: %d of %d passages failed to ingest, first: %s", kb, len(errors), len(files), errors[0])
    logger.info("%s: %d passages -> %d chunks in %.1f s", kb, len(files), chunks, seconds)
    return IngestReport(kb, len(files), chunks, seconds, errors)


@contextlib.contextmanager
def chunking(manager: Any, chunk_size: int, chunk_overlap: int) -> Iterator[None]:
    """Temporarily set the default chunk size and overlap that rebuild() uses for files never ingested."""
    kb_settings = manager.settings.kb
    saved = (kb_settings.chunk_size, kb_settings.chunk_overlap)
    kb_settings.chunk_size, kb_settings.chunk_overlap = chunk_size, chunk_overlap
    try:
        yield
    finally:
        kb_settings.chunk_size, kb_settings.chunk_overlap = saved


@dataclass
class EvalResult:
    """Ranking metrics of one (knowledge base, mode) over a retrieval set, plus score samples."""

    metrics: dict[str, Any]
    positive_scores: list[float] = field(default_factory=list)  # best gold chunk's score, when retrieved
    negative_scores: list[float] = field(default_factory=list)  # best non-gold chunk's score
    seconds: float = 0.0


def evaluate(
    manager: Any,
    kb: str,
    rset: RetrievalSet,
    mode: str,
    *,
    top_k: int = 10,
    matcher: GoldMatcher | None = None,
) -> EvalResult:
    """Search every question of rset in kb with score_threshold 0 and score the ranked chunks."""
    matcher = matcher or GoldMatcher(rset.passages)
    scores = RankingScores()
    result = EvalResult(metrics={})
    start = time.perf_counter()
    for question in rset.questions:
        hits = manager.search(kb, question.text, top_k=top_k, score_threshold=0.0, mode=mode)
        flags = [matcher.is_hit(hit.text, question.gold) for hit in hits]
        answer_hit = contains_answer([hit.text for hit in hits[:5]], question.answers) if question.answers else None
        scores.add(flags, answer_hit)
        gold_scores = [hit.score for hit, flag in zip(hits, flags) if flag]
        other_scores = [hit.score for hit, flag in zip(hits, flags) if not flag]
        if gold_scores:
            result.positive_scores.append(max(gold_scores))
        if other_scores:
            result.negative_scores.append(max(other_scores))
    result.seconds = time.perf_counter() - start
    result.metrics = scores.as_dict()
    if top_k < 10:
        # Fewer results than the cut-off: recall beyond top_k is not measured.
        for k in scores.cutoffs:
            if k > top_k:
                result.metrics[f"R@{k}"] = None
    result.metrics["search_ms"] = round(1000 * result.seconds / max(1, len(rset.questions)), 2)
    return result


def cache_query_vectors(manager: Any, size: int = 65536) -> None:
    """Memoise query embeddings on this manager: the grid searches each question in many configurations.

    Rankings are unchanged; only repeated encodings of the same question are saved, so search times
    measured afterwards exclude query encoding (query.py measures latency properly).
    """
    import functools

    manager.embeddings.embed_query = functools.lru_cache(maxsize=size)(manager.embeddings.embed_query)


@contextlib.contextmanager
def fusion_weights(manager: Any, vector: float, bm25: float) -> Iterator[None]:
    """Temporarily set the hybrid fusion weights the manager reads from its settings."""
    kb_settings = manager.settings.kb
    saved = (kb_settings.hybrid_vector_weight, kb_settings.hybrid_bm25_weight)
    kb_settings.hybrid_vector_weight, kb_settings.hybrid_bm25_weight = vector, bm25
    try:
        yield
    finally:
        kb_settings.hybrid_vector_weight, kb_settings.hybrid_bm25_weight = saved
