"""Hybrid search's keyword half: kbchat's own BM25 against PostgreSQL full-text search and Milvus's BM25 function.

    python -m benchmarks.fulltext [--quick] [--sizes 10000,100000] [--engines own,pg,milvus] [--out PATH]

Every engine ranks the same chunks by keywords alone, from the same tokens (see fulltext_engines.py): kbchat's BM25
tokenizer, whose Chinese tokens no PostgreSQL parser here could produce.

Part 1, quality: the everyday sets of benchmarks/everyday.py, tuning questions only (the held-out ones stay
untouched). The documents are loaded and split as ``add_files`` does with the default settings (nothing is
embedded: only the keyword ranking is measured), and a ranking is scored by the rule of
``server.knowledge_base.evaluation`` (gold file and evidence), hit@1/3/5 and MRR@10. laws_zh is measured with both
Chinese tokenizers (bigram, the default, and jieba).

Part 2, latency: n synthetic chunks (the CMRC/DRCD/SQuAD sentences of benchmarks/query.py) indexed by each engine;
real questions (half Chinese, half English) searched for the top 20 (Milvus, far slower, gets the first
SLOW_QUERIES of them); build seconds, and what 50 more chunks cost (kbchat rebuilds its BM25 index when a version
is saved; the engines insert).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import (
    base_parser,
    latency_summary,
    print_table,
    require_shared_data,
    scratch_dir,
    setup_logging,
    write_result,
)
from benchmarks.everyday import SETS, EverydaySet, evaluate, load_questions
from benchmarks.fulltext_engines import OWN, LexicalEngine, MilvusFullText, OwnBM25, PostgresFullText
from benchmarks.query import question_sample, sentence_pool, synthetic_texts, time_calls

logger = logging.getLogger("benchmarks.fulltext")

TOP_K = 20  # what the latency part asks each engine for
# Milvus's pure-Python BM25 search takes seconds per query at 10k chunks here: it gets this many of the questions.
SLOW_QUERIES = 20
ADDED = 50  # chunks of the "one more file" of part 2
QUALITY_RUNS = [("laws_zh", "bigram"), ("laws_zh", "jieba"), ("files_en", "bigram")]
ENGINES = ("own", "pg", "milvus")


class Chunk:
    """One chunk as a search hit: the evaluation reads ``text`` and ``metadata["source"]``."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.metadata = {"source": source}


def chunk_folder(spec: EverydaySet) -> tuple[list[Chunk], list[str]]:
    """The set's chunks (as add_files makes them with the default settings) and the texts that are indexed."""
    from configs.settings import KBSettings
    from server.errors import AppError
    from server.knowledge_base.loaders import load_file
    from server.knowledge_base.splitter import split_documents
    from server.knowledge_base.vector_store.base import index_text

    settings = KBSettings()
    chunks: list[Chunk] = []
    texts: list[str] = []
    for path in sorted(p for p in spec.docs.iterdir() if p.is_file()):
        try:
            docs = load_file(path, source=path.name)
        except AppError as exc:
            logger.warning("%s: %s is not indexed: %s", spec.name, path.name, exc)
            continue
        for piece in split_documents(docs, settings.chunk_size, settings.chunk_overlap, settings.chunk_unit):
            chunks.append(Chunk(piece.text, path.name))
            texts.append(index_text(piece.text, piece.metadata, settings.index_headings))
    logger.info("%s: %d chunks", spec.name, len(chunks))
    return chunks, texts


@contextmanager
def engines(names: tuple[str, ...], tokenizer: str, work: Path, pg_url: str | None,
            milvus_native: str | None = None) -> Iterator[list[LexicalEngine]]:
    """The engines asked for, closed afterwards; PostgreSQL in both rankings, Milvus on kbchat's tokens (and on
    the raw text with its ``milvus_native`` analyzer, when given)."""
    made: list[LexicalEngine] = []
    with ExitStack() as stack:
        if "own" in names:
            made.append(OwnBM25(tokenizer))
        if "pg" in names and pg_url:
            made += [PostgresFullText(pg_url, tokenizer, "ts_rank_cd"),
                     PostgresFullText(pg_url, tokenizer, "ts_rank", table="fulltext_chunks_rank")]
        if "milvus" in names:
            from server.knowledge_base.vector_store.milvus_store import dispose_clients

            stack.callback(dispose_clients)
            uri = str(work / f"fulltext-{tokenizer}-{milvus_native or 'own'}.db")
            made.append(MilvusFullText(uri, tokenizer))
            if milvus_native:
                made.append(MilvusFullText(uri, tokenizer, native=milvus_native, name="fulltext_native"))
        for engine in made:
            stack.callback(engine.close)
        yield made


