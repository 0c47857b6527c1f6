"""`kbchat eval KB QUESTIONS.jsonl`: how well a knowledge base finds the answers to your own questions."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import get_args

from configs import Settings
from configs.settings import SearchMode
from server.cli.init import open_manager
from server.cli.output import say
from server.errors import AppError
from server.knowledge_base.evaluation import evaluate_kb, load_questions

COLUMNS = ("label", "questions", "hit@1", "hit@3", "hit@5", "hit@10", "MRR@10", "p50_ms")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="hit@1/3/5 and MRR of each search mode on your own questions",
        description="Each line of QUESTIONS is a JSON object with \"question\" and \"file\" (the file that "
        "answers it) and/or \"evidence\" (text the answering chunk holds).",
    )
    parser.add_argument("name", help="knowledge base")
    parser.add_argument("questions", type=Path, help="JSON Lines file of questions")
    parser.add_argument("--modes", default=",".join(get_args(SearchMode)), help="comma-separated search modes")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.add_argument("--misses", action="store_true", help="list the questions missed in the top 5")
    parser.add_argument("--rewrite", action="store_true",
                        help="also search each question with a hypothetical answer the default chat model writes "
                        "(KB chat's rewrite_query); the model must be running, e.g. `kbchat llm serve`")
    parser.set_defaults(func=run)


async def _rewrite(settings: Settings, questions: list[str]) -> tuple[dict[str, str], list[float]]:
    """Each question with the default model's hypothetical answer; ServiceUnavailable if the model wrote none."""
    # Imported here: every other kbchat command starts without the chat layer.
    from server.chat.rewrite import require_rewrites, search_texts
    from server.llm.registry import LLMRegistry

    registry = LLMRegistry(settings)
    try:
        rewritten, seconds = await search_texts(settings, registry.get(), questions)
    finally:
        await registry.aclose()
    require_rewrites(rewritten, registry.default_name)
    return rewritten, seconds


def run(args: argparse.Namespace, settings: Settings) -> int:
    modes = [m for m in args.modes.split(",") if m]
    try:
        questions = load_questions(args.questions)
        with open_manager(settings) as manager:
            reports = evaluate_kb(manager, args.name, questions, modes)
            if args.rewrite:
                rewritten, seconds = asyncio.run(_rewrite(settings, [q.question for q in questions]))
                reports += evaluate_kb(manager, args.name, questions, modes, rewritten)
                say(f"rewrites: {sum(rewritten[q] != q for q in rewritten)} of {len(rewritten)} questions, "
                    f"{statistics.median(seconds):.2f} s p50 each (not in p50_ms)", file=sys.stderr)
    except AppError as exc:
        say(f"error: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        say(json.dumps(reports, ensure_ascii=False, indent=2))
        return 0
    say(" | ".join(c.replace("label", "mode") for c in COLUMNS))
    for report in reports:
        say(" | ".join(str(report[c]) for c in COLUMNS))
    if args.misses:
        by_id = {q.qid: q.question for q in questions}
        for report in reports:
            for qid in report["misses@5"]:
                say(f"{report['label']} missed {qid}: {by_id[qid]}")
    return 0
