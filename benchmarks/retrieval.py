"""Retrieval quality through kbchat's real ingestion and search pipeline, with calibration and baselines.

    python -m benchmarks.retrieval [--quick] [--out PATH] [--max-questions N] [--max-passages N]

1. Tuning halves (CMRC 2018 trial, SQuAD articles 0-23): a grid of chunk size {250, 500, 800}
   (overlap = 10 %) x mode {bm25, vector, hybrid} x embedding model {multilingual-e5-small,
   all-MiniLM-L6-v2} x hybrid weights vector:bm25 {1:1, 2:1, 1:2, 3:1}. The configuration with the
   best mean MRR@10 over the tuning sets is recommended as the default.
2. Score thresholds per embedding model, calibrated on the tuning halves at the chosen chunk size.
3. Judging halves (CMRC dev, SQuAD articles 24-47, DRCD dev, RGB zh_refine and en_fact), untouched by
   tuning, with the recommended chunk size and weights, next to two baselines: plain BM25 over whole
   passages (baselines.py) and a Chatchat v0.2-style pipeline (250-char chunks, 50 overlap, top 3,
   vector only, with our default multilingual-e5-small since Chatchat's m3e/bge models do not ship here).

Each passage is written as its own .txt file into a temporary knowledge base and goes through the
loader, the splitter, the embedding model and the index; chunks are ranked, and a chunk counts as a
hit by the rule in metrics.py. Searches use score_threshold 0 so the ranking itself is measured.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks import datasets
from benchmarks.baselines import PlainBM25
from benchmarks.common import (
    base_parser,
    print_table,
    require_shared_data,
    scratch_dir,
    setup_logging,
    write_result,
)
from benchmarks.datasets import RetrievalSet
from benchmarks.kbtools import (
    E5,
    EMBED_MODELS,
    MINILM,
    cache_query_vectors,
    evaluate,
    fusion_weights,
    ingest_passages,
    open_manager,
)
from benchmarks.metrics import GoldMatcher, RankingScores, best_threshold

logger = logging.getLogger("benchmarks.retrieval")

CHUNK_SIZES = (250, 500, 800)
WEIGHTS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (3.0, 1.0))
SHORT = {E5: "e5", MINILM: "minilm"}
# (max passages, max questions) per set in --quick; sized so `make bench` stays within its budget.
QUICK_SIZES: dict[str, tuple[int | None, int | None]] = {
    "cmrc-trial": (40, 100),
    "squad-tune": (70, 100),
    "cmrc-dev": (40, 100),
    "squad-judge": (60, 100),
    "drcd-dev": (40, 100),
    "rgb-zh": (200, None),
    "rgb-en": (250, None),
}
CHATCHAT = {"chunk_size": 250, "chunk_overlap": 50, "top_k": 3, "mode": "vector", "embed_model": E5}


def overlap_for(chunk_size: int) -> int:
    return chunk_size // 10


def load_sets(names: tuple[str, ...], quick: bool, seed: int, max_questions: int | None,
              max_passages_cap: int | None = None) -> list[RetrievalSet]:
    """The named sets, reduced to their --quick sizes or to the given caps (seeded samples)."""
    out = []
    for name in names:
        rset = datasets.load(name)
        max_passages, n_questions = QUICK_SIZES[name] if quick else (None, None)
        if max_passages_cap:
            # RGB passages are short and each question brings about 25 of its own, so RGB gets 3x the cap.
            cap = max_passages_cap * 3 if name.startswith("rgb") else max_passages_cap
            max_passages = min(max_passages or cap, cap)
        if max_questions:
            n_questions = min(n_questions or max_questions, max_questions)
        if max_passages or n_questions:
            rset = datasets.sample(rset, n_questions, seed, max_passages)
        out.append(rset)
    return out


def plain_bm25(rset: RetrievalSet) -> dict[str, Any]:
    """The independent whole-passage BM25 baseline."""
    start = time.perf_counter()
    index = PlainBM25(rset.passages, rset.lang)
    scores = RankingScores()
    for q in rset.questions:
        ranked = index.rank(q.text, 10)
        gold = set(q.gold)
        scores.add([i in gold for i in ranked],
                   None if not q.answers else any(a in rset.passages[i] for i in ranked[:5] for a in q.answers))
    metrics = scores.as_dict()
    metrics["search_ms"] = round(1000 * (time.perf_counter() - start) / max(1, len(rset.questions)), 2)
    return metrics


def kb_name(rset: RetrievalSet, model: str, chunk_size: int, overlap: int) -> str:
    return f"{rset.name}-{SHORT[model]}-{chunk_size}-{overlap}"


class Runner:
    """Ingests each (set, model, chunking) once and evaluates configurations on it."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.ingested: dict[str, dict[str, Any]] = {}
        self.matchers: dict[str, GoldMatcher] = {}

    def kb(self, rset: RetrievalSet, model: str, chunk_size: int, overlap: int) -> str:
        name = kb_name(rset, model, chunk_size, overlap)
        if name not in self.ingested:
            report = ingest_passages(self.manager, name, rset.passages, embed_model=model,
                                     chunk_size=chunk_size, chunk_overlap=overlap)
            self.ingested[name] = report.as_dict()
        return name

    def run(self, rset: RetrievalSet, model: str, chunk_size: int, overlap: int, mode: str,
            weights: tuple[float, float] | None = None, top_k: int = 10):
        name = self.kb(rset, model, chunk_size, overlap)
        matcher = self.matchers.setdefault(rset.name, GoldMatcher(rset.passages))
        if weights is None:
            return evaluate(self.manager, name, rset, mode, top_k=top_k, matcher=matcher)
        with fusion_weights(self.manager, *weights):
            return evaluate(self.manager, name, rset, mode, top_k=top_k, matcher=matcher)


