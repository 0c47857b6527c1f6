"""How fast the model process reads prompts on this machine, measured once when it starts.

Prompt reading decides most of a knowledge-base answer's wait on a CPU: the built-in 1.5B model reads
about 33 tokens/s on a 2-core AVX2 EPYC, 66 on a 2-core AMX Xeon virtual machine and 217 on an AVX-512
EPYC in process (benchmarks/prompt_speed.py), and the model server, whose threads sleep while they wait
(``llm.local.omp_wait_policy``), read 20-40 on that Xeon. CPU flags do not tell these apart, so the model
server times a prompt of known length right after loading and choices that cost model time (the HyDE
rewrite) follow the figure. The first request also pages the weights in, so a short one runs before the
timed one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx

logger = logging.getLogger(__name__)

# Ordinary prose of a little over 150 tokens for the usual tokenizers; the content does not matter, only
# that it is long enough for the timing to be dominated by reading it.
SAMPLE = (
    "A knowledge base keeps the documents a person wants to ask about: contracts, manuals, laws, notes and "
    "reports. When a question arrives, the passages closest to it are found first, by the meaning of their "
    "words and by the words themselves, and shown with the sentences that bear on the question. A language "
    "model then reads those passages and writes a short answer that cites them, so that every claim can be "
    "checked against its source. On an ordinary computer without a graphics card, reading the passages takes "
    "most of the time before the first word of the answer appears, which is why the passages are kept short "
    "and the instructions that never change are read once and remembered between questions."
)
WARM_UP = "Hello."


@dataclass(frozen=True)
class PromptSpeed:
    """Tokens of the timed prompt and how many of them the model read per second."""

    prompt_tokens: int
    tokens_per_s: float


def _complete(client: httpx.Client, base_url: str, alias: str, prompt: str) -> tuple[int, float]:
    started = time.perf_counter()
    response = client.post(
        f"{base_url}/v1/completions",
        json={"model": alias, "prompt": prompt, "max_tokens": 1, "temperature": 0.0},
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return int(response.json()["usage"]["prompt_tokens"]), elapsed


def measure_prompt_speed(base_url: str, alias: str, timeout: float) -> PromptSpeed | None:
    """Time one prompt of about 150 tokens after a short warm-up; None when the model process fails it."""
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            _complete(client, base_url, alias, WARM_UP)
            tokens, elapsed = _complete(client, base_url, alias, SAMPLE)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        logger.warning("could not time the model's prompt reading: %s", exc)
        return None
    if tokens <= 0 or elapsed <= 0:
        return None
    return PromptSpeed(prompt_tokens=tokens, tokens_per_s=tokens / elapsed)
