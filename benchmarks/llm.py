"""Model serving: time to first token and tokens/s of each built-in model, direct and through kbchat.

    python -m benchmarks.llm [--quick] [--models smollm2-135m,qwen2.5-coder-1.5b] [--out PATH]

For each installed built-in model, in one run and with the same prompts, greedy decoding and the
same n_ctx / threads as `kbchat llm serve`:

* direct: `llama_cpp.Llama` in this process, streaming `create_chat_completion` (the floor);
* model server: `kbchat llm serve` (llama_cpp.server behind the queueing proxy), `/v1/chat/completions`;
* API /v1: kbchat's API (uvicorn child process) `/v1/chat/completions`, which goes to the model server;
* API chat: kbchat's `/chat/llm` SSE (adds kbchat's system prompt, so its prompt is longer).

TTFT is the time from sending the request to the first non-empty text delta; decode tokens/s is
(tokens - 1) / (time of last delta - time of first delta), tokens counted with the model's own
tokenizer on the streamed text. Then KB chat TTFT with about 500, 1,000 and 2,000 context tokens
(top_k chosen from the knowledge base's mean chunk length; the prompt size the model server
reports is shown next to it).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    base_parser,
    free_port,
    latency_summary,
    print_table,
    scratch_dir,
    setup_logging,
    write_result,
)
from benchmarks.procs import ServerProcess, api_server, sse_events

logger = logging.getLogger("benchmarks.llm")

PROMPTS = [
    "Write a short paragraph explaining what a knowledge base is and why people build one.",
    "Describe in a few sentences how a search engine ranks web pages.",
    "Explain briefly why the sky looks blue during the day and red at sunset.",
    "Give a short overview of how a bicycle gear system works.",
    "Summarise in a few sentences what a database index is for.",
]
SYSTEM = "You are a helpful assistant."
CONTEXT_TARGETS = (500, 1000, 2000)
# The `kbchat` command of this interpreter, without relying on PATH.
KBCHAT = [sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main())"]


def messages_for(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def summarise_runs(runs: list[dict[str, Any]], count_tokens) -> dict[str, Any]:
    """TTFT and decode speed over runs of (t0, [(t, text)...])."""
    ttfts, speeds, totals, tokens = [], [], [], []
    for run in runs:
        deltas = [(t, text) for t, text in run["deltas"] if text]
        if not deltas:
            continue
        n = count_tokens("".join(text for _, text in deltas))
        ttfts.append(deltas[0][0] - run["t0"])
        totals.append(deltas[-1][0] - run["t0"])
        tokens.append(n)
        span = deltas[-1][0] - deltas[0][0]
        if n > 1 and span > 0:
            speeds.append((n - 1) / span)
    return {
        "runs": len(runs),
        "answered": len(ttfts),
        "ttft_ms": latency_summary(ttfts),
        "decode_tok_s": round(statistics.fmean(speeds), 2) if speeds else None,
        "end_to_end_tok_s": round(sum(tokens) / sum(totals), 2) if totals and sum(totals) > 0 else None,
        "mean_tokens": round(statistics.fmean(tokens), 1) if tokens else None,
    }


def direct_runs(gguf: Path, settings: Any, prompts: list[str], max_tokens: int) -> tuple[list[dict], float, Any]:
    """Stream each prompt through llama_cpp.Llama in this process; returns runs, load seconds and the model."""
    from llama_cpp import Llama

    from server.llm.local.llama_server import disable_extra_buffers

    if not settings.llm.local.extra_buffers:
        disable_extra_buffers()  # the model server loads the same way
    local = settings.llm.local
    start = time.perf_counter()
    llm = Llama(model_path=str(gguf), n_ctx=local.n_ctx, n_threads=local.n_threads,
                n_threads_batch=local.n_threads, verbose=False)
    load_s = time.perf_counter() - start
    runs = []
    for prompt in prompts:
        t0 = time.perf_counter()
        deltas = []
        for chunk in llm.create_chat_completion(messages_for(prompt), max_tokens=max_tokens, temperature=0.0,
                                                stream=True):
            text = chunk["choices"][0]["delta"].get("content") or ""
            deltas.append((time.perf_counter(), text))
        runs.append({"t0": t0, "deltas": deltas})
    return runs, load_s, llm


async def openai_runs(base_url: str, model: str, prompts: list[str], max_tokens: int,
                      headers: dict[str, str] | None = None) -> list[dict]:
    runs = []
    async with httpx.AsyncClient(timeout=600.0, trust_env=False) as client:
        for prompt in prompts:
            payload = {"model": model, "messages": messages_for(prompt), "max_tokens": max_tokens,
                       "temperature": 0.0, "stream": True}
            t0 = time.perf_counter()
            deltas = []
            async for t, data in sse_events(client, f"{base_url}/chat/completions", payload, headers):
                if isinstance(data, dict) and data.get("choices"):
                    deltas.append((t, data["choices"][0].get("delta", {}).get("content") or ""))
            runs.append({"t0": t0, "deltas": deltas})
    return runs


async def chat_runs(api_url: str, payloads: list[dict[str, Any]]) -> list[dict]:
    """kbchat /chat/{mode} SSE events: delta texts plus the usage of the done event."""
    runs = []
    async with httpx.AsyncClient(timeout=600.0, trust_env=False) as client:
        for payload in payloads:
            t0 = time.perf_counter()
            deltas, usage, error = [], None, None
            async for t, data in sse_events(client, f"{api_url}/chat/{payload['mode']}", payload):
                if not isinstance(data, dict):
                    continue
                if data.get("type") == "delta":
                    deltas.append((t, data.get("text") or ""))
                elif data.get("type") == "done":
                    usage = data.get("usage")
                elif data.get("type") == "error":
                    error = f"{data.get('code')}: {data.get('message')}"
            runs.append({"t0": t0, "deltas": deltas, "usage": usage, "error": error})
    return runs


def kb_payloads(kb: str, model: str, avg_chunk_tokens: float, question: str, max_tokens: int) -> list[dict]:
    """One kb-mode request per context target, top_k sized to reach it."""
    return [
        {"query": question, "mode": "kb", "kb_name": kb, "model": model,
         "top_k": max(1, min(100, round(target / avg_chunk_tokens))), "score_threshold": 0.0, "temperature": 0.0,
         "max_tokens": max_tokens, "stream": True, "store": False, "history_turns": 0}
        for target in CONTEXT_TARGETS
    ]


def build_kb(api_url: str, kb: str, passages: list[str]) -> float:
    """Create a knowledge base through the API and upload passages; returns mean approximate tokens per chunk."""
    from server.llm.tokens import approx_token_count

    with httpx.Client(base_url=api_url, timeout=1800.0, trust_env=False) as client:
        client.post("/kbs", json={"name": kb}).raise_for_status()
        files = [("files", (f"p{i:04d}.txt", text.encode("utf-8"), "text/plain")) for i, text in enumerate(passages)]
        client.post(f"/kbs/{kb}/files", files=files, data={"chunk_size": "500", "chunk_overlap": "50"}).raise_for_status()
        listed = client.get(f"/kbs/{kb}/files").json()
        chunks = []
        for item in listed[:20]:
            chunks += [c["text"] for c in client.get(f"/kbs/{kb}/files/{item['file_name']}/chunks").json()]
    return statistics.fmean(approx_token_count(c) for c in chunks) if chunks else 120.0


def measure_model(name: str, quick: bool, work: Path) -> dict[str, Any]:
    from llama_cpp import Llama

    from benchmarks import datasets
    from configs import load_settings
    from server.llm.local.assemble import ensure_weights
    from server.llm.local.builtin import get_builtin

    settings = load_settings()
    gguf = ensure_weights(get_builtin(name), settings.paths.model_dir)
    n_prompts, max_tokens = (2, 48) if quick else (5, 128)
    prompts = PROMPTS[:n_prompts]
    out: dict[str, Any] = {"model": name, "gguf": str(gguf), "max_tokens": max_tokens, "prompts": n_prompts,
                           "n_ctx": settings.llm.local.n_ctx, "n_threads": settings.llm.local.n_threads}

    # 1. direct, in-process; the same Llama's tokenizer counts tokens for every path.
    runs, load_s, llm = direct_runs(gguf, settings, prompts, max_tokens)
    out["direct_load_s"] = round(load_s, 2)
    out["paths"] = {"direct llama_cpp": summarise_runs(runs, lambda s: len(llm.tokenize(s.encode(), add_bos=False)))}
    del llm
    counter = Llama(model_path=str(gguf), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(counter.tokenize(text.encode(), add_bos=False))

    port = free_port()
    env = {"KBCHAT_PATHS__MODEL_DIR": str(settings.paths.model_dir), "KBCHAT_LLM__LOCAL__PORT": str(port),
           "KBCHAT_LLM__DEFAULT_MODEL": name, "KBCHAT_PATHS__DATA_ROOT": str(work / "data"),
           "KBCHAT_LOG_LEVEL": "WARNING"}
    serve = ServerProcess("model-server", [*KBCHAT, "llm", "serve", "--model", name, "--port", str(port)],
                          f"http://127.0.0.1:{port}/v1/models", work, env, timeout=600)
    with serve:
        model_url = f"http://127.0.0.1:{port}/v1"
        out["paths"]["model server /v1"] = summarise_runs(asyncio.run(openai_runs(model_url, name, prompts, max_tokens)),
                                                          count)
        with api_server(work / "data", work, env) as api:
            api_url = api.base_url
            out["paths"]["API /v1/chat/completions"] = summarise_runs(
                asyncio.run(openai_runs(f"{api_url}/v1", name, prompts, max_tokens)), count)
            payloads = [{"query": p, "mode": "llm", "model": name, "temperature": 0.0, "max_tokens": max_tokens,
                         "stream": True, "store": False, "history_turns": 0} for p in prompts]
            out["paths"]["API /chat/llm"] = summarise_runs(asyncio.run(chat_runs(api_url, payloads)), count)

            squad = datasets.sample(datasets.load("squad-judge"), 1, 7, 60)
            avg_tokens = build_kb(api_url, "bench", squad.passages)
            payloads = kb_payloads("bench", name, avg_tokens, squad.questions[0].text, 16)
            kb_rows = []
            runs = asyncio.run(chat_runs(api_url, payloads))
            for target, payload, run in zip(CONTEXT_TARGETS, payloads, runs):
                deltas = [t for t, text in run["deltas"] if text]
                kb_rows.append({
                    "target_context_tokens": target,
                    "top_k": payload["top_k"],
                    "prompt_tokens": (run["usage"] or {}).get("prompt_tokens"),
                    "ttft_ms": round(1000 * (deltas[0] - run["t0"]), 1) if deltas else None,
                    "error": run["error"],
                })
            out["kb_ttft"] = kb_rows
    direct = out["paths"]["direct llama_cpp"]
    for path, stats in out["paths"].items():
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
            rows.append([res["model"], path, s["ttft_ms"]["p50_ms"], s["ttft_ratio_to_direct"], s["decode_tok_s"],
                         s["decode_ratio_to_direct"], s["end_to_end_tok_s"], s["mean_tokens"], s["answered"]])
    out.append(print_table("Model serving: TTFT and speed, direct vs through kbchat",
                           ["model", "path", "TTFT p50 ms", "TTFT x direct", "decode tok/s", "decode x direct",
                            "end-to-end tok/s", "tokens/answer", "answered"], rows))
    rows = [[res["model"], r["target_context_tokens"], r["top_k"], r["prompt_tokens"], r["ttft_ms"], r["error"]]
            for res in results for r in res.get("kb_ttft", [])]
    out.append(print_table("KB chat time to first token by context size",
                           ["model", "target context tokens", "top_k", "prompt tokens (server)", "TTFT ms", "error"],
                           rows))
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated built-in model names (default: all installed)")
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
            results.append(measure_model(name, args.quick, work / name))
    payload = {"quick": args.quick, "skipped": missing, "results": results,
               "seconds": round(time.perf_counter() - started, 1)}
    payload["tables"] = print_tables(results)
    write_result("llm", payload, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
