"""Runs a GGUF model behind an OpenAI-compatible API: llama_cpp.server plus the queueing proxy.

The model process (``python -m server.llm.local.llama_server``, i.e. llama_cpp.server) listens
on a private loopback port; the proxy listens on ``settings.llm.local.host:port`` and lets
one generation through at a time. Start-up waits until the model answers ``GET /v1/models``
and fails loudly, with the tail of the model process's output, if it exits or times out; then it
times one prompt (speed.py). The model process times every prompt it reads after that
(prompt_timing.py), and the proxy reports the latest figure at ``GET /speed``.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import uvicorn

from configs import Settings
from configs.settings import PROJECT_ROOT
from server.auth import check_access
from server.errors import ServiceUnavailable
from server.llm.local.assemble import Progress, ensure_weights
from server.llm.local.builtin import BuiltinModel
from server.llm.local.cpu import use_extra_buffers
from server.llm.local.llama_server import KBCHAT_LOG_PREFIX, PARENT_PID_ENV
from server.llm.local.prompt_timing import TIMING_FILE_ENV
from server.llm.local.proxy import QueueProxy, serve_in_thread
from server.llm.local.speed import measure_prompt_speed

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 30
# gRPC's C core logs from its fork handlers when a process that has served gRPC starts the model process
# ("E1204 22:40:01.123 12 ev_epoll1_linux.cc:373] ..."): the parent's noise, not the model's output, so it is
# kept out of the tail that explains a failed start.
_GRPC_CORE_LOG = re.compile(r"^[EWID]\d{4} [\d:.]+\s+\d+ \S+\.(?:cc|c|h):\d+\]")


class ModelServerError(ServiceUnavailable):
    """The local model server could not start or stopped unexpectedly."""

    code = "llm_server_failed"


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def connect_host(host: str) -> str:
    """The address clients use to reach a server bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


