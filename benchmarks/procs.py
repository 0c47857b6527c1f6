"""Servers the benchmarks run in their own processes (API, fake model, model server) and SSE reading."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import REPO_ROOT, free_port

logger = logging.getLogger("benchmarks.procs")


class ServerProcess:
    """A child process serving HTTP on 127.0.0.1, started and ready on enter, stopped on exit."""

    def __init__(self, name: str, cmd: list[str], ready_url: str, log_dir: Path, env: dict[str, str] | None = None,
                 timeout: float = 120.0, unset: tuple[str, ...] = ()) -> None:
        self.name = name
        self.cmd = cmd
        self.ready_url = ready_url
        self.log_path = Path(log_dir) / f"{name}.log"
        self.env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__ through the process
        self.proc = subprocess.Popen(self.cmd, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            try:
                if httpx.get(self.ready_url, timeout=2.0).status_code < 500:
                    logger.info("%s ready (pid %d)", self.name, self.proc.pid)
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise RuntimeError(f"{self.name} not ready at {self.ready_url} after {self.timeout:.0f} s; log:\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __exit__(self, *exc: Any) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # The child leads its own session, so its workers go with it and nothing else is touched.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


# The kbchat command line, run by this interpreter from the repository.
KBCHAT = [sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main())"]


def model_server(model: str, port: int, log_dir: Path, env: dict[str, str] | None = None,
                 name: str = "model-server", timeout: float = 600.0) -> ServerProcess:
    """`kbchat llm serve --model MODEL` on ``port`` in a child process, ready once it lists its model."""
    return ServerProcess(name, [*KBCHAT, "llm", "serve", "--model", model, "--port", str(port)],
                         f"http://127.0.0.1:{port}/v1/models", log_dir, env, timeout)


def api_server(data_root: Path, log_dir: Path, env: dict[str, str] | None = None, timeout: float = 180.0,
               port: int | None = None) -> ServerProcess:
    """kbchat's API under uvicorn in a child process, configured through KBCHAT_ environment variables."""
    port = port or free_port()
    full_env = {
        "KBCHAT_PATHS__DATA_ROOT": str(data_root),
        "KBCHAT_SERVER__HOST": "127.0.0.1",
        "KBCHAT_SERVER__API_PORT": str(port),
        "KBCHAT_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "30"]
    server = ServerProcess("api", cmd, f"http://127.0.0.1:{port}/health", log_dir, full_env, timeout)
    server.base_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return server


FAKE_MODEL_SCRIPT = """
import sys, time
from tests.fakes.fake_openai import FakeOpenAI
fake = FakeOpenAI(models=sys.argv[2].split(","))
fake.default_reply = sys.argv[3]
fake.start()
with open(sys.argv[1], "w") as fh:
    fh.write(fake.base_url)
while True:
    time.sleep(3600)
"""


@contextlib.contextmanager
def fake_model_server(log_dir: Path, reply: str, models: str = "fake-model") -> Iterator[str]:
    """tests/fakes' FakeOpenAI in its own process (so it never shares the load generator's CPU time slice)."""
    url_file = Path(log_dir) / "fake-openai.url"
    url_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", FAKE_MODEL_SCRIPT, str(url_file), models, reply]
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(Path(log_dir) / "fake-openai.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists() or not url_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake model server did not start; see " + str(Path(log_dir) / "fake-openai.log"))
            time.sleep(0.1)
        yield url_file.read_text().strip()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


async def sse_events(client: httpx.AsyncClient, url: str, payload: dict[str, Any],
                     headers: dict[str, str] | None = None) -> AsyncIterator[tuple[float, Any]]:
    """POST and yield (perf_counter time, parsed data) for every SSE data line; "[DONE]" is yielded as a string."""
    async with client.stream("POST", url, json=payload, headers=headers) as response:
        if response.status_code >= 400:
            body = (await response.aread()).decode(errors="replace")
            raise RuntimeError(f"{url} answered {response.status_code}: {body[:300]}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            now = time.perf_counter()
            if data == "[DONE]":
                yield now, data
                return
            try:
                yield now, json.loads(data)
            except ValueError:
                yield now, data
