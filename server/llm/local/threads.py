"""Thread count of the model process, chosen per step by what the other processes on the machine use.

llama.cpp's threads spin while they wait for each other. Alone on the cores that is the fastest way to
decode and to read a prompt; beside one more busy process it collapses (a spinning thread waits for a
partner the kernel has descheduled): on a 2-core VM SmolLM2 decoded 78 tokens/s alone and 0.4 beside a busy
process with two spinning threads, against 42 with one thread (README, "Bare llama_cpp.server decode speed").
``ThreadGovernor`` keeps all threads while the others are quiet and drops to one while they use a good
part of a core. The model process asks it before each evaluation step (``install``), so a change takes
effect between two tokens.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# /proc/stat's first line: user nice system idle iowait irq softirq steal ...; busy = all but idle, iowait, steal.
_BUSY_FIELDS = (0, 1, 2, 5, 6)


class CpuReading(Protocol):
    def __call__(self) -> tuple[int, int]:
        """(busy clock ticks of the whole machine, clock ticks of this process), both since boot."""
        ...


def proc_cpu_ticks(proc: Path = Path("/proc")) -> tuple[int, int]:
    """The machine's busy ticks from ``/proc/stat`` and this process's from ``/proc/self/stat``."""
    fields = (proc / "stat").read_text().split("\n", 1)[0].split()[1:]
    machine = sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
    own = (proc / "self" / "stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
    after = own[own.rindex(")") + 2 :].split()
    return machine, int(after[11]) + int(after[12])  # utime, stime (fields 14 and 15)


@dataclass
class ThreadGovernor:
    """All ``threads`` while other processes use less than ``low`` cores, one while they use ``high`` or more.

    A reading spans at least ``interval`` seconds; between readings the last choice holds. Between the two
    bounds the choice stays as it was, so it does not flap.
    """

    threads: int
    read: CpuReading = proc_cpu_ticks
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    interval: float = 0.3
    stale: float = 1.0
    high: float = 0.35
    low: float = 0.15
    ticks_per_second: int = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __post_init__(self) -> None:
        self.current = self.threads
        self._last: tuple[float, int, int] | None = None
        self.others: float | None = None

    def choose(self) -> int:
        """The thread count for the next step.

        A reading older than ``stale`` seconds (the model was idle) says nothing of now: a fresh one is
        taken over ``interval`` / 3 seconds first, which the first step of an answer waits for.
        """
        if self.threads <= 1:
            return self.threads
        now = self.clock()
        if self._last is not None and now - self._last[0] < self.interval:
            return self.current
        try:
            if self._last is None or now - self._last[0] > self.stale:
                self._last = (now, *self.read())
                self.sleep(self.interval / 3)
                now = self.clock()
            machine, own = self.read()
        except (OSError, ValueError, IndexError):
            return self.current
        then, machine_then, own_then = self._last
        seconds = max(now - then, 1e-6)
        self.others = max(0.0, (machine - machine_then) - (own - own_then)) / self.ticks_per_second / seconds
        if self.current > 1 and self.others >= self.high:
            self.current = 1
            logger.info("other processes use %.2f cores: the model continues on 1 thread", self.others)
        elif self.current == 1 and self.others <= self.low:
            self.current = self.threads
            logger.info("the cores are free again: the model continues on %d threads", self.threads)
        self._last = (now, machine, own)
        return self.current


def install(threads: int) -> ThreadGovernor:
    """Make every ``llama_cpp.Llama`` of this process ask a governor for its thread count before each step."""
    from llama_cpp import Llama

    governor = ThreadGovernor(threads)
    original = Llama.eval

    def governed_eval(self: Any, tokens: Any) -> None:
        chosen = governor.choose()
        if getattr(self, "_kbchat_threads", threads) != chosen:
            self._ctx.set_n_threads(chosen, chosen)
            self._kbchat_threads = chosen
        original(self, tokens)

    Llama.eval = governed_eval  # type: ignore[method-assign]
    return governor
