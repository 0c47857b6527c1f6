"""Evidence choice on the everyday sets: do the sentences the model reads hold the gold evidence?

Run through ``python -m benchmarks.everyday --evidence``. For each question whose top ``chat.kb_passages``
passages (default search) include one holding the gold evidence, the sentences are chosen as KB chat
chooses them (``server.chat.evidence.choose``, ``chat.evidence_tokens`` budget, the sentences' cosines
from ``sentence_similarities``) at several ``chat.evidence_meaning_weight`` values, then at the smaller
budgets a slow model's first-token cut leaves. A question counts when the chosen text holds the
evidence's first 12 characters (normalised), so an evidence that runs over a sentence end still counts;
"an answer held" when it holds one of the short answers.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from benchmarks.common import print_table
from benchmarks.everyday import SETS, build_kb, load_questions
from server.chat.evidence import choose
from server.knowledge_base.evaluation import normalise
from server.llm.tokens import approx_token_count

logger = logging.getLogger("benchmarks.everyday_evidence")

WEIGHTS = (0.0, 1.0, 2.0, 4.0)
# Budgets a slow model's first-token cut leaves (chat.first_token_seconds).
CUT_BUDGETS = (160, 100, 60)
PREFIX = 12


@dataclass(frozen=True)
class Variant:
    label: str
    budget: int
    weight: float


def variants(budget: int, weight: float) -> list[Variant]:
    """The meaning weights at the default budget, then the smaller budgets at the default weight."""
    out = [Variant(f"budget {budget}, weight {w:g}", budget, w) for w in WEIGHTS]
    return out + [Variant(f"budget {cut}, weight {weight:g}", cut, weight) for cut in CUT_BUDGETS]


def run(manager: Any, set_names: list[str], splits: list[str], limit: int | None) -> dict[str, Any]:
    chat = manager.settings.chat
    studied = variants(chat.evidence_tokens, chat.evidence_meaning_weight)
    rows, runs = [], []
    for name in set_names:
        build_kb(manager, SETS[name])
        for split in splits:
            asked = 0
            held: dict[Variant, Counter[str]] = {v: Counter() for v in studied}
            for question in load_questions(SETS[name], split)[:limit]:
                hits = manager.search(name, question.question, top_k=chat.kb_passages)
                if not any(question.is_hit(h.metadata.get("source"), h.text) for h in hits):
                    continue
                asked += 1
                similarities = manager.sentence_similarities(question.question, hits)
                wanted = normalise(question.evidence or "")[:PREFIX]
                answers = [normalise(a) for a in question.answers]
                for v in studied:
                    chosen = choose(question.question, [h.text for h in hits], v.budget, approx_token_count,
                                    similarities, v.weight)
                    text = "".join(p.excerpt() for p in chosen)
                    norm = normalise(text)
                    held[v].update(evidence=wanted in norm, answer=any(a in norm for a in answers),
                                   tokens=approx_token_count(text))
            for v in studied:
                share = [round(held[v][k] / asked, 3) if asked else None for k in ("evidence", "answer")]
                tokens = round(held[v]["tokens"] / asked) if asked else None
                runs.append({"set": name, "split": split, "variant": v.label, "budget": v.budget,
                             "meaning_weight": v.weight,
                             "questions_with_gold_retrieved": asked, "evidence_held": share[0],
                             "answer_held": share[1], "evidence_tokens_mean": tokens})
                rows.append([name, split, asked, v.label, *share, tokens])
    table = print_table("Chosen evidence holds the gold (questions whose gold passage was retrieved)",
                        ["set", "split", "questions", "variant", "evidence held", "an answer held",
                         "tokens mean"], rows)
    return {"evidence": runs, "tables": table}
