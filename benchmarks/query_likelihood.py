"""The chat model as a reranker: candidates ordered by how likely the model finds the question after them.

    python -m benchmarks.query_likelihood [--sets laws_zh] [--split tuning] [--n 60] [--model qwen2.5-coder-1.5b]
    python -m benchmarks.query_likelihood --sentences [...]

For each everyday question the default hybrid search returns ten chunks. Each is shown to the built-in
chat model, in process, as ``kb.rerank.kind: chat_model`` shows it (its title and the two sentences closest
to the question, then the question), scored as the model server scores it (server/llm/local/scoring.py):
the mean log-probability of the question's tokens (query likelihood). Candidates are reordered by that
score minus ``prior`` times their search rank, for a few priors, over the top 5 and the top 10: the
sweep that chose ``kb.rerank.rank_prior``. It reads about 1,100 prompt tokens per question, so the
seconds per question are reported too. ``benchmarks.everyday --rerank-model`` measures the stage as
searches run it, through the model server.

``--sentences`` measures ``chat.evidence_scoring`` instead: for each question whose gold passage is among the
``chat.kb_passages`` found, the ``chat.scored_sentences`` sentences that bear most on it (as knowledge-base chat
ranks them, ``server.chat.evidence.rank_sentences``) are scored as the chat scores them (title, sentence, then
the question); reported is how often the first sentence holds the gold evidence (its first 12 characters) or a
short answer, in the first order and in the model's.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import base_parser, builtin_gguf, print_table, require_shared_data, scratch_dir, setup_logging, write_result
from benchmarks.everyday import EMBEDDING_CACHE, SETS, EverydayQuestion, build_kb, load_questions
from benchmarks.kbtools import open_manager
from configs.settings import RerankSettings
from server.chat.evidence import rank_sentences, split_passages
from server.chat.kb_chat import sentence_readings
from server.chat.sources import kb_source
from server.knowledge_base.evaluation import EvalReport, normalise
from server.knowledge_base.rerank import ChatModelReranker, reading_text
from server.llm.local.scoring import ContinuationScorer

logger = logging.getLogger("benchmarks.query_likelihood")

CANDIDATES = 10
PRIORS = (0.0, 0.02, 0.05, 0.1)


class Scorer:
    """A built-in GGUF chat model in process, scoring as the model server's ``POST /kbchat/score`` does."""

    def __init__(self, path: Path) -> None:
        import llama_cpp

        from server.llm.local.llama_server import choose_extra_buffers

        choose_extra_buffers()
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
        self.scorer = ContinuationScorer()
        self.reranker = ChatModelReranker(RerankSettings(kind="chat_model"), "")
        self.tokens = 0

    def question_logprobs(self, texts: list[str], question: str) -> list[float]:
        """Per candidate text, the mean log-probability of the question's tokens after it."""
        result = self.scorer.score(self.llm, self.reranker.prefixes(question, texts), question)
        self.tokens += result.tokens
        return result.logprobs


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
        texts = [reading_text(hit.text, str((hit.metadata.get("heading_path") or [""])[0]), sims,
                              ChatModelReranker.passage_sentences or 2) for hit, sims in zip(hits, similarities)]
        scores = scorer.question_logprobs(texts, question.question)
        rows.append({"qid": question.qid, "gold": [question.is_hit(h.metadata.get("source"), h.text) for h in hits],
                     "scores": scores, "seconds": time.perf_counter() - started})
        logger.info("%s %d/%d scored in %.1f s", name, i, len(questions), rows[-1]["seconds"])
    return rows


def score_sentences(manager: Any, scorer: Scorer, name: str, questions: list[EverydayQuestion]) -> list[dict[str, Any]]:
    """Per question whose gold passage was found: whether each of the best sentences holds the gold, and its score."""
    chat = manager.settings.chat
    rows = []
    for question in questions:
        hits = manager.search(name, question.question, top_k=chat.kb_passages)
        if not any(question.is_hit(h.metadata.get("source"), h.text) for h in hits):
            continue
        passages = split_passages([h.text for h in hits])
        similarities = manager.sentence_similarities(question.question, hits)
        candidates = rank_sentences(question.question, passages, similarities,
                                    chat.evidence_meaning_weight)[:chat.scored_sentences]
        readings = sentence_readings([kb_source(i, h, name) for i, h in enumerate(hits, 1)], hits, passages, candidates)
        sentences = [passages[c.rank].sentence(c.index) for c in candidates]
        wanted = [normalise(question.evidence or "")[:12], *(normalise(a) for a in question.answers)]
        started = time.perf_counter()
        scores = scorer.question_logprobs(readings, question.question)
        rows.append({"qid": question.qid, "scores": scores, "seconds": time.perf_counter() - started,
                     "gold": [any(w and w in normalise(s) for w in wanted) for s in sentences]})
    return rows


def summarise_sentences(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How often the first (and the first two) of the best sentences hold the gold, in each order."""
    out = []
    for label, prior in [("first order", None), *((f"model, prior {p:g}", p) for p in PRIORS)]:
        first = two = 0
        for row in rows:
            n = len(row["gold"])
            order = list(range(n)) if prior is None else rerank_order(row["scores"], n, prior, n)
            first += row["gold"][order[0]] if order else 0
            two += any(row["gold"][i] for i in order[:2])
        out.append({"order": label, "first holds gold": round(first / len(rows), 3) if rows else None,
                    "first two hold gold": round(two / len(rows), 3) if rows else None})
    return out


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
    parser.add_argument("--sentences", action="store_true",
                        help="score the evidence sentences (chat.evidence_scoring) instead of the passages")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    scorer = Scorer(builtin_gguf(args.model))
    result: dict[str, Any] = {"model": args.model, "split": args.split, "sets": {}}
    table = []
    with scratch_dir("query_likelihood", args.keep) as work, open_manager(work, cache_dir=EMBEDDING_CACHE) as manager:
        for name in args.sets.split(","):
            build_kb(manager, SETS[name])
            scorer.tokens = 0
            questions = load_questions(SETS[name], args.split)[:args.n]
            rows = (score_sentences if args.sentences else score_set)(manager, scorer, name, questions)
            seconds = [r["seconds"] for r in rows]
            tokens, p50 = round(scorer.tokens / len(rows)), round(statistics.median(seconds), 1)
            summary = (summarise_sentences if args.sentences else summarise)(rows)
            result["sets"][name] = {"summary": summary, "rows": rows, "tokens_per_question": tokens,
                                    "seconds_p50": p50}
            table += [[name, len(rows), *s.values(), tokens, p50] for s in summary]
    if args.sentences:
        result["table"] = print_table(
            f"Evidence sentences ordered by query likelihood ({args.model}, {args.split}; questions whose gold "
            "passage was found)", ["set", "questions", "order", "first holds gold", "first two hold gold",
                                   "prompt tokens per question", "s p50"], table)
    else:
        result["table"] = print_table(
            f"Reranking by query likelihood ({args.model}, {args.split})",
            ["set", "questions", "order", "hit@1", "hit@3", "hit@5", "MRR@10", "prompt tokens per question", "s p50"],
            table)
    write_result("query_likelihood", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
