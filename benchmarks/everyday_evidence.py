"""Evidence choice on the everyday sets: do the sentences the model reads hold the gold evidence?

Run through ``python -m benchmarks.everyday --evidence``. For each question whose top ``chat.kb_passages``
passages (default search) include one holding the gold evidence, the sentences are chosen as KB chat
chooses them (``server.chat.evidence.choose``, ``chat.evidence_tokens`` budget, the sentences' cosines
from ``sentence_similarities``) at several ``chat.evidence_meaning_weight`` values; a question counts
when the chosen text holds the evidence's first 12 characters (normalised), so an evidence that runs
over a sentence end still counts.
"""

from __future__ import annotations

import logging
from typing import Any

from benchmarks.common import print_table
from benchmarks.everyday import SETS, build_kb, load_questions
from server.chat.evidence import choose
from server.knowledge_base.evaluation import normalise
from server.llm.tokens import approx_token_count

logger = logging.getLogger("benchmarks.everyday_evidence")

WEIGHTS = (0.0, 1.0, 2.0, 4.0)
PREFIX = 12


def run(manager: Any, set_names: list[str], splits: list[str], limit: int | None) -> dict[str, Any]:
    budget, passages = manager.settings.chat.evidence_tokens, manager.settings.chat.kb_passages
    rows, runs = [], []
    for name in set_names:
        build_kb(manager, SETS[name])
        for split in splits:
            asked = 0
            held = dict.fromkeys(WEIGHTS, 0)
            for question in load_questions(SETS[name], split)[:limit]:
                hits = manager.search(name, question.question, top_k=passages)
                if not any(question.is_hit(h.metadata.get("source"), h.text) for h in hits):
                    continue
                asked += 1
                similarities = manager.sentence_similarities(question.question, hits)
                wanted = normalise(question.evidence or "")[:PREFIX]
                for weight in WEIGHTS:
                    chosen = choose(question.question, [h.text for h in hits], budget, approx_token_count,
                                    similarities, weight)
                    held[weight] += wanted in normalise("".join(p.excerpt() for p in chosen))
            shares = {w: round(held[w] / asked, 3) if asked else None for w in WEIGHTS}
            runs.append({"set": name, "split": split, "questions_with_gold_retrieved": asked,
                         "evidence_held_by_meaning_weight": shares})
            rows.append([name, split, asked, *shares.values()])
    table = print_table("Chosen evidence holds the gold (questions whose gold passage was retrieved)",
                        ["set", "split", "questions", *(f"weight {w:g}" for w in WEIGHTS)], rows)
    return {"evidence": runs, "tables": table}
