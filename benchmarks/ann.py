"""Raw FAISS index comparison on synthetic vectors: exact flat search versus HNSW and IVF.

The database holds normalised Gaussian random vectors (384 dimensions, like the packaged
embedding models). Queries are database vectors plus Gaussian noise (sigma 0.03 per component,
cosine about 0.86 to their source), renormalised, so every query has one clear nearest
neighbour; uniformly random queries would have none. Recall@1 is the share of queries whose
exact best match the index returns first; recall@10 the share of the exact top 10 it returns.
Beyond the first, the neighbours of a random vector are near ties, and real embeddings cluster
while random vectors do not, so these recalls are a lower bound for real knowledge bases.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import numpy as np

from benchmarks.common import latency_summary

logger = logging.getLogger("benchmarks.ann")

DIM = 384
NOISE = 0.03


def unit_vectors(n: int, dim: int = DIM, seed: int = 0, block: int = 100_000) -> np.ndarray:
    """n normalised Gaussian random float32 vectors, generated block by block to bound memory."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        chunk = rng.standard_normal((stop - start, dim), dtype=np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start:stop] = chunk
    return out


def noisy_queries(base: np.ndarray, n: int, seed: int = 1, noise: float = NOISE) -> np.ndarray:
    """n queries near random database vectors."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(base.shape[0], size=n, replace=False)
    queries = base[picks] + rng.standard_normal((n, base.shape[1]), dtype=np.float32) * noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries.astype(np.float32)


def _time_single_queries(index: Any, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    # One query per call, as a chat request issues it.
    times: list[float] = []
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    for i in range(queries.shape[0]):
        start = time.perf_counter()
        _, found = index.search(queries[i : i + 1], k)
        times.append(time.perf_counter() - start)
        ids[i] = found[0]
    return times, ids


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of the exact top-k found by the approximate search."""
    hits = sum(len(set(found[i, :k]) & set(truth[i, :k])) for i in range(found.shape[0]))
    return hits / (found.shape[0] * k)


def _row(n: int, name: str, build: float, mem_mb: float, times: list[float], found: np.ndarray,
         truth: np.ndarray, k: int) -> dict[str, Any]:
    return {
        **latency_summary(times),
        "n": n,
        "index": name,
        "build_s": round(build, 2),
        "recall@1": round(float(np.mean(found[:, 0] == truth[:, 0])), 4),
        f"recall@{k}": round(recall_at_k(found, truth, k), 4),
        "mem_mb": round(mem_mb, 1),
    }


def compare_indexes(
    n: int,
    n_queries: int = 200,
    k: int = 10,
    hnsw_m: int = 32,
    hnsw_ef_construction: int = 80,
    hnsw_ef_search: tuple[int, ...] = (64, 128),
    ivf_nprobe: tuple[int, ...] = (8, 32),
    with_hnsw: bool = True,
    with_ivf: bool = True,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Build time, memory, single-query latency and recall@k (against flat) of each index at size n."""
    import faiss

    base = unit_vectors(n, seed=seed)
    queries = noisy_queries(base, n_queries, seed=seed + 1)
    rows: list[dict[str, Any]] = []

    mem = base.nbytes / 2**20
    start = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    build = time.perf_counter() - start
    configured = faiss.omp_get_max_threads()
    cores = os.cpu_count() or 1
    # OpenMP start-up costs more than it saves on a single query; one thread (kb.faiss_threads) is often faster.
    faiss.omp_set_num_threads(cores)
    try:
        times, truth = _time_single_queries(flat, queries, k)
        rows.append(_row(n, f"Flat (exact), {cores} threads", build, mem, times, truth, truth, k))
        faiss.omp_set_num_threads(1)
        times, found = _time_single_queries(flat, queries, k)
    finally:
        faiss.omp_set_num_threads(configured)
    rows.append(_row(n, "Flat (exact), 1 thread", build, mem, times, found, truth, k))
    del flat
    # numpy matrix-vector product plus argpartition: the floor of exact search.
    times = []
    for i in range(queries.shape[0]):
        start = time.perf_counter()
        scores = base @ queries[i]
        top = np.argpartition(-scores, k)[:k]
        top[np.argsort(-scores[top])]
        times.append(time.perf_counter() - start)
    rows.append(_row(n, "numpy brute force", 0.0, mem, times, truth, truth, k))
    for row in rows:
        logger.info("n=%d %s p50 %.2f ms", n, row["index"], row["p50_ms"])

    if with_hnsw:
        start = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(DIM, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = hnsw_ef_construction
        hnsw.add(base)
        build = time.perf_counter() - start
        graph_mb = (base.nbytes + n * hnsw_m * 2 * 4) / 2**20
        for ef in hnsw_ef_search:
            hnsw.hnsw.efSearch = ef
            times, found = _time_single_queries(hnsw, queries, k)
            name = f"HNSW M={hnsw_m} efC={hnsw_ef_construction} efS={ef}"
            rows.append(_row(n, name, build, graph_mb, times, found, truth, k))
            logger.info("n=%d %s p50 %.2f ms recall@1 %.3f", n, name, rows[-1]["p50_ms"], rows[-1]["recall@1"])
        del hnsw

    if with_ivf:
        nlist = max(16, int(4 * math.sqrt(n)))
        start = time.perf_counter()
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed + 2)
        train = base[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
        # Fewer than 39 training points per list makes poor lists; faiss warns about it at 10k.
        ivf.train(train)
        ivf.add(base)
        build = time.perf_counter() - start
        for nprobe in ivf_nprobe:
            ivf.nprobe = nprobe
            times, found = _time_single_queries(ivf, queries, k)
            name = f"IVFFlat nlist={nlist} nprobe={nprobe}"
            rows.append(_row(n, name, build, mem, times, found, truth, k))
            logger.info("n=%d %s p50 %.2f ms recall@1 %.3f", n, name, rows[-1]["p50_ms"], rows[-1]["recall@1"])
        del ivf
    return rows


def recommend_index(rows: list[dict[str, Any]], budget_ms: float = 50.0, min_recall: float = 0.95) -> dict[int, str]:
    """Per size: exact flat search while its p95 fits the budget, else the fastest index keeping recall@1."""
    out: dict[int, str] = {}
    for n in sorted({r["n"] for r in rows}):
        at_n = [r for r in rows if r["n"] == n]
        flat = min((r for r in at_n if r["index"].startswith("Flat")), key=lambda r: r["p95_ms"])
        if flat["p95_ms"] <= budget_ms:
            out[n] = f"{flat['index']} (p95 {flat['p95_ms']:.1f} ms <= {budget_ms:.0f} ms)"
            continue
        good = [r for r in at_n if r["recall@1"] >= min_recall and not r["index"].startswith(("Flat", "numpy"))]
        if good:
            best = min(good, key=lambda r: r["p95_ms"])
            out[n] = f"{best['index']} (p95 {best['p95_ms']:.1f} ms, recall@1 {best['recall@1']:.3f})"
        else:
            out[n] = f"{flat['index']} (no approximate index kept recall@1 >= {min_recall})"
    return out