def quality(names: tuple[str, ...], work: Path, pg_url: str | None) -> list[dict[str, Any]]:
    out = []
    for set_name, tokenizer in QUALITY_RUNS:
        spec = SETS[set_name]
        chunks, texts = chunk_folder(spec)
        ids = list(range(1, len(chunks) + 1))
        questions = load_questions(spec, "tuning")
        native = "jieba" if spec.lang == "zh" else "standard"
        with engines(names, tokenizer, work, pg_url, native) as made:
            for engine in made:
                started = time.perf_counter()
                engine.build(ids, texts)
                built = time.perf_counter() - started

                def search(query: str, engine: LexicalEngine = engine) -> list[Chunk]:
                    return [chunks[idx - 1] for idx in engine.search(query, 10)]

                metrics = evaluate(search, questions)
                row = {"set": set_name, "tokenizer": tokenizer, "engine": engine.name, "chunks": len(chunks),
                       "build_s": round(built, 2), **metrics}
                if isinstance(engine, PostgresFullText):
                    row["lexeme_check"] = engine.lexeme_check(texts[:300])
                out.append(row)
                logger.info("%s/%s %s: hit@1 %.3f hit@5 %.3f", set_name, tokenizer, engine.name, metrics["hit@1"],
                            metrics["hit@5"])
    return out


def latency(sizes: list[int], names: tuple[str, ...], n_queries: int, seed: int, work: Path,
            pg_url: str | None, slow_queries: int = SLOW_QUERIES) -> list[dict[str, Any]]:
    pool = sentence_pool(seed)
    questions = question_sample(n_queries, seed)
    out = []
    for n in sizes:
        texts = synthetic_texts(n + ADDED, pool, seed)
        ids = list(range(1, n + ADDED + 1))
        with engines(names, "bigram", work, pg_url) as made:
            for engine in made:
                logger.info("latency at %d chunks: %s", n, engine.name)
                started = time.perf_counter()
                engine.build(ids[:n], texts[:n])
                built = time.perf_counter() - started
                asked = questions[:slow_queries] if isinstance(engine, MilvusFullText) else questions
                for question in asked[:3]:  # warm up
                    engine.search(question, TOP_K)
                times = time_calls(lambda q, e=engine: e.search(q, TOP_K), asked)
                started = time.perf_counter()
                engine.add(ids[n:], texts[n:])
                added = time.perf_counter() - started
                out.append({"n": n, "engine": engine.name, "build_s": round(built, 2), "queries": len(asked),
                            "search": latency_summary(times),
                            "add_s": round(added, 3)})
    return out


def print_tables(result: dict[str, Any]) -> str:
    text = []
    rows = [[r["set"], r["tokenizer"], r["engine"], r["chunks"], r["questions"], r["hit@1"], r["hit@3"], r["hit@5"],
             r["MRR@10"], r["p50_ms"]] for r in result["quality"]]
    if rows:
        text.append(print_table("Keyword ranking alone on the everyday tuning questions (top 10)", [
            "set", "tokenizer", "engine", "chunks", "questions", "hit@1", "hit@3", "hit@5", "MRR@10", "p50 ms"], rows))
    own = {r["n"]: r for r in result["latency"] if r["engine"] == OWN}
    rows = []
    for r in result["latency"]:
        base = own.get(r["n"])
        ratio = round(r["search"]["p50_ms"] / base["search"]["p50_ms"], 2) if base else None
        rows.append([f"{r['n']:,}", r["engine"], r["queries"], r["search"]["p50_ms"], r["search"]["p95_ms"], ratio,
                     r["build_s"], r["add_s"]])
    text.append(print_table(f"Keyword search latency (top {TOP_K}, bigram tokens, synthetic chunks)", [
        "chunks", "engine", "questions", "p50 ms", "p95 ms", "p50 / kbchat BM25 p50", "build s", f"+{ADDED} chunks s"],
        rows))
    return "".join(text)


def run(sizes: list[int], names: tuple[str, ...], n_queries: int, seed: int, work: Path,
        skip_quality: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {"sizes": sizes, "engines": list(names), "queries": n_queries, "top_k": TOP_K}
    with ExitStack() as stack:
        pg_url = None
        if "pg" in names:
            from tests.pg_support import running_cluster

            cluster = stack.enter_context(running_cluster())
            pg_url = cluster.create_database()
            result["postgresql"] = cluster_versions(pg_url)
        result["quality"] = [] if skip_quality else quality(names, work, pg_url)
        result["latency"] = latency(sizes, names, n_queries, seed, work, pg_url)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["tables"] = print_tables(result)
    return result


def cluster_versions(url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        return {"server": str(server[0]) if server else "?"}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="comma-separated chunk counts of part 2 (default 10k,100k)")
    parser.add_argument("--queries", type=int, default=None, help="questions of part 2 (default 100 quick, 300 full)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated: {', '.join(ENGINES)}")
    parser.add_argument("--no-quality", action="store_true", help="skip part 1")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [10_000, 100_000]
    names = tuple(args.engines.split(","))
    with scratch_dir("fulltext", args.keep) as work:
        result = run(sizes, names, args.queries or (100 if args.quick else 300), args.seed, work, args.no_quality)
    result["quick"] = args.quick
    write_result("fulltext", result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
