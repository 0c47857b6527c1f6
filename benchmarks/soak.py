"""Soak: many concurrent chats for a long time against the API with a fake model; memory and errors.

    python -m benchmarks.soak [--minutes 30] [--clients 20] [--quick]

The API runs under uvicorn in its own process and the model is tests/fakes' FakeOpenAI in another,
both on 127.0.0.1 (see benchmarks/load.py). ``clients`` loops send questions back to back for
``minutes``: KB chat, plain chat and the OpenAI-compatible route in turn, every tenth a KB search.
Every conversation is stored, as in real use. The API process's resident memory is sampled every
10 s. Growth is the median RSS of the last tenth of the run over that of the first tenth after a
one-minute warm-up; the run passes with zero errors and growth under 10 %.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.common import base_parser, print_table, require_shared_data, scratch_dir, setup_logging, write_result
from benchmarks.load import MODEL, REPLY, one_request, prepare_kb
from benchmarks.procs import api_server, fake_model_server

logger = logging.getLogger("benchmarks.soak")

ENDPOINTS = ("kb_chat", "chat", "openai")
SAMPLE_EVERY_S = 10.0
WARM_UP_S = 60.0
MAX_GROWTH = 0.10


async def _soak(base_url: str, pid: int, clients: int, seconds: float) -> dict[str, Any]:
    process = psutil.Process(pid)
    samples: list[tuple[float, int]] = []
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    deadline = started + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(120.0, connect=30.0),
                                 trust_env=False) as client:
        async def worker(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                endpoint = "search" if i % 10 == 9 else ENDPOINTS[i % len(ENDPOINTS)]
                result = await one_request(client, endpoint, i)
                results.append({**result, "endpoint": endpoint})
                i += clients

        async def sampler() -> None:
            while time.perf_counter() < deadline:
                samples.append((time.perf_counter() - started, process.memory_info().rss))
                await asyncio.sleep(SAMPLE_EVERY_S)

        await asyncio.gather(sampler(), *(worker(n) for n in range(clients)))
    return {"results": results, "samples": samples, "wall_s": time.perf_counter() - started}


def _growth(samples: list[tuple[float, int]], seconds: float) -> tuple[float, float, float]:
    """(first MiB, last MiB, growth) from the medians of the first and last tenth after the warm-up."""
    measured = [(t, rss) for t, rss in samples if t >= min(WARM_UP_S, seconds / 4)]
    tenth = max(1, len(measured) // 10)
    first = statistics.median(rss for _, rss in measured[:tenth]) / 2**20
    last = statistics.median(rss for _, rss in measured[-tenth:]) / 2**20
    return first, last, (last - first) / first


def run(minutes: float, clients: int, work: Path) -> dict[str, Any]:
    seconds = minutes * 60
    with fake_model_server(work, REPLY) as fake_url:
        models = {MODEL: {"kind": "openai_compatible", "model": "fake-model", "base_url": fake_url, "timeout": 60}}
        env = {"KBCHAT_LLM__MODELS": json.dumps(models), "KBCHAT_LLM__DEFAULT_MODEL": MODEL,
               "KBCHAT_CHAT__LLM_TITLES": "false"}
        with api_server(work / "data", work, env) as api:
            chunks = prepare_kb(api.base_url)
            logger.info("soaking for %.0f min with %d clients", minutes, clients)
            out = asyncio.run(_soak(api.base_url, api.proc.pid, clients, seconds))
    results, samples = out["results"], out["samples"]
    errors = [r["error"] for r in results if r["error"]]
    first, last, growth = _growth(samples, seconds)
    by_endpoint = {e: sum(1 for r in results if r["endpoint"] == e) for e in (*ENDPOINTS, "search")}
    passed = not errors and growth < MAX_GROWTH
    result = {
        "minutes": minutes, "clients": clients, "kb_chunks": chunks, "requests": len(results),
        "requests_by_endpoint": by_endpoint, "requests_per_s": round(len(results) / out["wall_s"], 2),
        "errors": len(errors), "error_samples": sorted(set(errors))[:5],
        "rss_first_mib": round(first, 1), "rss_last_mib": round(last, 1), "rss_growth": round(growth, 4),
        "rss_samples_mib": [[round(t), round(rss / 2**20, 1)] for t, rss in samples], "passed": passed,
    }
    result["tables"] = print_table(
        "Soak against a fake model (127.0.0.1, API in its own process)",
        ["minutes", "clients", "requests", "req/s", "errors", "RSS first MiB", "RSS last MiB", "growth", "passed"],
        [[minutes, clients, len(results), result["requests_per_s"], len(errors), result["rss_first_mib"],
          result["rss_last_mib"], f"{growth:+.1%}", passed]])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to soak (default 30)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent chats (default 20)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    minutes = min(args.minutes, 2.0) if args.quick else args.minutes
    with scratch_dir("soak", args.keep) as work:
        result = run(minutes, args.clients, work)
    write_result("soak", result, args.out)
    return 0 if result["passed"] else 1
if __name__ == "__main__":
    raise SystemExit(main())
