"""Clients shared by the model-serving benchmarks: prompts, streaming runs in process and over HTTP, their summary."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import latency_summary, percentile
from benchmarks.procs import sse_events

PROMPTS = [
    "Write a short paragraph explaining what a knowledge base is and why people build one.",
    "Describe in a few sentences how a search engine ranks web pages.",
    "Explain briefly why the sky looks blue during the day and red at sunset.",
    "Give a short overview of how a bicycle gear system works.",
    "Summarise in a few sentences what a database index is for.",
    "Explain in a short paragraph how bread rises when it is baked.",
    "Describe briefly what a compiler does with a program's source code.",
    "Give a few sentences on why leaves change colour in autumn.",
    "Explain shortly how a refrigerator keeps food cold.",
    "Describe in a few sentences what a spreadsheet is used for.",
]
SYSTEM = "You are a helpful assistant."
CONTEXT_TARGETS = (500, 1000, 2000)


def messages_for(prompt: str, tag: str) -> list[dict[str, str]]:
    # Each path gets its own tag so no path reuses another's cached prompt prefix in the model server.
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"({tag}) {prompt}"}]


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
        "decode_tok_s_p50": round(percentile(speeds, 50), 2) if speeds else None,
        "end_to_end_tok_s": round(sum(tokens) / sum(totals), 2) if totals and sum(totals) > 0 else None,
        "mean_tokens": round(statistics.fmean(tokens), 1) if tokens else None,
    }


def load_direct(gguf: Path, settings: Any, threads: int | None = None) -> tuple[Any, float]:
    """llama_cpp.Llama loaded as `kbchat llm serve` loads it; returns the model and the load seconds."""
    from llama_cpp import Llama

    from server.llm.local.llama_server import choose_extra_buffers

    choose_extra_buffers(settings.llm.local.extra_buffers)
    local = settings.llm.local
    threads = threads or local.n_threads
    start = time.perf_counter()
    llm = Llama(model_path=str(gguf), n_ctx=local.n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    return llm, time.perf_counter() - start


def direct_runs(llm: Any, prompts: list[str], max_tokens: int, tag: str) -> list[dict]:
    """Stream each prompt through the in-process model (the floor)."""
    runs = []
    for prompt in prompts:
        t0 = time.perf_counter()
        deltas = []
        for chunk in llm.create_chat_completion(messages_for(prompt, tag), max_tokens=max_tokens, temperature=0.0,
                                                stream=True):
            deltas.append((time.perf_counter(), chunk["choices"][0]["delta"].get("content") or ""))
        runs.append({"t0": t0, "deltas": deltas})
    return runs


async def openai_runs(base_url: str, model: str, prompts: list[str], max_tokens: int, tag: str) -> list[dict]:
    runs = []
    async with httpx.AsyncClient(timeout=900.0, trust_env=False) as client:
        for prompt in prompts:
            payload = {"model": model, "messages": messages_for(prompt, tag), "max_tokens": max_tokens,
                       "temperature": 0.0, "stream": True}
            t0 = time.perf_counter()
            deltas = []
            async for t, data in sse_events(client, f"{base_url}/chat/completions", payload):
                if isinstance(data, dict) and data.get("choices"):
                    deltas.append((t, data["choices"][0].get("delta", {}).get("content") or ""))
            runs.append({"t0": t0, "deltas": deltas})
    return runs


async def chat_runs(api_url: str, payloads: list[dict[str, Any]]) -> list[dict]:
    """kbchat /chat/{mode} SSE events: delta texts plus the usage of the done event."""
    runs = []
    async with httpx.AsyncClient(timeout=900.0, trust_env=False) as client:
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
