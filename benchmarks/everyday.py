"""Retrieval on everyday questions over real documents: the colloquial sets in benchmarks/sets/.

    python -m benchmarks.everyday [--split heldout|tuning|all] [--sets laws_zh,files_en] [--quick]
        [--rewrite-model M] [--rerank-model M]

The extractive sets (CMRC, DRCD, SQuAD) reuse their passage's words, so every retriever looks good
on them. These sets are questions written as people ask them, each with its gold file and a verbatim
piece of evidence:

| set | documents | questions | held out |
| --- | --- | --- | --- |
| laws_zh | the 15 laws in ../shared/data/docs/zh/laws | 200 colloquial Chinese questions | first 50 |
| files_en | the English files in ../shared/data/docs/en/files | 85 everyday English questions | first 25 |

Settings are chosen on the tuning part only; the held-out part is the check. The documents go through
the real pipeline (``add_files``: loader, splitter, embeddings, index) with the default settings.

A retrieved chunk is a hit when it comes from the gold file and holds the evidence, by the rule of
``server.knowledge_base.evaluation`` (the one ``kbchat eval`` uses). Each configuration reports
hit@1/3/5, MRR@10 and the p50/p90 search latency, query encoding included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    RESULTS_DIR,
    SHARED_DATA,
    base_parser,
    print_table,
    require_shared_data,
    scratch_dir,
    setup_logging,
    write_result,
)
from benchmarks.kbtools import open_manager
from server.knowledge_base.evaluation import EvalQuestion
from server.knowledge_base.evaluation import evaluate as server_evaluate

logger = logging.getLogger("benchmarks.everyday")

SETS_DIR = Path(__file__).resolve().parent / "sets"
# Passage embeddings kept between runs (git-ignored): the same documents are embedded once, so only
# searches and answers are timed here, never ingestion.
EMBEDDING_CACHE = RESULTS_DIR / "embedding-cache"


@dataclass(frozen=True)
class EverydaySet:
    """One question file over one folder of documents; the first ``heldout`` questions are the check."""

    name: str
    lang: str
    docs: Path
    heldout: int

    @property
    def path(self) -> Path:
        return SETS_DIR / f"{self.name}.jsonl"


SETS = {
    "laws_zh": EverydaySet("laws_zh", "zh", SHARED_DATA / "docs" / "zh" / "laws", 50),
    "files_en": EverydaySet("files_en", "en", SHARED_DATA / "docs" / "en" / "files", 25),
}


@dataclass(frozen=True)
class EverydayQuestion(EvalQuestion):
    """A question of an everyday set: gold file and evidence, short answers and its language."""

    answers: tuple[str, ...] = ()
    lang: str = "zh"


def load_questions(spec: EverydaySet, split: str = "all") -> list[EverydayQuestion]:
    """The set's questions: ``heldout`` (the first ones), ``tuning`` (the rest) or ``all``."""
    rows = [json.loads(line) for line in spec.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if split == "heldout":
        rows = rows[: spec.heldout]
    elif split == "tuning":
        rows = rows[spec.heldout :]
    return [
        EverydayQuestion(r["id"], r["question"], r["file"], r["evidence"], tuple(r.get("answers") or ()), spec.lang)
        for r in rows
    ]


def build_kb(manager: Any, spec: EverydaySet) -> dict[str, Any]:
    """Create the set's knowledge base and add every document of its folder in one batch.

    In a data folder kept from an earlier run (``--data-root``) the knowledge base is reused as it is, and only
    the documents it does not hold yet are added: the English files take over 20 minutes to read (OCR), so keep
    their folder between runs, and delete it after changing how files are read or split."""
    files = sorted(p for p in spec.docs.iterdir() if p.is_file())
    if spec.name in {kb.name for kb in manager.list_kbs()}:
        held = {f.file_name: f for f in manager.list_files(spec.name) if f.status != "pending"}
        files = [p for p in files if p.name not in held]
        logger.info("%s: reused with %d files (%d chunks); %d to add", spec.name, len(held),
                    sum(f.chunk_count for f in held.values()), len(files))
    else:
        manager.create_kb(spec.name)
    started = time.perf_counter()
    results = manager.add_files(spec.name, files) if files else []
    seconds = time.perf_counter() - started
    errors = {r.file_name: r.error for r in results if r.status == "error"}
    chunks = sum(int(r.chunks or 0) for r in results)
    logger.info("%s: %d files -> %d chunks in %.1f s (%d not indexed)", spec.name, len(files), chunks, seconds,
                len(errors))
    return {"files": len(files), "chunks": chunks, "seconds": round(seconds, 1), "not_indexed": errors}


def evaluate(search: Callable[[str], list[Any]], questions: list[EverydayQuestion]) -> dict[str, Any]:
    """hit@k, MRR@10 and latency of ``search(question)`` over the questions, plus the misses at 5."""
    return server_evaluate("", search, questions).as_dict()


@contextmanager
def kb_settings(manager: Any, **values: Any) -> Iterator[None]:
    """Temporarily set knowledge-base settings that searches read (fusion weights, rerank, ...)."""
    cfg = manager.settings.kb
    saved = {key: getattr(cfg, key) for key in values}
    for key, value in values.items():
        setattr(cfg, key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(cfg, key, value)


@contextmanager
def bm25_without_fillers() -> Iterator[None]:
    """BM25 queries with Chinese question fillers dropped (``bm25.query_tokens``), a lead that lost."""
    from server.knowledge_base import bm25

    saved = bm25.tokenize
    bm25.tokenize = lambda text, tokenizer="bigram": saved(bm25._ZH_QUERY_FILLERS.sub(" ", text), tokenizer)
    try:
        yield
    finally:
        bm25.tokenize = saved


# Query-time configurations: (label, search mode, settings overrides). Index-time ones need their own KB.
# Keys starting with "_" are no settings: "_no_fillers" searches inside bm25_without_fillers(), "_rewrite"
# with the rewriter, "_rerank" with the chat model reranking.
# The settings before sentence vectors: chunk vectors and BM25 fused 2:1 at k=60.
BEFORE_SENTENCES = {"hybrid_sentence_weight": 0.0, "hybrid_vector_weight": 2.0, "rrf_k": 60}
QUERY_CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("vector", "vector", {}),
    ("vector, chunks only", "vector", {"hybrid_sentence_weight": 0.0}),
    ("bm25", "bm25", {}),
    ("bm25 no fillers", "bm25", {"_no_fillers": True}),
    ("hybrid (default)", "hybrid", {}),
    ("hybrid no fillers", "hybrid", {"_no_fillers": True}),
    ("hybrid before sentences", "hybrid", BEFORE_SENTENCES),
    ("hybrid 1:1:1", "hybrid", {"hybrid_sentence_weight": 1.0}),
    ("hybrid 2:1:2", "hybrid", {"hybrid_vector_weight": 2.0}),
    ("hybrid k=30", "hybrid", {"rrf_k": 30}),
    ("hybrid k=60", "hybrid", {"rrf_k": 60}),
]
# With --rewrite-model: search with the question and the model's hypothetical answer (KB chat's rewrite_query).
# Latency columns then include the rewrite the first time a question is seen.
REWRITE_CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("vector + HyDE", "vector", {"_rewrite": True}),
    ("bm25 + HyDE", "bm25", {"_rewrite": True}),
    ("hybrid + HyDE", "hybrid", {"_rewrite": True}),
]
# With --rerank-model: the top candidates reordered by that model's query likelihood (kb.rerank.kind chat_model),
# through the model server's scoring endpoint; latency includes the scoring. Over the top 5, the list is 5 long
# (MRR@10 is then over 5).
RERANK_CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("hybrid + chat-model rerank", "hybrid", {"_rerank": True}),
    ("hybrid + chat-model rerank top 5", "hybrid", {"_rerank": True, "_candidates": 5}),
]
# With both models: the search with the hypothetical answer, reranked for the question as asked.
REWRITE_RERANK_CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("hybrid + HyDE + chat-model rerank", "hybrid", {"_rewrite": True, "_rerank": True}),
]

