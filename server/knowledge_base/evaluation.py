"""Retrieval evaluation over a user's own questions: hit@1/3/5/10 and MRR@10 per search mode.

A question file is JSON Lines; each line holds ``question`` and at least one of ``file`` (the file that
answers it) and ``evidence`` (text that the answering chunk holds; ``gold_text`` is read the same).
A retrieved chunk is a hit when it comes from the gold file (if one is given) and holds the evidence
(if given): the normalised evidence (NFKC, case-folded, without whitespace) is a substring of the
normalised chunk, or at least half of the evidence's character 8-grams occur in the chunk, so evidence
that a chunk boundary cuts still counts.
"""

from __future__ import annotations

import json
import statistics
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from configs.settings import SearchMode
from server.errors import InvalidInput
from server.knowledge_base.schemas import SearchHit

if TYPE_CHECKING:
    from server.knowledge_base.manager import KnowledgeBaseManager

SHINGLE = 8
CUTOFFS = (1, 3, 5, 10)


def normalise(text: str) -> str:
    """NFKC, case-folded, without whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def shingles(norm: str, n: int = SHINGLE) -> set[str]:
    return {norm[i : i + n] for i in range(len(norm) - n + 1)}


@dataclass(frozen=True)
class EvalQuestion:
    """One question with what marks its answering chunk."""

    qid: str
    question: str
    file: str | None = None
    evidence: str | None = None

    def is_hit(self, source: str, text: str) -> bool:
        if self.file is not None and source != self.file:
            return False
        if not self.evidence:
            return True
        evidence, chunk = normalise(self.evidence), normalise(text)
        if evidence in chunk:
            return True
        grams = shingles(evidence)
        return bool(grams) and len(grams & shingles(chunk)) >= 0.5 * len(grams)


def parse_questions(lines: Sequence[str]) -> list[EvalQuestion]:
    """Questions from JSON Lines text; a malformed line raises InvalidInput naming its number."""
    out: list[EvalQuestion] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"line {number} is not JSON: {exc}") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise InvalidInput(f"line {number} needs a non-empty \"question\"")
        evidence = row.get("evidence") or row.get("gold_text")
        if not row.get("file") and not evidence:
            raise InvalidInput(f"line {number} needs \"file\" or \"evidence\" to say which chunk answers it")
        out.append(EvalQuestion(str(row.get("id") or number), row["question"], row.get("file") or None,
                                evidence or None))
    if not out:
        raise InvalidInput("the question file holds no questions")
    return out


def load_questions(path: Path) -> list[EvalQuestion]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read questions from {path}: {exc}") from None
    return parse_questions(text.splitlines())


@dataclass
class EvalReport:
    """Ranking quality and latency of one search configuration over a question set."""

    label: str
    questions: int = 0
    hits: dict[int, int] = field(default_factory=dict)
    rr_sum: float = 0.0
    seconds: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)  # ids without a hit in the top 5

    def add(self, qid: str, flags: Sequence[bool], seconds: float) -> None:
        self.questions += 1
        self.seconds.append(seconds)
        first = next((i + 1 for i, flag in enumerate(flags[:10]) if flag), None)
        for k in CUTOFFS:
            if first is not None and first <= k:
                self.hits[k] = self.hits.get(k, 0) + 1
        if first is not None:
            self.rr_sum += 1.0 / first
        if first is None or first > 5:
            self.misses.append(qid)

    def as_dict(self) -> dict[str, Any]:
        n = self.questions or 1
        ordered = sorted(self.seconds)
        return {
            "label": self.label,
            "questions": self.questions,
            **{f"hit@{k}": round(self.hits.get(k, 0) / n, 4) for k in CUTOFFS},
            "MRR@10": round(self.rr_sum / n, 4),
            "p50_ms": round(1000 * statistics.median(ordered), 1) if ordered else None,
            "p90_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1) if ordered else None,
            "misses@5": self.misses,
        }


SearchFn = Callable[[str], list[Any]]  # question -> ranked hits with .text and .metadata["source"]


def evaluate(label: str, search: SearchFn, questions: Sequence[EvalQuestion]) -> EvalReport:
    """Run every question through ``search`` and score where its first hit ranks."""
    report = EvalReport(label)
    for question in questions:
        started = time.perf_counter()
        hits = search(question.question)
        seconds = time.perf_counter() - started
        flags = [question.is_hit(str(h.metadata.get("source") or ""), h.text) for h in hits]
        report.add(question.qid, flags, seconds)
    return report


def evaluate_kb(manager: KnowledgeBaseManager, kb: str, questions: Sequence[EvalQuestion],
                modes: Sequence[str] = get_args(SearchMode), rewritten: Mapping[str, str] | None = None,
                ) -> list[dict[str, Any]]:
    """One report per search mode over the knowledge base ``kb`` (top 10, no score threshold); with
    ``rewritten`` (question -> text to search instead), labelled "<mode> + rewrite"."""
    manager.get_kb(kb)
    reports = []
    for mode in modes:
        def search(text: str, mode: str = mode) -> list[SearchHit]:
            query = rewritten.get(text, text) if rewritten is not None else text
            return manager.search(kb, query, top_k=10, score_threshold=0.0, mode=mode, rerank_query=text)

        label = f"{mode} + rewrite" if rewritten is not None else mode
        reports.append(evaluate(label, search, questions).as_dict())
    return reports
