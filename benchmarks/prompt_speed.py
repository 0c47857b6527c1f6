"""Prompt reading speed of the built-in models with llama.cpp's weight repacking off and on.

    python -m benchmarks.prompt_speed [--models qwen2.5-coder-1.5b,qwen2.5-coder-0.5b] [--tokens 512]

Time to first token on a CPU is mostly prompt processing, so this is the figure that carries over
between machines: TTFT ~= uncached prompt tokens / prompt tokens per second. Each measurement runs in
its own process (repacking is chosen when the model loads), with the threads `kbchat llm serve` uses,
on Chinese law text and on English text, after one unmeasured warm-up evaluation. The table reports
tokens/s and the ratio of repacked to plain; the machine's CPU flags and llama.cpp's system info are
in the JSON.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import SHARED_DATA, base_parser, print_table, setup_logging, write_result

logger = logging.getLogger("benchmarks.prompt_speed")

ENGLISH = ("A knowledge base keeps the documents a team relies on, so that anyone can find the rule, the "
           "figure or the procedure they need without asking a colleague. ") * 40


def _texts() -> dict[str, str]:
    laws = SHARED_DATA / "docs" / "zh" / "laws" / "社会法_劳动合同法(2012-12-28).md"
    return {"zh": laws.read_text(encoding="utf-8")[2000:6000], "en": ENGLISH}


def child(gguf: str, repack: bool, n_tokens: int, threads: int) -> dict[str, Any]:
    """Runs in its own process: load once, then time evaluating n_tokens of each text from an empty cache."""
    import llama_cpp
    from llama_cpp import Llama

    from server.llm.local.llama_server import disable_extra_buffers

    if not repack:
        disable_extra_buffers()
    llm = Llama(model_path=gguf, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    out: dict[str, Any] = {"system_info": llama_cpp.llama_print_system_info().decode(errors="replace")}
    for lang, text in _texts().items():
        tokens = llm.tokenize(text.encode())[:n_tokens]
        llm.reset()
        llm.eval(tokens[:32])  # warm-up
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        out[lang] = round(len(tokens) / (time.perf_counter() - started), 1)
    return out


def measure(model: str, n_tokens: int) -> list[dict[str, Any]]:
    from configs import load_settings
    from server.llm.local.assemble import ensure_weights
    from server.llm.local.builtin import get_builtin

    settings = load_settings()
    gguf = ensure_weights(get_builtin(model), settings.paths.model_dir)
    rows = []
    for repack in (False, True):
        code = ("import json, sys; from benchmarks.prompt_speed import child; "
                f"print(json.dumps(child({str(gguf)!r}, {repack}, {n_tokens}, {settings.llm.local.n_threads})))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            rows.append({"model": model, "repack": repack, "error": done.stderr[-500:]})
            continue
        rows.append({"model": model, "repack": repack, **json.loads(done.stdout.strip().splitlines()[-1])})
    return rows


def main(argv: list[str] | None = None) -> int:
    from server.llm.local.cpu import cpu_flags

    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-coder-1.5b,qwen2.5-coder-0.5b")
    parser.add_argument("--tokens", type=int, default=512)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    rows = []
    for model in args.models.split(","):
        rows += measure(model, args.tokens)
    table = []
    for row in rows:
        if "error" in row:
            table.append([row["model"], "on" if row["repack"] else "off", None, None, None, None])
            continue
        plain = next((r for r in rows if r["model"] == row["model"] and not r["repack"] and "zh" in r), None)
        ratio = round(row["zh"] / plain["zh"], 2) if plain else None
        table.append([row["model"], "on" if row["repack"] else "off", row["zh"], row["en"], ratio,
                      round(600 / row["zh"], 1)])
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma")))
    result = {"tokens": args.tokens, "cpu_flags": flags, "rows": rows}
    result["tables"] = print_table(
        f"Prompt reading speed, {args.tokens} tokens, tokens/s (CPU flags: {' '.join(flags)})",
        ["model", "repacking", "zh tok/s", "en tok/s", "zh ratio to off", "s for a 600-token zh prompt"], table)
    write_result("prompt_speed", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