# Index-time configurations: (label, KB settings used while building and searching).
INDEX_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "jieba": {"bm25_tokenizer": "jieba"},
    "chunk250": {"chunk_size": 250, "chunk_overlap": 25},
    "no-headings": {"index_headings": False},
}


class ServedModel:
    """A built-in model served as ``kbchat llm serve`` serves it, and settings whose default model it is."""

    def __init__(self, model: str, work: Path) -> None:
        from benchmarks.common import builtin_gguf, free_port
        from benchmarks.procs import model_server
        from configs import load_settings

        settings = load_settings()
        builtin_gguf(model, settings)
        port = free_port()
        env = {"KBCHAT_PATHS__MODEL_DIR": str(settings.paths.model_dir), "KBCHAT_LLM__LOCAL__PORT": str(port)}
        self.server = model_server(model, port, work, env, name=f"model-{model}")
        self.settings = settings.model_copy(
            update={"llm": settings.llm.model_copy(update={"default_model": model}, deep=True)}, deep=True)
        self.settings.llm.local.port = port
        self.model = model

    def __enter__(self) -> "ServedModel":
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)


@contextmanager
def chat_model_reranking(manager: Any, served: ServedModel, candidates: int | None) -> Iterator[None]:
    """Searches of ``manager`` reranked by ``served``'s query likelihood, as ``kb.rerank.kind: chat_model``."""
    from configs.settings import RerankSettings
    from server.knowledge_base.rerank import make_reranker
    from server.llm.local.status import local_score_url

    config = RerankSettings(kind="chat_model", candidates=candidates)
    saved = manager.reranker
    manager.reranker = make_reranker(config, local_score_url(served.settings))
    try:
        with kb_settings(manager, rerank=config):
            yield
    finally:
        manager.reranker.close()
        manager.reranker = saved


