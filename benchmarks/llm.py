"""Model serving: time to first token and tokens/s of each built-in model, direct and through kbchat.

    python -m benchmarks.llm [--quick] [--models smollm2-135m,qwen2.5-coder-1.5b] [--out PATH]
                             [--wait-only [--wait-settings "1 thread;2 threads, OMP"]] [--serving-only]
                             [--no-openmp-llama DIR]

For each installed built-in model, in one run and with the same prompts, greedy decoding and the
same n_ctx / threads as `kbchat llm serve`:

* direct: `llama_cpp.Llama` in this process, streaming `create_chat_completion` (the floor);
* model server: `kbchat llm serve` (llama_cpp.server behind the queueing proxy), `/v1/chat/completions`;
* API /v1: kbchat's API (uvicorn child process) `/v1/chat/completions`, which goes to the model server;
* API chat: kbchat's `/chat/llm` SSE (adds kbchat's system prompt, so its prompt is longer).

Each path answers the same ten prompts (two with --quick); the in-process model stays loaded beside the
servers, and each prompt goes down the four paths in turn, in an order rotated per prompt. TTFT (p50 and
p90) is the time from sending the request to the first non-empty text delta; decode tokens/s (mean and p50 over the answers) is
(tokens - 1) / (time of last delta - time of first delta), tokens counted with the model's own
tokenizer on the streamed text. Each path tags its prompts differently and starts with an
unmeasured warm-up request (the API paths one each), so no path profits from another's cached prompt, from
loading, or pays for the API's first-request set-up.
Then KB chat TTFT with about 500, 1,000 and 2,000 context tokens (top_k chosen from the knowledge
base's mean chunk length, one knowledge base per size so no prompt prefix is cached; the prompt size
the model server reports is shown next to it), and the in-process prompt processing speed with 1
and 2 threads, which is what TTFT mostly consists of.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import REPO_ROOT, base_parser, free_port, print_table, scratch_dir, setup_logging, write_result
from benchmarks.llm_common import (
    CONTEXT_TARGETS,
    PROMPTS,
    chat_runs,
    direct_runs,
    load_direct,
    openai_runs,
    summarise_runs,
)
from benchmarks.procs import ServerProcess, api_server, model_server

logger = logging.getLogger("benchmarks.llm")


def prompt_eval_speed(gguf: Path, settings: Any, n_tokens: int) -> dict[str, float]:
    """Prompt processing tokens/s of the in-process model with 1 and with 2 threads (the time-to-first-token driver)."""
    text = " ".join(PROMPTS * 40)
    speeds = {}
    for threads in (1, 2):
        llm, _ = load_direct(gguf, settings, threads)
        tokens = llm.tokenize(text.encode())[:n_tokens]
        start = time.perf_counter()
        llm.eval(tokens)
        speeds[f"{threads} thread(s)"] = round(len(tokens) / (time.perf_counter() - start), 1)
        del llm
    return speeds


# label, environment, threads, launcher flags
WaitVariant = tuple[str, dict[str, str], int, tuple[str, ...]]
WAIT_VARIANTS: tuple[WaitVariant, ...] = (
    ("2 threads, OpenMP spin (llama.cpp default)", {}, 2, ()),
    ("2 threads, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, 2, ()),
    ("2 threads, GOMP_SPINCOUNT=20000 (spin briefly, then sleep)", {"GOMP_SPINCOUNT": "20000"}, 2, ()),
    ("1 thread", {}, 1, ()),
    ("2 threads, 1 while other processes are busy (adaptive_threads)", {}, 2, ("--adaptive-threads",)),
    ("adaptive_threads with OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, 2, ("--adaptive-threads",)),
)
# One busy process, which also stops when the benchmark is killed before it can stop it.
BUSY_LOOP = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
# A KB-sized prompt (about 450 tokens) for the prompt reading speed of each setting.
LONG_PROMPT = " ".join(PROMPTS[:5] * 6)


def wait_variants(no_openmp: Path | None, only: tuple[str, ...] = ()) -> list[WaitVariant]:
    """The thread settings studied; with ``no_openmp``, a folder holding a llama_cpp package built with
    ``CMAKE_ARGS=-DGGML_OPENMP=OFF`` (``pip install --no-deps --target DIR <wheel>``), that build too.
    ``only``: the settings whose labels begin with one of these (all when empty)."""
    variants = list(WAIT_VARIANTS)
    if no_openmp is not None:
        path = os.pathsep.join([str(no_openmp), str(REPO_ROOT)])
        variants.append(("2 threads, llama.cpp built without OpenMP", {"PYTHONPATH": path}, 2, ()))
    return [v for v in variants if not only or v[0].startswith(only)]


def wait_policy_study(gguf: Path, name: str, settings: Any, work: Path, count, max_tokens: int,
                      no_openmp: Path | None = None, only: tuple[str, ...] = ()) -> list[dict]:
    """Decode and prompt speed of bare llama_cpp.server per thread setting, as the machine is and beside one
    more busy process.

    OpenMP threads that spin while waiting are fastest alone but collapse when another process wants a
    core (the API encoding a query, an ingestion); threads that sleep read prompts more slowly, since
    every step of a prompt's matrix work wakes them. This shows the trade-off behind the serving default.
    """
    rows = []
    for busy in (False, True):
        hog = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
        try:
            for label, env, threads, flags in wait_variants(no_openmp, only):
                port = free_port()
                cmd = [sys.executable, "-m", "server.llm.local.llama_server", *flags, "--", "--model", str(gguf),
                       "--model_alias", name, "--host", "127.0.0.1", "--port", str(port),
                       "--n_ctx", str(settings.llm.local.n_ctx), "--n_threads", str(threads),
                       "--n_threads_batch", str(threads), "--interrupt_requests", "False", "--verbose", "False"]
                unset = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
                server = ServerProcess("llama-raw", cmd, f"http://127.0.0.1:{port}/v1/models", work,
                                       env, timeout=600, unset=tuple(u for u in unset if u not in env))
                with server:
                    url = f"http://127.0.0.1:{port}/v1"
                    asyncio.run(openai_runs(url, name, PROMPTS[-1:], 4, "warm-up"))
                    stats = summarise_runs(asyncio.run(openai_runs(url, name, PROMPTS[:2], max_tokens, label)), count)
                    # Each run's own tag leads the prompt, so nothing of it is cached.
                    long_runs = [asyncio.run(openai_runs(url, name, [LONG_PROMPT], 1, f"{label} long {i}"))[0]
                                 for i in range(3)]
                ttft = summarise_runs(long_runs, count)["ttft_ms"]["p50_ms"]
                rows.append({"model": name, "machine": "+1 busy process" if busy else "no added load", "setting": label,
                             "ttft_p50_ms": stats["ttft_ms"]["p50_ms"], "decode_tok_s": stats["decode_tok_s"],
                             "long_prompt_tokens": count(LONG_PROMPT),
                             "prompt_tok_s": round(count(LONG_PROMPT) / (ttft / 1000), 1) if ttft else None})
                logger.info("%s", rows[-1])
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    return rows


def llm_payloads(prompts: list[str], model: str, max_tokens: int, tag: str) -> list[dict[str, Any]]:
    return [{"query": f"({tag}) {p}", "mode": "llm", "model": model, "temperature": 0.0, "max_tokens": max_tokens,
             "stream": True, "store": False, "history_turns": 0} for p in prompts]


def kb_ttft(api_url: str, model: str, passages: list[str], question: str, targets: tuple[int, ...]) -> list[dict]:
    """KB chat TTFT per context target; each target has its own knowledge base (same passages, another
    name), so the prompt differs from its first line and the model server cannot reuse a cached prefix."""
    rows = []
    avg_tokens = 0.0
    for target in targets:
        kb = f"ctx{target}"
        avg_tokens = build_kb(api_url, kb, passages)
        payload = {"query": question, "mode": "kb", "kb_name": kb, "model": model,
                   "top_k": max(1, min(100, round(target / avg_tokens))), "score_threshold": 0.0,
                   "temperature": 0.0, "max_tokens": 8, "stream": True, "store": False, "history_turns": 0}
        run = asyncio.run(chat_runs(api_url, [payload]))[0]
        deltas = [t for t, text in run["deltas"] if text]
        rows.append({"target_context_tokens": target, "top_k": payload["top_k"],
                     "prompt_tokens": (run["usage"] or {}).get("prompt_tokens"),
                     "ttft_ms": round(1000 * (deltas[0] - run["t0"]), 1) if deltas else None, "error": run["error"]})
        logger.info("%s kb chat at %d context tokens: %s", model, target, rows[-1])
    return rows


def build_kb(api_url: str, kb: str, passages: list[str]) -> float:
    """Create a knowledge base through the API and upload passages; returns mean approximate tokens per chunk."""
    from server.llm.tokens import approx_token_count

    with httpx.Client(base_url=api_url, timeout=1800.0, trust_env=False) as client:
        client.post("/kbs", json={"name": kb}).raise_for_status()
        files = [("files", (f"p{i:04d}.txt", text.encode("utf-8"), "text/plain")) for i, text in enumerate(passages)]
        response = client.post(f"/kbs/{kb}/files", files=files, data={"chunk_size": "500", "chunk_overlap": "50"})
        response.raise_for_status()
        listed = client.get(f"/kbs/{kb}/files").json()
        chunks = []
        for item in listed[:20]:
            chunks += [c["text"] for c in client.get(f"/kbs/{kb}/files/{item['file_name']}/chunks").json()]
    return statistics.fmean(approx_token_count(c) for c in chunks) if chunks else 120.0


def _model(name: str) -> tuple[Any, Path]:
    from configs import load_settings
    from server.llm.local.assemble import ensure_weights
    from server.llm.local.builtin import get_builtin

    settings = load_settings()
    return settings, ensure_weights(get_builtin(name), settings.paths.model_dir)


def _token_counter(gguf: Path) -> Callable[[str], int]:
    """The model's own tokenizer (vocabulary only), counting the tokens of a text."""
    from llama_cpp import Llama

    counter = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    return lambda text: len(counter.tokenize(text.encode(), add_bos=False))


