"""The chat model as a reranker: candidates ordered by how likely the model finds the question after them.

    python -m benchmarks.query_likelihood [--sets laws_zh] [--split tuning] [--n 60] [--model qwen2.5-coder-1.5b]

For each everyday question the default hybrid search returns ten chunks. Each is shown to the built-in
chat model, in process, as a short passage (its title and the two sentences closest to the question),
followed by the question; the candidate's score is the mean log-probability of the question's tokens
(query likelihood, "unsupervised passage reranking"). Candidates are reordered by that score minus
``prior`` times their search rank, for a few priors, over the top 5 and the top 10. It reads about
1,100 prompt tokens per question with every token's logits, so the seconds per question are reported
too: that is what the stage would cost before an answer.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import base_parser, print_table, require_shared_data, scratch_dir, setup_logging, write_result
from benchmarks.everyday import EMBEDDING_CACHE, SETS, EverydayQuestion, build_kb, load_questions
from benchmarks.kbtools import open_manager
from server.knowledge_base.evaluation import EvalReport
from server.knowledge_base.sentences import sentence_spans

logger = logging.getLogger("benchmarks.query_likelihood")

CANDIDATES = 10
PRIORS = (0.0, 0.02, 0.05, 0.1)
PASSAGE_CHARS = 300
FRAMES = {
    "zh": "资料：{passage}\n\n根据上面的资料，一个人问了这样一个问题：",
    "en": "Passage: {passage}\n\nA question someone asked about this passage:",
}


class Scorer:
    """A GGUF chat model in process, with every prompt token's logits."""

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, n_threads=2, logits_all=True, verbose=False)
        self.tokens = 0

    @classmethod
    def builtin(cls, model: str) -> "Scorer":
        from configs import load_settings
        from server.cli.llm import resolve_builtin
        from server.llm.local.assemble import ensure_weights

        settings = load_settings()
        return cls(ensure_weights(resolve_builtin(settings, model), settings.paths.model_dir))

    def question_logprob(self, passage: str, question: str, lang: str) -> float:
        """Mean log-probability of the question's tokens after the passage."""
        head = self.llm.tokenize(FRAMES[lang].format(passage=passage).encode(), add_bos=False, special=False)
        tail = self.llm.tokenize(question.encode(), add_bos=False, special=False)
        self.llm.reset()
        self.llm.eval(head + tail)
        self.tokens += len(head) + len(tail)
        logits = np.asarray(self.llm.scores[len(head) - 1: len(head) + len(tail) - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        return float((logits[np.arange(len(tail)), tail] - log_norm).mean())


def short_passage(text: str, title: str, similarities: list[float] | None) -> str:
    """The title and the two sentences of ``text`` closest to the question, in text order."""
    spans = sentence_spans(text)
    if similarities is not None and len(similarities) == len(spans):
        best = sorted(sorted(range(len(spans)), key=lambda i: -similarities[i])[:2])
        text = "".join(text[spans[i][0]:spans[i][1]].strip() for i in best)
    return f"{title} {text}"[:PASSAGE_CHARS]


def rerank_order(scores: list[float], depth: int, prior: float, total: int) -> list[int]:
    """Indexes of the candidates: the first ``depth`` by score minus ``prior`` per rank, then the rest."""
    head = sorted(range(depth), key=lambda i: -(scores[i] - prior * i))
    return head + list(range(depth, total))


def score_set(manager: Any, scorer: Scorer, name: str, questions: list[EverydayQuestion]) -> list[dict[str, Any]]:
    rows = []
    for i, question in enumerate(questions, 1):
        hits = manager.search(name, question.question, top_k=CANDIDATES, score_threshold=0.0)
        similarities = manager.sentence_similarities(question.question, hits)
        started = time.perf_counter()
        scores = [
            scorer.question_logprob(
                short_passage(hit.text, (hit.metadata.get("heading_path") or [""])[0], sims), question.question,
                question.lang)
            for hit, sims in zip(hits, similarities)
        ]
        rows.append({"qid": question.qid, "gold": [question.is_hit(h.metadata.get("source"), h.text) for h in hits],
                     "scores": scores, "seconds": time.perf_counter() - started})
        logger.info("%s %d/%d scored in %.1f s", name, i, len(questions), rows[-1]["seconds"])
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """hit@k and MRR@10 of the search order and of each reordering (``EvalReport``, as ``kbchat eval`` scores)."""
    out = []
    configs = [("search order", 0, 0.0)] + [(f"top {d}, prior {p:g}", d, p) for d in (5, CANDIDATES) for p in PRIORS]
    for label, depth, prior in configs:
        report = EvalReport(label)
        for row in rows:
            total = len(row["gold"])
            order = rerank_order(row["scores"], min(depth, total), prior, total)
            report.add(row.get("qid", ""), [row["gold"][i] for i in order], 0.0)
        scores = report.as_dict()
        out.append({"config": label, **{key: scores[key] for key in ("hit@1", "hit@3", "hit@5", "MRR@10")}})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sets", default="laws_zh", help="comma-separated set names")
    parser.add_argument("--split", default="tuning", help="heldout, tuning or all")
    parser.add_argument("--n", type=int, default=None, help="at most this many questions per set")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="built-in chat model that scores")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    scorer = Scorer.builtin(args.model)
    result: dict[str, Any] = {"model": args.model, "split": args.split, "sets": {}}
    table = []
    with scratch_dir("query_likelihood", args.keep) as work, open_manager(work, cache_dir=EMBEDDING_CACHE) as manager:
        for name in args.sets.split(","):
            build_kb(manager, SETS[name])
            scorer.tokens = 0
            rows = score_set(manager, scorer, name, load_questions(SETS[name], args.split)[:args.n])
            seconds = [r["seconds"] for r in rows]
            summary = summarise(rows)
            result["sets"][name] = {"summary": summary, "rows": rows, "tokens_per_question": scorer.tokens / len(rows),
                                    "seconds_p50": statistics.median(seconds)}
            table += [[name, len(rows), s["config"], s["hit@1"], s["hit@3"], s["hit@5"], s["MRR@10"],
                       round(scorer.tokens / len(rows)), round(statistics.median(seconds), 1)] for s in summary]
    result["table"] = print_table(
        f"Reranking by query likelihood ({args.model}, {args.split})",
        ["set", "questions", "order", "hit@1", "hit@3", "hit@5", "MRR@10", "prompt tokens per question", "s p50"], table)
    write_result("query_likelihood", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