class Rewriter:
    """Rewrites each question as KB chat does with ``rewrite_query`` (question + hypothetical answer),
    through the real ``server.chat.rewrite`` code and a served built-in model; remembers the rewrites and the
    seconds each took."""

    def __init__(self, served: ServedModel) -> None:
        self.settings = served.settings
        self.model = served.model
        self.cache: dict[str, str] = {}
        self.seconds: list[float] = []

    def __call__(self, question: str) -> str:
        if question not in self.cache:
            texts, seconds = asyncio.run(self._rewrite(question))
            self.cache[question] = texts[question]
            self.seconds += seconds
            logger.debug("rewrote %r -> %r", question, self.cache[question])
        return self.cache[question]

    async def _rewrite(self, question: str) -> tuple[dict[str, str], list[float]]:
        from server.chat.rewrite import search_texts
        from server.llm.registry import LLMRegistry

        registry = LLMRegistry(self.settings)
        try:
            return await search_texts(self.settings, registry.get(), [question])
        finally:
            await registry.aclose()


def run(set_names: list[str], splits: list[str], work: Path, index_configs: list[str],
        query_configs: list[str] | None, rewrite_model: str | None = None, limit: int | None = None,
        rerank_model: str | None = None, data_root: Path | None = None) -> dict[str, Any]:
    """Every query config over every index config; the default index's knowledge bases are kept in ``data_root``
    when given (``build_kb`` reuses them), else in ``work``."""
    out: dict[str, Any] = {"splits": splits, "runs": []}
    served = {name: ServedModel(name, work) for name in {rewrite_model, rerank_model} if name}
    rewriter = Rewriter(served[rewrite_model]) if rewrite_model else None
    with contextlib.ExitStack() as stack:
        for model in served.values():
            stack.enter_context(model)
        _run_configs(out, set_names, splits, work, index_configs, query_configs, rewriter, limit,
                     served.get(rerank_model or ""), data_root)
    if rerank_model:
        out["rerank_model"] = rerank_model
    if rewriter is not None:
        out["rewrite"] = {"model": rewrite_model, "questions": len(rewriter.seconds),
                          "p50_s": round(statistics.median(rewriter.seconds), 2) if rewriter.seconds else None,
                          "samples": dict(list(rewriter.cache.items())[:10])}
        logger.info("rewriting: p50 %.2f s per question with %s", out["rewrite"]["p50_s"] or -1, rewrite_model)
    return out


