"""The quick benchmark set run by `make bench`: every benchmark's --quick mode, then all tables.

    python -m benchmarks.run_quick [--only retrieval,ingest] [--with-answers]

Runs, each in its own process so one benchmark's loaded models and threads never skew another:
retrieval, ingest, query, llm (SmolLM2, and Qwen2.5-Coder when its weights are installed) and load,
all with --quick. --with-answers adds answers --quick (20 questions per language; slow).
Results go to benchmarks/results/<name>.json; the tables are printed again at the end with the
time each benchmark took. Designed to finish in under 20 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time

from benchmarks.common import REPO_ROOT, RESULTS_DIR, print_table, setup_logging

logger = logging.getLogger("benchmarks.run_quick")

QUICK_SET = ("retrieval", "ingest", "query", "llm", "load")
BUDGET_S = 20 * 60


def run_one(name: str) -> tuple[int, float]:
    """Run `python -m benchmarks.<name> --quick`; returns its exit code and seconds."""
    cmd = [sys.executable, "-m", f"benchmarks.{name}", "--quick", "--out", str(RESULTS_DIR / f"{name}.json")]
    logger.info("running %s", " ".join(cmd[1:]))
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=REPO_ROOT).returncode
    return code, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(QUICK_SET))
    parser.add_argument("--with-answers", action="store_true", help="also run answers --quick (slow)")
    args = parser.parse_args(argv)
    setup_logging()
    names = [n for n in (args.only.split(",") if args.only else QUICK_SET)]
    unknown = [n for n in names if n not in QUICK_SET + ("answers",)]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    if args.with_answers and "answers" not in names:
        names.append("answers")
    started = time.perf_counter()
    outcomes = []
    for name in names:
        path = RESULTS_DIR / f"{name}.json"
        path.unlink(missing_ok=True)
        code, seconds = run_one(name)
        outcomes.append((name, code, seconds))
    total = time.perf_counter() - started
    sys.stdout.write("\n## Quick benchmark results\n")
    for name, code, _ in outcomes:
        path = RESULTS_DIR / f"{name}.json"
        if code == 0 and path.is_file():
            sys.stdout.write(json.loads(path.read_text(encoding="utf-8")).get("tables", ""))
        else:
            sys.stdout.write(f"\n### {name}: failed with exit code {code}\n")
    print_table("Quick set timing", ["benchmark", "exit code", "seconds"],
                [*[[n, c, round(s, 1)] for n, c, s in outcomes], ["total", "", round(total, 1)]])
    if total > BUDGET_S:
        logger.warning("the quick set took %.0f s, over its %d s budget", total, BUDGET_S)
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
