"""Retrieval over one knowledge base's store: dense, BM25, or both fused by weighted reciprocal rank.

There are up to three rankings of the chunks: by chunk vector, by best sentence vector (where the
store holds sentence vectors, see ``vector_store/sentence_index.py``) and by BM25. ``vector`` mode
fuses the first two, ``bm25`` uses the last, ``hybrid`` fuses all three.

Scores shown to users are in [0, 1], higher is better:

* vector: max(0, cosine) of the normalised query and chunk (or best sentence) vectors;
* bm25: the chunk's BM25 score divided by the best BM25 score of that query (the top hit is 1.0);
* hybrid: the largest of the chunk's normalised component scores (0 for a missing component).

Fusion is weighted reciprocal rank, ``sum(w_i / (k + rank_i))`` over the top ``max(top_k * 4, 20)``
candidates of each ranking, so no score scale matters. The score threshold applies to vector scores
only: dense and sentence candidates below it are dropped before fusion, and BM25 results are never
thresholded (BM25 scores have no absolute meaning).

With a reranker (rerank.py), the top candidates of any mode are reordered by it, and a hit's score
is then the reranker's relevance in [0, 1].
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from configs.settings import EmbedModelConfig, KBSettings
from server.knowledge_base.rerank import Reranker, RerankError
from server.knowledge_base.schemas import SearchHit
from server.knowledge_base.vector_store import StoredDoc, VectorStore

logger = logging.getLogger(__name__)

_DEFAULTS = KBSettings.model_fields


@dataclass(frozen=True)
class FusionParams:
    """Weights and constant of reciprocal-rank fusion; the defaults are those of KBSettings."""

    rrf_k: int = _DEFAULTS["rrf_k"].default
    vector_weight: float = _DEFAULTS["hybrid_vector_weight"].default
    bm25_weight: float = _DEFAULTS["hybrid_bm25_weight"].default
    sentence_weight: float = _DEFAULTS["hybrid_sentence_weight"].default

    @classmethod
    def from_settings(cls, settings: KBSettings) -> "FusionParams":
        return cls(settings.rrf_k, settings.hybrid_vector_weight, settings.hybrid_bm25_weight,
                   settings.hybrid_sentence_weight)


class SearchResult(list[SearchHit]):
    """The hits of a search, best first, and the vector score threshold it applied (see ``applied_threshold``;
    over several knowledge bases, the lowest of theirs)."""

    def __init__(self, hits: Iterable[SearchHit] = (), threshold_applied: float = 0.0) -> None:
        super().__init__(hits)
        self.threshold_applied = threshold_applied


def applied_threshold(requested: float | None, settings: KBSettings, model: EmbedModelConfig) -> float:
    """The vector score threshold a search applies: the requested one, else the configured one, else the one
    calibrated for the knowledge base's embedding model."""
    if requested is not None:
        return requested
    if settings.score_threshold is not None:
        return settings.score_threshold
    return model.score_threshold


def candidate_count(top_k: int) -> int:
    """How many candidates each side contributes to fusion."""
    return max(top_k * 4, 20)


def normalize_bm25(hits: list[tuple[StoredDoc, float]]) -> list[tuple[StoredDoc, float]]:
    """BM25 scores divided by the best score of the query, so the top hit scores 1.0."""
    if not hits:
        return []
    best = max(score for _, score in hits)
    return [(doc, score / best if best > 0 else 0.0) for doc, score in hits]


def fuse(
    dense: list[tuple[StoredDoc, float]],
    sparse: list[tuple[StoredDoc, float]],
    top_k: int,
    params: FusionParams,
    sentences: list[tuple[StoredDoc, float]] | None = None,
) -> list[tuple[StoredDoc, float]]:
    """Weighted RRF of the ranked lists (scores already normalised); returns (doc, display score)."""
    fused: dict[int, float] = {}
    display: dict[int, float] = {}
    docs: dict[int, StoredDoc] = {}
    rankings = ((params.vector_weight, dense), (params.bm25_weight, sparse),
                (params.sentence_weight, sentences or []))
    for weight, ranked in rankings:
        for rank, (doc, score) in enumerate(ranked, start=1):
            docs[doc.id] = doc
            fused[doc.id] = fused.get(doc.id, 0.0) + weight / (params.rrf_k + rank)
            display[doc.id] = max(display.get(doc.id, 0.0), score)
    order = sorted(fused, key=lambda i: (-fused[i], -display[i], i))
    return [(docs[i], display[i]) for i in order[:top_k]]


