"""Retrieval over one knowledge base's store: dense, BM25, or both fused by weighted reciprocal rank.

Scores shown to users are in [0, 1], higher is better:

* vector: max(0, cosine) of the normalised query and chunk vectors;
* bm25: the chunk's BM25 score divided by the best BM25 score of that query (the top hit is 1.0);
* hybrid: the larger of the chunk's two normalised component scores (0 for a missing component).

Hybrid ranking itself uses weighted reciprocal-rank fusion, ``w_v/(k + rank_v) + w_b/(k + rank_b)``
over the top ``max(top_k * 4, 20)`` candidates of each side, so neither score scale matters.
The score threshold applies to vector scores only: dense candidates below it are dropped before
fusion, and BM25 results are never thresholded (BM25 scores have no absolute meaning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.knowledge_base.schemas import SearchHit
from server.knowledge_base.vector_store import StoredDoc, VectorStore

MODES = ("vector", "bm25", "hybrid")


@dataclass(frozen=True)
class FusionParams:
    """Weights and constant of reciprocal-rank fusion."""

    rrf_k: int = 60
    vector_weight: float = 1.0
    bm25_weight: float = 1.0


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
) -> list[tuple[StoredDoc, float]]:
    """Weighted RRF of two ranked lists (scores already normalised); returns (doc, display score)."""
    fused: dict[int, float] = {}
    display: dict[int, float] = {}
    docs: dict[int, StoredDoc] = {}
    for weight, ranked in ((params.vector_weight, dense), (params.bm25_weight, sparse)):
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
    if mode in ("vector", "hybrid"):
        if query_vector is None:
            raise ValueError("vector and hybrid search need a query vector")
        dense = [(d, s) for d, s in store.vector_search(query_vector, pool, source) if s >= score_threshold]
    if mode in ("bm25", "hybrid"):
        sparse = normalize_bm25(store.bm25_search(query, pool, source))
    if mode == "vector":
        ranked = dense[:top_k]
    elif mode == "bm25":
        ranked = sparse[:top_k]
    else:
        ranked = fuse(dense, sparse, top_k, params)
    return [
        SearchHit(doc_id=doc.doc_id, text=doc.text, score=round(float(score), 6), metadata=dict(doc.metadata), rank=r)
        for r, (doc, score) in enumerate(ranked, start=1)
    ]