def configurations(models: tuple[str, ...] = EMBED_MODELS) -> list[dict[str, Any]]:
    """Every (mode, model, weights) point of the grid; bm25 does not depend on the model."""
    configs: list[dict[str, Any]] = [{"mode": "bm25", "model": models[0], "weights": None}]
    for model in models:
        configs.append({"mode": "vector", "model": model, "weights": None})
        for weights in WEIGHTS:
            configs.append({"mode": "hybrid", "model": model, "weights": weights})
    return configs


def label(config: dict[str, Any]) -> str:
    if config["mode"] == "bm25":
        return "bm25"
    if config["mode"] == "vector":
        return f"vector {SHORT[config['model']]}"
    wv, wb = config["weights"]
    return f"hybrid {SHORT[config['model']]} {wv:g}:{wb:g}"


def tune(runner: Runner, sets: list[RetrievalSet], chunk_sizes: tuple[int, ...] = CHUNK_SIZES,
         models: tuple[str, ...] = EMBED_MODELS) -> tuple[list[dict[str, Any]], dict]:
    """The tuning grid; returns its rows and the vector score samples per (model, chunk size)."""
    rows: list[dict[str, Any]] = []
    samples: dict[tuple[str, int], dict[str, list[float]]] = {}
    for chunk_size in chunk_sizes:
        overlap = overlap_for(chunk_size)
        for config in configurations(models):
            row = {"chunk_size": chunk_size, "chunk_overlap": overlap, "label": label(config), **config, "sets": {}}
            for rset in sets:
                result = runner.run(rset, config["model"], chunk_size, overlap, config["mode"], config["weights"])
                row["sets"][rset.name] = result.metrics
                if config["mode"] == "vector":
                    bucket = samples.setdefault((config["model"], chunk_size), {"pos": [], "neg": []})
                    bucket["pos"] += result.positive_scores
                    bucket["neg"] += result.negative_scores
            for key in ("MRR@10", "R@1", "R@5"):
                row[f"mean {key}"] = round(statistics.fmean(m[key] for m in row["sets"].values()), 4)
            rows.append(row)
            logger.info("tuning %s chunk %d: mean MRR@10 %.4f", row["label"], chunk_size, row["mean MRR@10"])
    return rows, samples