def _run_configs(out: dict[str, Any], set_names: list[str], splits: list[str], work: Path,
                 index_configs: list[str], query_configs: list[str] | None, rewriter: Rewriter | None,
                 limit: int | None, reranker: ServedModel | None = None, data_root: Path | None = None) -> None:
    rows = []
    for index_label in index_configs:
        overrides = INDEX_CONFIGS[index_label]
        folder = data_root if data_root is not None and not overrides else work / index_label
        with open_manager(folder, cache_dir=EMBEDDING_CACHE, **overrides) as manager:
            for name in set_names:
                spec = SETS[name]
                build = build_kb(manager, spec)
                configs = (QUERY_CONFIGS + (REWRITE_CONFIGS if rewriter is not None else [])
                           + (RERANK_CONFIGS if reranker is not None else [])
                           + (REWRITE_RERANK_CONFIGS if rewriter is not None and reranker is not None else []))
                for split, label, mode, query_overrides in ((sp, *config) for sp in splits for config in configs):
                    if query_configs and label not in query_configs:
                        continue
                    questions = load_questions(spec, split)[:limit]
                    rewrite = rewriter if query_overrides.get("_rewrite") else None

                    # A search reranks at least its own top_k, so reranking fewer candidates means a shorter list.
                    top_k = query_overrides.get("_candidates", 10)

                    def search(text: str, kb: str = spec.name, mode: str = mode, rewrite: Any = rewrite,
                               top_k: int = top_k) -> list[Any]:
                        query = rewrite(text) if rewrite is not None else text
                        return manager.search(kb, query, top_k=top_k, score_threshold=0.0, mode=mode, rerank_query=text)

                    query_settings = {k: v for k, v in query_overrides.items() if not k.startswith("_")}
                    fillers = bm25_without_fillers() if query_overrides.get("_no_fillers") else contextlib.nullcontext()
                    reranking = (chat_model_reranking(manager, reranker, query_overrides.get("_candidates"))
                                 if reranker is not None and query_overrides.get("_rerank") else contextlib.nullcontext())
                    with fillers, reranking, kb_settings(manager, **query_settings):
                        search(questions[0].question)  # warm-up: load the store and the encoder
                        metrics = evaluate(search, questions)
                    run_row = {"set": name, "split": split, "index": index_label, "config": label, "build": build,
                               **metrics}
                    out["runs"].append(run_row)
                    rows.append([name, split, index_label, label, metrics["questions"], metrics["hit@1"],
                                 metrics["hit@3"], metrics["hit@5"], metrics["MRR@10"], metrics["p50_ms"],
                                 metrics["p90_ms"]])
                    logger.info("%s %s %s %s: hit@1 %.3f hit@5 %.3f", name, split, index_label, label,
                                metrics["hit@1"], metrics["hit@5"])
    out["tables"] = print_table(
        "Everyday questions: the gold evidence among the top chunks",
        ["set", "split", "index", "search", "questions", "hit@1", "hit@3", "hit@5", "MRR@10", "p50 ms", "p90 ms"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--split", default="tuning", help="comma-separated parts: heldout, tuning, all")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated set names")
    parser.add_argument("--index", default="default", help=f"comma-separated index configs: {', '.join(INDEX_CONFIGS)}")
    parser.add_argument("--configs", default="", help="comma-separated query configs (default: all)")
    parser.add_argument("--rewrite-model", default=None,
                        help="also search with a hypothetical answer written by this built-in model (HyDE)")
    parser.add_argument("--rerank-model", default=None,
                        help="also rerank the top candidates by this built-in model's query likelihood")
    parser.add_argument("--n", type=int, default=None, help="at most this many questions per set and part")
    parser.add_argument("--evidence", action="store_true",
                        help="measure the evidence KB chat chooses instead (benchmarks/everyday_evidence.py)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="keep the default index's knowledge bases in this folder and reuse them in later runs, "
                        "as benchmarks.answers --data-root does (delete it after changing how files are read or split)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    if args.evidence:
        from benchmarks import everyday_evidence

        with scratch_dir("everyday", args.keep) as work, open_manager(args.data_root or work,
                                                                      cache_dir=EMBEDDING_CACHE) as manager:
            result = everyday_evidence.run(manager, args.sets.split(","), args.split.split(","), args.n)
        write_result("everyday_evidence", result, args.out)
        return 0
    with scratch_dir("everyday", args.keep) as work:
        result = run(args.sets.split(","), args.split.split(","), work, args.index.split(","),
                     [c for c in args.configs.split(",") if c] or None, args.rewrite_model, args.n,
                     args.rerank_model, args.data_root)
    write_result("everyday", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
