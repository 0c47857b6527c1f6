"""Sentence vectors on the extractive sets: ranking with and without them, and what they cost at ingestion.

    python -m benchmarks.sentences [--quick] [--max-questions N] [--max-passages N] [--sets a,b]

The everyday sets (everyday.py) chose the default fusion: chunk vectors, best-sentence vectors and BM25
at k=10, weights 1:1:2. This checks that choice on the extractive sets, the judging halves included,
against the settings before it (chunk vectors and BM25 only, 2:1 at k=60), in the same run and on the
same knowledge base: each set is ingested once with sentence vectors, and the earlier ranking is the
same store searched with the sentence weight at 0.

Ingestion is timed twice per set with empty embedding caches, once with ``sentence_vectors`` off and
once on, through ``rebuild`` (loader, splitter, embeddings, index, one save).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from benchmarks import datasets
from benchmarks.common import base_parser, print_table, require_shared_data, scratch_dir, setup_logging, write_result
from benchmarks.everyday import BEFORE_SENTENCES, kb_settings
from benchmarks.kbtools import E5, evaluate, ingest_passages, open_manager

logger = logging.getLogger("benchmarks.sentences")

CHUNK_SIZE, CHUNK_OVERLAP = 500, 50
CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("hybrid (default)", "hybrid", {}),
    ("hybrid before sentences", "hybrid", BEFORE_SENTENCES),
    ("vector (default)", "vector", {}),
    ("vector, chunks only", "vector", {"hybrid_sentence_weight": 0.0}),
]


def ingest_seconds(work: Path, rset: datasets.RetrievalSet, sentences: bool) -> tuple[float, int]:
    """Seconds to ingest the set's passages into a fresh knowledge base with an empty embedding cache."""
    with open_manager(work, cache_dir=work / "cache", sentence_vectors=sentences) as manager:
        report = ingest_passages(manager, "timing", rset.passages, embed_model=E5, chunk_size=CHUNK_SIZE,
                                 chunk_overlap=CHUNK_OVERLAP)
        return report.seconds, manager.pool.get("timing").sentence_count


def run(sets: list[datasets.RetrievalSet], work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": [], "ingestion": []}
    rows, cost_rows = [], []
    for rset in sets:
        plain, _ = ingest_seconds(work / f"{rset.name}-plain", rset, False)
        with_sentences, count = ingest_seconds(work / f"{rset.name}-sentences", rset, True)
        cost = {"set": rset.name, "passages": len(rset.passages), "sentences": count,
                "seconds_without": round(plain, 1), "seconds_with": round(with_sentences, 1),
                "ratio": round(with_sentences / plain, 2) if plain else None}
        out["ingestion"].append(cost)
        cost_rows.append(list(cost.values()))
        # The same store (and cached embeddings) for every ranking.
        with open_manager(work / f"{rset.name}-sentences", cache_dir=work / f"{rset.name}-sentences" / "cache",
                          ) as manager:
            for label, mode, overrides in CONFIGS:
                with kb_settings(manager, **overrides):
                    metrics = evaluate(manager, "timing", rset, mode).metrics
                out["runs"].append({"set": rset.name, "config": label, **metrics})
                rows.append([rset.name, rset.half, label, len(rset.questions), metrics["R@1"], metrics["R@5"],
                             metrics["MRR@10"], metrics["search_ms"]])
                logger.info("%s %s: R@1 %.3f MRR@10 %.3f", rset.name, label, metrics["R@1"], metrics["MRR@10"])
    out["tables"] = [
        print_table("Extractive sets: ranking with and without sentence vectors",
                    ["set", "half", "search", "questions", "R@1", "R@5", "MRR@10", "ms/search"], rows),
        print_table("Ingestion with and without sentence vectors (e5, 500/50, empty cache)",
                    ["set", "passages", "sentences", "s without", "s with", "ratio"], cost_rows),
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--max-questions", type=int, default=300, help="questions per set (seeded sample)")
    parser.add_argument("--max-passages", type=int, default=300, help="passages per set (seeded sample)")
    parser.add_argument("--sets", default=",".join(datasets.TUNING_SETS + datasets.JUDGING_SETS),
                        help="comma-separated set names")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    questions, passages = (60, 100) if args.quick else (args.max_questions, args.max_passages)
    sets = [datasets.sample(datasets.load(name), questions, args.seed, passages) for name in args.sets.split(",")]
    started = time.perf_counter()
    with scratch_dir("sentences", args.keep) as work:
        result = run(sets, work)
    result.update({"quick": args.quick, "seed": args.seed, "max_questions": questions, "max_passages": passages,
                   "chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP,
                   "seconds": round(time.perf_counter() - started, 1)})
    write_result("sentences", result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
