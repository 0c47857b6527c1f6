"""How fast the model process really reads prompts, timed inside it on every prompt it reads.

The start-up timing (speed.py) is one prompt, read while the API and the encoder may still be loading
beside it: on a 2-core VM it read 17-26 tokens/s at four starts where knowledge-base prompts later ran
at 35-45. Choices that depend on the figure (the evidence cut by ``chat.first_token_seconds``, the HyDE
rewrite) follow the prompts the model has actually read since. llama-cpp-python evaluates the part of a
prompt that is not already cached in one ``Llama.eval`` call, so that call's duration over its token
count is the reading speed, with no HTTP, queueing or cached prefix in it. Decoding steps (one token, or
a few drafted ones) are too short to say anything and are not counted.

The model process (``install``) writes the figure to a small JSON file after each prompt; the model
server's proxy (proxy.py) reads it for ``GET /speed``.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The model process's environment names the file it writes (serve.py sets it).
TIMING_FILE_ENV = "KBCHAT_PROMPT_TIMING_FILE"
# Shorter evaluations are decoding steps or drafts: their fixed cost would dominate the figure.
MIN_TOKENS = 32
# The figure is the median of the last few prompts, so one prompt read beside a busy process moves it little.
WINDOW = 5


@dataclass
class PromptTimings:
    """The reading speed of the last ``WINDOW`` prompts of at least ``MIN_TOKENS`` tokens."""

    path: Path
    speeds: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def record(self, tokens: int, seconds: float) -> None:
        if tokens < MIN_TOKENS or seconds <= 0:
            return
        self.speeds.append(tokens / seconds)
        self.write()

    @property
    def tokens_per_s(self) -> float | None:
        return statistics.median(self.speeds) if self.speeds else None

    def write(self) -> None:
        body = {"tokens_per_s": self.tokens_per_s, "prompts": len(self.speeds), "last": self.speeds[-1]}
        partial = self.path.with_name(self.path.name + ".tmp")
        try:
            partial.write_text(json.dumps(body), encoding="utf-8")
            os.replace(partial, self.path)
        except OSError as exc:
            logger.warning("cannot write the prompt timing to %s: %s", self.path, exc)


def read_prompt_speed(path: Path | None) -> float | None:
    """The reading speed the model process last wrote to ``path``; None when it wrote none (yet)."""
    if path is None:
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("tokens_per_s")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def install(path: Path, clock: Callable[[], float] = time.perf_counter) -> PromptTimings:
    """Time every prompt each ``llama_cpp.Llama`` of this process reads, writing the figure to ``path``."""
    from llama_cpp import Llama

    timings = PromptTimings(path)
    original = Llama.eval

    def timed_eval(self: Any, tokens: Any) -> None:
        if len(tokens) < MIN_TOKENS:
            original(self, tokens)
            return
        started = clock()
        original(self, tokens)
        timings.record(len(tokens), clock() - started)

    Llama.eval = timed_eval  # type: ignore[method-assign]
    return timings