def pick(rows: list[dict[str, Any]], **where: Any) -> dict[str, Any]:
    """The row with the best mean MRR@10 (then R@1) among rows matching where."""
    chosen = [r for r in rows if all(r[k] == v for k, v in where.items())]
    return max(chosen, key=lambda r: (r["mean MRR@10"], r["mean R@1"]))


def judge(runner: Runner, sets: list[RetrievalSet], best: dict[str, Any], weights_by_model: dict) -> list[dict]:
    """Judging halves with the recommended chunking, plus the two baselines (models: weights_by_model's keys)."""
    chunk_size, overlap = best["chunk_size"], best["chunk_overlap"]
    rows = []
    models = tuple(weights_by_model)
    for rset in sets:
        # (system, chunk size, metrics)
        systems: list[tuple[str, int | None, dict[str, Any]]] = [
            ("plain BM25, whole passages (baseline)", None, plain_bm25(rset))]
        result = runner.run(rset, CHATCHAT["embed_model"], CHATCHAT["chunk_size"], CHATCHAT["chunk_overlap"],
                            CHATCHAT["mode"], top_k=CHATCHAT["top_k"])
        systems.append(("Chatchat v0.2 style: e5, 250/50, vector, top 3 (baseline)", CHATCHAT["chunk_size"],
                        result.metrics))
        systems.append(("bm25", chunk_size, runner.run(rset, models[0], chunk_size, overlap, "bm25").metrics))
        for model in models:
            result = runner.run(rset, model, chunk_size, overlap, "vector")
            systems.append((f"vector {SHORT[model]}", chunk_size, result.metrics))
            weights = weights_by_model[model]
            result = runner.run(rset, model, chunk_size, overlap, "hybrid", weights)
            systems.append((f"hybrid {SHORT[model]} {weights[0]:g}:{weights[1]:g}", chunk_size, result.metrics))
        for system, size, metrics in systems:
            rows.append({"set": rset.name, "system": system, "chunk_size": size, **metrics})
    return rows


