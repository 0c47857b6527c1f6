"""API load: 50, 100 and 200 concurrent clients against kbchat's API with a fake model.

    python -m benchmarks.load [--quick] [--levels 50,100,200] [--out PATH]

The API runs under uvicorn in its own process; the model is tests/fakes' FakeOpenAI (a real
OpenAI-compatible HTTP server) in a third process, answering every request with the same streamed
text; the load generator is an httpx.AsyncClient in this process. Everything binds 127.0.0.1.

Endpoints: `POST /chat/llm` (SSE, conversations stored as the web UI does), `POST /v1/chat/completions`
(stream), and `POST /kbs/{kb}/search` (hybrid search on a small knowledge base, query encoded with
multilingual-e5-small in the API process). At each level, that many clients send requests back to
back until the level's request count or time limit is reached. Time to first event is from sending
the request to the first SSE data line (for search: to the complete JSON response). Any non-2xx
status, error event, missing [DONE] or exception counts as an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import datasets
from benchmarks.common import (
    base_parser,
    latency_summary,
    print_table,
    require_shared_data,
    scratch_dir,
    setup_logging,
    write_result,
)
from benchmarks.procs import api_server, fake_model_server

logger = logging.getLogger("benchmarks.load")

LEVELS = (50, 100, 200)
REPLY = ("Retrieval-augmented generation answers questions from your own documents: the question is "
         "matched against indexed passages and the best ones are given to the model as context.")
MODEL = "fake"
KB = "loadtest"


async def one_request(client: httpx.AsyncClient, endpoint: str, i: int) -> dict[str, Any]:
    """Send one request; returns timings and whether it failed."""
    start = time.perf_counter()
    first = None
    try:
        if endpoint == "search":
            response = await client.post(f"/kbs/{KB}/search", json={"query": f"question {i} about retrieval",
                                                                   "top_k": 5, "mode": "hybrid"})
            first = time.perf_counter()
            ok = response.status_code == 200 and isinstance(response.json(), list)
            return {"ttfe": first - start, "total": first - start, "error": None if ok else
                    f"HTTP {response.status_code}: {response.text[:200]}"}
        if endpoint == "chat":
            url, payload = "/chat/llm", {"query": f"question {i}: what is retrieval?", "model": MODEL,
                                         "stream": True}
        elif endpoint == "kb_chat":
            url, payload = "/chat/kb", {"query": f"question {i}: who founded the university?", "model": MODEL,
                                        "kb_name": KB, "stream": True}
        else:
            url, payload = "/v1/chat/completions", {"model": MODEL, "stream": True, "messages": [
                {"role": "user", "content": f"question {i}: what is retrieval?"}]}
        done, error = False, None
        async with client.stream("POST", url, json=payload) as response:
            if response.status_code != 200:
                body = (await response.aread()).decode(errors="replace")
                return {"ttfe": None, "total": time.perf_counter() - start,
                        "error": f"HTTP {response.status_code}: {body[:200]}"}
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                if first is None:
                    first = time.perf_counter()
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                event = json.loads(data)
                if isinstance(event, dict) and (event.get("type") == "error" or "error" in event):
                    error = f"error event: {str(event)[:200]}"
        if not done and error is None:
            error = "stream ended without [DONE]"
        return {"ttfe": None if first is None else first - start, "total": time.perf_counter() - start,
                "error": error}
    except (httpx.HTTPError, ValueError) as exc:
        return {"ttfe": None, "total": time.perf_counter() - start, "error": f"{type(exc).__name__}: {exc}"}


async def run_level(base_url: str, endpoint: str, clients: int, total: int, time_limit: float) -> dict[str, Any]:
    """clients concurrent loops sending requests until total are sent or time_limit passes."""
    counter = iter(range(total))
    results: list[dict[str, Any]] = []
    deadline = time.perf_counter() + time_limit
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(120.0, connect=30.0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, trust_env=False) as client:
        async def worker() -> None:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                results.append(await one_request(client, endpoint, i))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    errors = [r["error"] for r in results if r["error"]]
    ttfe = [r["ttfe"] for r in results if r["ttfe"] is not None and not r["error"]]
    totals = [r["total"] for r in results if not r["error"]]
    first = latency_summary(ttfe)
    whole = latency_summary(totals)
    return {
        "endpoint": endpoint,
        "clients": clients,
        "requests": len(results),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(results) / wall, 2) if wall else None,
        "ttfe_p50_ms": first["p50_ms"],
        "ttfe_p99_ms": first["p99_ms"],
        "total_p50_ms": whole["p50_ms"],
        "total_p99_ms": whole["p99_ms"],
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
    }


def prepare_kb(base_url: str) -> int:
    """A small knowledge base of SQuAD passages for the search load."""
    rset = datasets.sample(datasets.load("squad-judge"), None, 5, 30)
    files = [("files", (f"p{i:03d}.txt", p.encode("utf-8"), "text/plain")) for i, p in enumerate(rset.passages)]
    with httpx.Client(base_url=base_url, timeout=600.0, trust_env=False) as client:
        client.post("/kbs", json={"name": KB}).raise_for_status()
        response = client.post(f"/kbs/{KB}/files", files=files)
        response.raise_for_status()
        # Warm the embedding model so its load is not in the first level's figures.
        client.post(f"/kbs/{KB}/search", json={"query": "warm up", "mode": "hybrid"}).raise_for_status()
        return sum(r["chunks"] for r in response.json()["results"])


def run(levels: list[int], quick: bool, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    per_client = 2 if quick else 5
    time_limit = 60.0 if quick else 180.0
    rows = []
    with fake_model_server(work, REPLY) as fake_url:
        models = {MODEL: {"kind": "openai_compatible", "model": "fake-model", "base_url": fake_url,
                          "timeout": 60}}
        env = {"KBCHAT_LLM__MODELS": json.dumps(models), "KBCHAT_LLM__DEFAULT_MODEL": MODEL,
               "KBCHAT_CHAT__LLM_TITLES": "false"}
        with api_server(work / "data", work, env) as api:
            chunks = prepare_kb(api.base_url)
            for endpoint in ("chat", "openai", "search"):
                # A few unmeasured requests first: lazy imports and first connections stay out of the figures.
                asyncio.run(run_level(api.base_url, endpoint, 2, 4, time_limit))
                for clients in levels:
                    logger.info("%s with %d clients", endpoint, clients)
                    row = asyncio.run(run_level(api.base_url, endpoint, clients, clients * per_client, time_limit))
                    rows.append(row)
                    logger.info("%s", row)
    result = {"quick": quick, "levels": levels, "requests_per_client": per_client, "time_limit_s": time_limit,
              "reply_chars": len(REPLY), "kb_chunks": chunks, "rows": rows,
              "seconds": round(time.perf_counter() - started, 1)}
    result["tables"] = print_table(
        "API load against a fake model (127.0.0.1, API in its own process)",
        ["endpoint", "clients", "requests", "req/s", "first event p50 ms", "p99 ms", "complete p50 ms", "p99 ms",
         "errors"],
        [[r["endpoint"], r["clients"], r["requests"], r["requests_per_s"], r["ttfe_p50_ms"], r["ttfe_p99_ms"],
          r["total_p50_ms"], r["total_p99_ms"], r["errors"]] for r in rows])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--levels", default=None, help="comma-separated client counts (default 50,100,200)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    levels = [int(x) for x in args.levels.split(",")] if args.levels else list(LEVELS)
    with scratch_dir("load", args.keep) as work:
        result = run(levels, args.quick, work)
    write_result("load", result, args.out)
    failed = sum(r["errors"] for r in result["rows"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