def retrieve(
    store: VectorStore,
    query: str,
    query_vector: np.ndarray | None,
    *,
    top_k: int,
    mode: str,
    score_threshold: float,
    source: str | None = None,
    params: FusionParams = FusionParams(),
) -> list[SearchHit]:
    """Top chunks of the store for a query in the given mode (see the module docstring)."""
    pool = candidate_count(top_k)
    dense: list[tuple[StoredDoc, float]] = []
    sparse: list[tuple[StoredDoc, float]] = []
    sentences: list[tuple[StoredDoc, float]] = []
    if mode in ("vector", "hybrid"):
        if query_vector is None:
            raise ValueError("vector and hybrid search need a query vector")
        dense = [(d, s) for d, s in store.vector_search(query_vector, pool, source) if s >= score_threshold]
        if params.sentence_weight > 0:
            sentences = [(d, s) for d, s in store.sentence_search(query_vector, pool, source) if s >= score_threshold]
    if mode in ("bm25", "hybrid"):
        sparse = normalize_bm25(store.bm25_search(query, pool, source))
    if mode == "bm25":
        ranked = sparse[:top_k]
    elif mode == "vector" and not sentences:
        ranked = dense[:top_k]
    else:
        ranked = fuse(dense, sparse, top_k, params, sentences)
    return [hit_of(doc, score, r) for r, (doc, score) in enumerate(ranked, start=1)]


def hit_of(doc: StoredDoc, score: float, rank: int, kb: str | None = None) -> SearchHit:
    """A stored chunk as a hit; ``kb`` names its knowledge base in the metadata (as a search over several does)."""
    metadata = {**doc.metadata, "kb": kb} if kb is not None else dict(doc.metadata)
    return SearchHit(doc_id=doc.doc_id, text=doc.text, score=round(float(score), 6), metadata=metadata, rank=rank)


def fuse_rankings(rankings: Sequence[Sequence[SearchHit]], top_k: int, rrf_k: int) -> list[SearchHit]:
    """One ranking of the chunks of several rankings of the same store (say, for two queries): reciprocal-rank
    fusion, each chunk keeping its best display score."""
    fused: dict[str, float] = {}
    best: dict[str, SearchHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.doc_id] = fused.get(hit.doc_id, 0.0) + 1.0 / (rrf_k + rank)
            if hit.doc_id not in best or hit.score > best[hit.doc_id].score:
                best[hit.doc_id] = hit
    order = sorted(fused, key=lambda i: (-fused[i], -best[i].score))[:top_k]
    return [best[i].model_copy(update={"rank": rank}) for rank, i in enumerate(order, start=1)]


def rerank_hits(reranker: "Reranker", query: str, hits: list[SearchHit], top_k: int,
                texts: list[str] | None = None) -> list[SearchHit]:
    """The hits reordered by the reranker's scores (which become their scores), cut to top_k. The reranker reads
    ``texts``, one per hit, when given, else the hits' texts.

    A reranker that fails leaves the first ranking in place: a worse order beats no answer.
    """
    if len(hits) < 2:
        return hits[:top_k]
    try:
        scores = reranker.scores(query, texts if texts is not None else [hit.text for hit in hits])
    except RerankError as exc:
        logger.warning("keeping the first ranking: %s", exc.message)
        return hits[:top_k]
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], hits[i].rank))[:top_k]
    return [
        hits[i].model_copy(update={"score": round(float(scores[i]), 6), "rank": rank})
        for rank, i in enumerate(order, start=1)
    ]


def merge_kb_rankings(rankings: dict[str, list[SearchHit]], top_k: int, by_score: bool, rrf_k: int) -> list[SearchHit]:
    """One ranking from the rankings of several knowledge bases.

    ``by_score`` (vector search, one embedding model for all): cosine scores are comparable, so hits are
    merged by score. Otherwise (BM25 and hybrid scores are normalised per knowledge base; different models'
    cosines differ in scale) by reciprocal rank in its own knowledge base (``fuse_rankings``: chunk ids are unique
    across knowledge bases, so each hit counts once); a hit keeps its own score for display.
    """
    if not by_score:
        return fuse_rankings(list(rankings.values()), top_k, rrf_k)
    pooled = sorted((hit for hits in rankings.values() for hit in hits), key=lambda hit: (-hit.score, hit.rank))
    return [hit.model_copy(update={"rank": rank}) for rank, hit in enumerate(pooled[:top_k], start=1)]