def measure_wait_policies(name: str, quick: bool, work: Path, no_openmp: Path | None,
                          only: tuple[str, ...] = ()) -> dict[str, Any]:
    """The thread-setting study alone (``--wait-only``)."""
    settings, gguf = _model(name)
    rows = wait_policy_study(gguf, name, settings, work, _token_counter(gguf), 32 if quick else 64, no_openmp,
                             only)
    return {"model": name, "gguf": str(gguf), "paths": {}, "prompt_eval_tok_s": {}, "wait_policy": rows}


def measure_model(name: str, quick: bool, work: Path, no_openmp: Path | None = None,
                  wait_study: bool = True) -> dict[str, Any]:
    from benchmarks import datasets

    settings, gguf = _model(name)
    # At least ten answers per path in a full run, so p90 means something.
    n_prompts, max_tokens = (2, 48) if quick else (len(PROMPTS), 128)
    prompts = PROMPTS[:n_prompts]
    out: dict[str, Any] = {"model": name, "gguf": str(gguf), "max_tokens": max_tokens, "prompts": n_prompts,
                           "n_ctx": settings.llm.local.n_ctx, "n_threads": settings.llm.local.n_threads}
    out["prompt_eval_tok_s"] = prompt_eval_speed(gguf, settings, 256 if quick else 512)

    # Direct, in process, loaded beside the servers; the model's own tokenizer (vocabulary only) counts the
    # tokens of every path.
    llm, load_s = load_direct(gguf, settings)
    out["direct_load_s"] = round(load_s, 2)
    direct_runs(llm, PROMPTS[-1:], 4, "warm-up")
    count = _token_counter(gguf)
    port = free_port()
    env = {"KBCHAT_PATHS__MODEL_DIR": str(settings.paths.model_dir), "KBCHAT_LLM__LOCAL__PORT": str(port),
           "KBCHAT_LLM__DEFAULT_MODEL": name, "KBCHAT_PATHS__DATA_ROOT": str(work / "data"),
           "KBCHAT_CHAT__LLM_TITLES": "false"}
    serve = model_server(name, port, work, env, timeout=900)
    with serve, api_server(work / "data", work, env) as api:
        model_url = f"http://127.0.0.1:{port}/v1"
        asyncio.run(openai_runs(model_url, name, PROMPTS[-1:], 4, "warm-up"))
        # The API's first requests set up its clients and connections: warm both paths up, unmeasured.
        asyncio.run(openai_runs(f"{api.base_url}/v1", name, PROMPTS[-1:], 4, "api-v1 warm-up"))
        asyncio.run(chat_runs(api.base_url, llm_payloads(PROMPTS[-1:], name, 4, "api-chat warm-up")))
        paths: dict[str, Callable[[str], list[dict]]] = {
            "direct llama_cpp (in process)": lambda p: direct_runs(llm, [p], max_tokens, "direct"),
            "model server /v1": lambda p: asyncio.run(openai_runs(model_url, name, [p], max_tokens, "server")),
            "API /v1/chat/completions": lambda p: asyncio.run(
                openai_runs(f"{api.base_url}/v1", name, [p], max_tokens, "api-v1")),
            "API /chat/llm": lambda p: asyncio.run(
                chat_runs(api.base_url, llm_payloads([p], name, max_tokens, "api-chat"))),
        }
        names = list(paths)
        runs: dict[str, list[dict]] = {path: [] for path in names}
        for i, prompt in enumerate(prompts):
            # Each prompt goes down every path, in an order rotated per prompt, so a drift in the machine's
            # speed during the run weighs on all paths alike.
            shift = i % len(names)
            for path in names[shift:] + names[:shift]:
                runs[path] += paths[path](prompt)
        out["paths"] = {path: summarise_runs(path_runs, count) for path, path_runs in runs.items()}
        squad = datasets.sample(datasets.load("squad-judge"), 1, 7, 60)
        out["kb_ttft"] = kb_ttft(api.base_url, name, squad.passages, squad.questions[0].text, CONTEXT_TARGETS)
    del llm
    if (not quick or name == "smollm2-135m") and wait_study:
        out["wait_policy"] = wait_policy_study(gguf, name, settings, work, count, 32 if quick else 64, no_openmp)
    direct = out["paths"]["direct llama_cpp (in process)"]
    for stats in out["paths"].values():
        stats["ttft_ratio_to_direct"] = _ratio(stats["ttft_ms"]["p50_ms"], direct["ttft_ms"]["p50_ms"])
        stats["decode_ratio_to_direct"] = _ratio(stats["decode_tok_s"], direct["decode_tok_s"])
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or a != a or b != b:
        return None
    return round(a / b, 3)