def threshold_check(runner: Runner, sets: list[RetrievalSet], chunk_size: int, overlap: int,
                    thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """On judging sets: share of retrieved gold top scores kept and of best non-gold scores dropped."""
    rows = []
    for model, threshold in thresholds.items():
        pos: list[float] = []
        neg: list[float] = []
        for rset in sets:
            result = runner.run(rset, model, chunk_size, overlap, "vector")
            pos += result.positive_scores
            neg += result.negative_scores
        rows.append({
            "model": model,
            "threshold": threshold,
            "gold_kept": round(sum(s >= threshold for s in pos) / len(pos), 4) if pos else None,
            "non_gold_dropped": round(sum(s < threshold for s in neg) / len(neg), 4) if neg else None,
        })
    return rows


def print_tables(result: dict[str, Any]) -> str:
    out = []
    tuning_names = [s["name"] for s in result["tuning_sets"]]
    headers = ["chunk", "mode / model / weights", *[f"{n} MRR@10" for n in tuning_names], "mean MRR@10",
               "mean R@1", "mean R@5"]
    rows = [[r["chunk_size"], r["label"], *[r["sets"][n]["MRR@10"] for n in tuning_names], r["mean MRR@10"],
             r["mean R@1"], r["mean R@5"]] for r in result["tuning_grid"]]
    out.append(print_table("Retrieval tuning grid (tuning halves)", headers, rows))
    headers = ["set", "system", "chunk", "R@1", "R@3", "R@5", "R@10", "MRR@10", "AnsR@5", "questions"]
    rows = [[r["set"], r["system"], r["chunk_size"], r["R@1"], r["R@3"], r["R@5"], r["R@10"], r["MRR@10"],
             r["AnsR@5"], r["questions"]] for r in result["judging"]]
    out.append(print_table("Retrieval on judging halves (untouched by tuning)", headers, rows))
    headers = ["model", "F1-best threshold", "F1", "keep-95% threshold", "non-gold dropped at it",
               "recommended", "judging: gold kept", "judging: non-gold dropped"]
    check = {r["model"]: r for r in result["threshold_check"]}
    rows = [[m, c["f1_threshold"], c["f1"], c["keep95_threshold"], c["keep95_negatives_dropped"],
             result["recommended"]["score_threshold"][m], check[m]["gold_kept"], check[m]["non_gold_dropped"]]
            for m, c in result["calibration"].items()]
    out.append(print_table("Score threshold calibration (vector scores, tuning halves)", headers, rows))
    rec = result["recommended"]
    rows = [["search_mode", rec["search_mode"]], ["embed model", rec["embed_model"]],
            ["hybrid weights vector:bm25", rec["hybrid_weights"]], ["chunk_size / overlap",
            f"{rec['chunk_size']} / {rec['chunk_overlap']}"],
            *[[f"score_threshold {m}", t] for m, t in rec["score_threshold"].items()]]
    out.append(print_table("Recommended defaults (from the tuning halves)", ["setting", "value"], rows))
    return "".join(out)


def evaluate_all(manager: Any, tuning_sets: list[RetrievalSet], judging_sets: list[RetrievalSet],
                 chunk_sizes: tuple[int, ...] = CHUNK_SIZES, models: tuple[str, ...] = EMBED_MODELS) -> dict[str, Any]:
    """Tuning grid, calibration, judging and threshold check on one manager."""
    cache_query_vectors(manager)
    runner = Runner(manager)
    grid, samples = tune(runner, tuning_sets, chunk_sizes, models)
    best = pick(grid)
    weights_by_model = {m: pick(grid, mode="hybrid", model=m, chunk_size=best["chunk_size"])["weights"]
                        for m in models}
    calibration = {m: best_threshold(samples[(m, best["chunk_size"])]["pos"],
                                     samples[(m, best["chunk_size"])]["neg"]) for m in models}
    # The threshold filters what the model may read: keeping 95 % of relevant top hits matters more
    # than dropping distractors, which the prompt tells the model to ignore anyway.
    thresholds = {m: c["keep95_threshold"] for m, c in calibration.items()}
    judging = judge(runner, judging_sets, best, weights_by_model)
    check = threshold_check(runner, judging_sets, best["chunk_size"], best["chunk_overlap"], thresholds)
    return {
        "tuning_grid": grid,
        "judging": judging,
        "calibration": calibration,
        "threshold_check": check,
        "recommended": {
            "search_mode": best["mode"],
            "embed_model": best["model"],
            "hybrid_weights": best["weights"] or weights_by_model[best["model"]],
            "hybrid_weights_by_model": weights_by_model,
            "chunk_size": best["chunk_size"],
            "chunk_overlap": best["chunk_overlap"],
            "score_threshold": thresholds,
            "criterion": "best mean MRR@10 over the tuning sets (ties: mean R@1)",
        },
        "ingested": runner.ingested,
    }


def run(quick: bool, seed: int, data_root: Path, max_questions: int | None = None,
        max_passages: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    tuning_sets = load_sets(datasets.TUNING_SETS, quick, seed, max_questions, max_passages)
    judging_sets = load_sets(datasets.JUDGING_SETS, quick, seed, max_questions, max_passages)
    with open_manager(data_root) as manager:
        measured = evaluate_all(manager, tuning_sets, judging_sets)
    result = {
        "quick": quick,
        "seed": seed,
        "hit_rule": "metrics.py: chunk is a substring of a gold passage or shares >= 50% of its 8-gram shingles",
        "tuning_sets": [s.summary() for s in tuning_sets],
        "judging_sets": [s.summary() for s in judging_sets],
        **measured,
        "seconds": round(time.perf_counter() - started, 1),
    }
    result["tables"] = print_tables(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--max-questions", type=int, default=None, help="cap questions per set (seeded sample)")
    parser.add_argument("--max-passages", type=int, default=None,
                        help="cap passages per set (RGB sets: 3x), a seeded sample built like the full set")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    with scratch_dir("retrieval", args.keep) as root:
        result = run(args.quick, args.seed, root, args.max_questions, args.max_passages)
    result["caps"] = {"max_questions": args.max_questions, "max_passages": args.max_passages}
    write_result("retrieval", result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
