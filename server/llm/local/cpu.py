"""What the CPU offers llama.cpp, read from /proc/cpuinfo, and the choices that follow from it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

CPUINFO = Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=1)
def cpu_flags(path: Path = CPUINFO) -> frozenset[str]:
    """The feature flags of the first CPU (empty when the file cannot be read, e.g. off Linux)."""
    try:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def use_extra_buffers(setting: bool | Literal["auto"], flags: frozenset[str] | None = None) -> bool:
    """Whether llama.cpp may repack weights into its CPU-specific buffer types.

    ``auto`` repacks on AVX2 CPUs without AVX-512 or AMX, the CPUs llama.cpp's repacked Q4 kernels are
    written for. On an AVX-512 EPYC, repacking read prompts 32% slower (benchmarks/prompt_speed.py:
    149 against 217 tokens/s for the 1.5B model), and the AMX path crashes with SIGSEGV on some virtual
    machines, so both keep the weights as they are.
    """
    if setting != "auto":
        return bool(setting)
    flags = cpu_flags() if flags is None else flags
    if any(flag.startswith(("amx", "avx512")) for flag in flags):
        return False
    return "avx2" in flags