def installed_models(requested: list[str] | None) -> tuple[list[str], list[str]]:
    from server.llm.local.builtin import BUILTIN_MODELS, is_installed

    names = requested or list(BUILTIN_MODELS)
    have = [n for n in names if n in BUILTIN_MODELS and is_installed(BUILTIN_MODELS[n])]
    return have, [n for n in names if n not in have]


def print_tables(results: list[dict[str, Any]]) -> str:
    out = []
    rows = []
    for res in results:
        for path, s in res["paths"].items():
            rows.append([res["model"], path, s["ttft_ms"]["p50_ms"], s["ttft_ms"]["p90_ms"], s["ttft_ratio_to_direct"],
                         s["decode_tok_s"], s.get("decode_tok_s_p50"), s["decode_ratio_to_direct"], s["end_to_end_tok_s"],
                         s["mean_tokens"], s["answered"]])
    out.append(print_table("Model serving: TTFT and speed, direct vs through kbchat",
                           ["model", "path", "TTFT p50 ms", "TTFT p90 ms", "TTFT x direct", "decode tok/s (mean)",
                            "decode tok/s p50", "decode x direct", "end-to-end tok/s", "tokens/answer", "answered"],
                           rows))
    rows = [[res["model"], r["target_context_tokens"], r["top_k"], r["prompt_tokens"], r["ttft_ms"], r["error"]]
            for res in results for r in res.get("kb_ttft", [])]
    out.append(print_table("KB chat time to first token by context size",
                           ["model", "target context tokens", "top_k", "prompt tokens (server)", "TTFT ms", "error"],
                           rows))
    rows = [[r["model"], r["machine"], r["setting"], r["ttft_p50_ms"], r["decode_tok_s"], r.get("prompt_tok_s")]
            for res in results for r in res.get("wait_policy", [])]
    out.append(print_table("Bare llama_cpp.server speed by thread setting",
                           ["model", "machine", "setting", "TTFT p50 ms", "decode tok/s",
                            "prompt tok/s (~450 tokens)"], rows))
    rows = [[res["model"], *res["prompt_eval_tok_s"].values()] for res in results if res["prompt_eval_tok_s"]]
    out.append(print_table("Prompt processing speed in process (tokens/s)", ["model", "1 thread", "2 threads"], rows))
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated built-in model names (default: all installed)")
    parser.add_argument("--wait-only", action="store_true", help="only the thread-setting study")
    parser.add_argument("--serving-only", action="store_true", help="skip the thread-setting study")
    parser.add_argument("--no-openmp-llama", type=Path, default=None,
                        help="folder with a llama_cpp package built without OpenMP, studied as one more setting")
    parser.add_argument("--wait-settings", default="",
                        help="';'-separated beginnings of the thread settings' labels to study (default: all)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    names, missing = installed_models(args.models.split(",") if args.models else None)
    for name in missing:
        logger.warning("skipping %s: weights not installed", name)
    started = time.perf_counter()
    results = []
    with scratch_dir("llm", args.keep) as work:
        for name in names:
            logger.info("measuring %s", name)
            if args.wait_only:
                only = tuple(x.strip() for x in args.wait_settings.split(";") if x.strip())
                results.append(measure_wait_policies(name, args.quick, work / name, args.no_openmp_llama, only))
            else:
                results.append(measure_model(name, args.quick, work / name, args.no_openmp_llama,
                                             wait_study=not args.serving_only))
    payload = {"quick": args.quick, "skipped": missing, "results": results,
               "seconds": round(time.perf_counter() - started, 1)}
    payload["tables"] = print_tables(results)
    write_result("llm", payload, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