class ModelServer:
    """One GGUF model served on settings.llm.local.host:port; start() blocks until it answers."""

    def __init__(self, settings: Settings, gguf: Path, alias: str, chat_format: str | None = None) -> None:
        self.settings = settings
        self.local = settings.llm.local
        self.gguf = Path(gguf)
        self.alias = alias
        self.chat_format = chat_format
        self.process: subprocess.Popen | None = None
        self.backend_port = 0
        self.proxy = QueueProxy(
            "", self.local.max_queue, access_check=lambda auth, host: check_access(settings, auth, host)
        )
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._reader: threading.Thread | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._proxy_thread: threading.Thread | None = None
        self.load_seconds = 0.0
        self._run_dir: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def for_builtin(cls, settings: Settings, model: BuiltinModel, progress: Progress | None = None) -> "ModelServer":
        path = ensure_weights(model, settings.paths.model_dir, progress)
        return cls(settings, path, model.name, model.chat_format)

    @classmethod
    def for_gguf(cls, settings: Settings, path: Path, alias: str) -> "ModelServer":
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise ModelServerError(f"GGUF file not found: {path}")
        return cls(settings, path, alias)

    @property
    def base_url(self) -> str:
        return f"http://{connect_host(self.local.host)}:{self.local.port}/v1"

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    def stderr_tail(self) -> str:
        return "\n".join(self._tail)

    def command(self) -> list[str]:
        args = [
            "--model", str(self.gguf),
            "--model_alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(self.backend_port),
            "--n_ctx", str(self.local.n_ctx),
            "--n_threads", str(self.local.n_threads),
            "--n_threads_batch", str(self.local.n_threads),
            # Without this a new request cuts off the answer being streamed; the proxy queues instead.
            "--interrupt_requests", "False",
            # llama_cpp.server computes and copies the logits of every prompt token by default (for logprobs);
            # an answer needs only the last token's.
            "--logits_all", str(self.local.logits_all),
            "--flash_attn", str(self.local.flash_attn),
            "--verbose", "False",
        ]  # fmt: skip
        if self.chat_format:
            args += ["--chat_format", self.chat_format]
        if self.local.prompt_cache_mb:
            args += ["--cache", "True", "--cache_size", str(self.local.prompt_cache_mb * 1024 * 1024)]
        if self.local.draft_lookup_tokens:
            args += ["--draft_model", "prompt-lookup-decoding",
                     "--draft_model_num_pred_tokens", str(self.local.draft_lookup_tokens)]
        launcher = [sys.executable, "-m", "server.llm.local.llama_server"]
        if use_extra_buffers(self.local.extra_buffers):
            launcher.append("--extra-buffers")
        if self.local.adaptive_threads:
            launcher.append("--adaptive-threads")
        return [*launcher, "--", *args]

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the public port, start the model process, wait until it answers, then serve."""
        sock = self._bind_public()
        try:
            self._start_backend()
            self._wait_backend_ready()
            self.proxy.prompt_speed = measure_prompt_speed(self.backend_url, self.alias, self.local.start_timeout)
            self.proxy.upstream = self.backend_url
            self._start_proxy(sock)
        except BaseException:
            sock.close()
            self.stop()
            raise
        speed = self.proxy.prompt_speed
        logger.info(
            "model %s ready at %s (loaded in %.1fs; reads %s prompt tokens/s)",
            self.alias, self.base_url, self.load_seconds, f"{speed.tokens_per_s:.0f}" if speed else "unknown",
        )  # fmt: skip

    def _bind_public(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.local.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.local.host, self.local.port))
        except OSError as exc:
            sock.close()
            raise ModelServerError(
                f"cannot listen on {self.local.host}:{self.local.port} for the model server: {exc.strerror}; "
                "is another `kbchat llm serve` running? Change llm.local.port to use another port."
            ) from exc
        return sock

    def backend_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The model process's environment: ``environ`` plus the project on PYTHONPATH and the wait policy."""
        env = dict(environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        # llama.cpp's OpenMP threads spin while waiting unless told otherwise; when the API, embeddings or
        # other programs share the cores, spinning threads starve each other and generation slows ~10x. The
        # default, brief, leaves the runtime's short spin (OMP_WAIT_POLICY unset, whatever the parent set) to go
        # with adaptive threads, which drop to one thread while another process is busy.
        if self.local.omp_wait_policy == "brief":
            env.pop("OMP_WAIT_POLICY", None)
        elif self.local.omp_wait_policy != "inherit":
            env["OMP_WAIT_POLICY"] = self.local.omp_wait_policy
        if self.proxy.timing_file is not None:
            env[TIMING_FILE_ENV] = str(self.proxy.timing_file)
        # The model process ends with this one (llama_server.die_with_parent).
        env[PARENT_PID_ENV] = str(os.getpid())
        return env

    def _start_backend(self) -> None:
        self.backend_port = _free_loopback_port()
        if self._run_dir is None:
            self._run_dir = tempfile.TemporaryDirectory(prefix="kbchat-model-")
        self.proxy.timing_file = Path(self._run_dir.name) / "prompt_timing.json"
        env = self.backend_env(os.environ)
        logger.info("starting model process for %s (%s)", self.alias, self.gguf)
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._reader = threading.Thread(target=self._read_output, name="llama-output", daemon=True)
        self._reader.start()

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                if _GRPC_CORE_LOG.match(line):
                    logger.debug("gRPC in the model process: %s", line)
                    continue
                self._tail.append(line)
                if line.startswith(KBCHAT_LOG_PREFIX):
                    logger.info("model process: %s", line[len(KBCHAT_LOG_PREFIX) :])
                else:
                    logger.debug("llama: %s", line)

    def _failure(self, what: str) -> ModelServerError:
        if self._reader is not None:
            self._reader.join(timeout=2)
        tail = self.stderr_tail() or "(no output)"
        return ModelServerError(f"model server for {self.alias} ({self.gguf}) {what}. Last output:\n{tail}")

    def _wait_backend_ready(self) -> None:
        started = time.monotonic()
        deadline = started + self.local.start_timeout
        url = f"{self.backend_url}/v1/models"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                assert self.process is not None
                code = self.process.poll()
                if code is not None:
                    raise self._failure(f"exited with code {code} while loading")
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise self._failure(f"did not answer within {self.local.start_timeout:g}s")
                time.sleep(0.1)
        self.load_seconds = time.monotonic() - started

    def _start_proxy(self, sock: socket.socket) -> None:
        try:
            self._uvicorn, self._proxy_thread = serve_in_thread(self.proxy, sock)
        except RuntimeError as exc:
            raise ModelServerError(f"the queueing proxy on {self.local.host}:{self.local.port} did not start") from exc

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, stop: threading.Event) -> int:
        """Serve until ``stop`` is set (0) or the model process dies (1, with its output logged)."""
        while not stop.wait(0.5):
            if not self.is_alive():
                logger.error("%s", self._failure("stopped unexpectedly").message)
                return 1
            if self._proxy_thread is not None and not self._proxy_thread.is_alive():
                logger.error("the queueing proxy stopped unexpectedly")
                return 1
        return 0

    def stop(self, timeout: float = 10.0) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._proxy_thread is not None:
            self._proxy_thread.join(timeout=timeout)
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("model process did not stop within %ss; killing it", timeout)
                process.kill()
                process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=2)
        if self._run_dir is not None:
            self._run_dir.cleanup()
            self._run_dir = None

    def __enter__(self) -> "ModelServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
