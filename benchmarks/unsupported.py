"""Questions the documents do not answer: how often knowledge-base chat says so, and what it costs.

    python -m benchmarks.unsupported [--split tuning,heldout] [--sets laws_zh,files_en]

Each everyday set has a companion of questions its documents do not answer (``sets/<set>_unanswerable.jsonl``:
near the documents' subject, like a tax question over the labour laws, or far from it; the first 15 Chinese
and 10 English ones are held out). KB chat refuses without asking the model when the question's cosine with
the closest chunk of the knowledge base, by the chunk's vector or its closest sentence's, is below the
embedding model's ``relevance_floor``, or below its ``relevance_doubt`` while the question's keyword score
(``KnowledgeBaseManager.keyword_score``) is under ``kb.relevance_keyword_score`` (``server/chat/relevance.py``).
This makes the same judgement, on a knowledge base built with the default settings, for every question of both
kinds and reports:

* unanswerable refused: the share of unanswerable questions KB chat declines (higher is better);
* answerable refused: the share of the everyday set's own questions it declines (each one an answer lost);

by the floor alone and with the keyword check, at the configured values; then for a range of floors, and of
doubt bands and keyword scores, on the tuning part, which is how they were chosen.
Without the floor every question goes to the model; the built-in 1.5B model then answers nearly every
unanswerable question with an invented fact and a citation (see docs/everyday.md).
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import base_parser, print_table, require_shared_data, scratch_dir, setup_logging, write_result
from benchmarks.everyday import EMBEDDING_CACHE, SETS, SETS_DIR, EverydaySet, build_kb, load_questions
from benchmarks.kbtools import open_manager
from server.chat.relevance import Bounds, declined, judged_language

# Held-out questions at the start of each unanswerable set.
UNANSWERABLE_HELDOUT = {"laws_zh": 15, "files_en": 10}
SWEEP = [round(0.80 + 0.005 * i, 3) for i in range(21)]
# Doubt bands above the floor, and keyword scores, tried on the tuning part.
DOUBT_SWEEP = (0.005, 0.01, 0.02, 0.03, 0.05)
KEYWORD_SWEEP = (0.4, 0.5, 0.6, 0.7, 0.8)


@dataclass(frozen=True)
class Scored:
    """One question's closeness to the knowledge base (None: nothing found, or not in its language) and its
    keyword score."""

    qid: str
    answerable: bool
    closest: float | None
    keywords: float = 0.0

    def refused(self, bounds: Bounds) -> bool:
        """Declined as KB chat declines it."""
        return self.closest is not None and declined(self.closest, bounds, self.keywords)


def unanswerable(spec: EverydaySet, split: str) -> list[tuple[str, str]]:
    path = SETS_DIR / f"{spec.name}_unanswerable.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    held = UNANSWERABLE_HELDOUT[spec.name]
    rows = rows[:held] if split == "heldout" else rows[held:] if split == "tuning" else rows
    return [(r["id"], r["question"]) for r in rows]


def score(manager: Any, kb: str, lang: str, qid: str, question: str, answerable: bool) -> Scored:
    closest = manager.closest_chunk(kb, question)
    judged = closest is not None and judged_language(closest, lang)
    return Scored(qid, answerable, round(closest.score, 4) if judged and closest else None,
                  round(manager.keyword_score(kb, question), 3))


def refused(rows: list[Scored], answerable: bool, bounds: Bounds) -> float:
    group = [r for r in rows if r.answerable == answerable]
    return sum(r.refused(bounds) for r in group) / len(group) if group else 0.0


def run(set_names: list[str], splits: list[str], manager: Any) -> dict[str, Any]:
    table, sweep, doubts, scored = [], [], [], {}
    for name in set_names:
        spec = SETS[name]
        build_kb(manager, spec)
        floor = manager.relevance_floor(name, spec.lang)
        configured = Bounds(floor, manager.relevance_doubt(name, spec.lang),
                            manager.settings.kb.relevance_keyword_score)
        for split in splits:
            rows = [score(manager, name, spec.lang, q.qid, q.question, True) for q in load_questions(spec, split)]
            rows += [score(manager, name, spec.lang, qid, text, False) for qid, text in unanswerable(spec, split)]
            scored[f"{name}/{split}"] = [r.__dict__ for r in rows]
            counts = (sum(r.answerable for r in rows), sum(not r.answerable for r in rows))
            for label, bounds in (("floor", Bounds(floor)), ("floor and keywords", configured)):
                table.append([name, split, label, floor, configured.doubt if bounds.doubt else None, counts[1],
                              refused(rows, False, bounds), counts[0], refused(rows, True, bounds)])
            if split != "tuning" or floor is None:
                continue
            sweep += [[name, f, refused(rows, False, Bounds(f)), refused(rows, True, Bounds(f))] for f in SWEEP]
            for band in DOUBT_SWEEP:
                for words in KEYWORD_SWEEP:
                    bounds = Bounds(floor, round(floor + band, 3), words)
                    doubts.append([name, bounds.doubt, words, refused(rows, False, bounds),
                                   refused(rows, True, bounds)])
    print_table("Questions the documents do not answer, at the configured values",
                ["set", "part", "judged by", "floor", "doubt", "unanswerable", "unanswerable refused", "answerable",
                 "answerable refused"], table)
    print_table("Floors on the tuning part", ["set", "floor", "unanswerable refused", "answerable refused"], sweep)
    print_table("Doubt bands and keyword scores on the tuning part (configured floor)",
                ["set", "doubt", "keyword score", "unanswerable refused", "answerable refused"], doubts)
    return {"table": table, "sweep": sweep, "doubt_sweep": doubts, "scored": scored}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--split", default="tuning,heldout", help="comma-separated parts: heldout, tuning, all")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated set names")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="keep the knowledge bases in this folder and reuse them in later runs (as "
                        "benchmarks.answers --data-root)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    with ExitStack() as stack:
        root = args.data_root or stack.enter_context(scratch_dir("unsupported", args.keep))
        manager = stack.enter_context(open_manager(root, cache_dir=EMBEDDING_CACHE))
        result = run(args.sets.split(","), args.split.split(","), manager)
    write_result("unsupported", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
