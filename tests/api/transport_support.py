"""Test support for the chat transports: settings on a fake model, a live API server, a live gRPC server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from configs import Settings
from server.services import Services


def wait_for(condition: Any, what: str, seconds: float = 10.0) -> None:
    """Poll ``condition()`` until it is true, failing with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def fake_llm_settings(data_root: Path, base_url: str, **overrides: Any) -> Settings:
    """Settings whose only chat model, 'fake', is the FakeOpenAI server at ``base_url``."""
    llm = {
        "default_model": "fake",
        "models": {
            "fake": {
                "kind": "openai_compatible",
                "base_url": base_url,
                "model": "fake-model",
                "timeout": 20,
                "supports_tools": True,
            }
        },
    }
    # Model-written titles would take replies the tests queued for their own questions.
    overrides.setdefault("chat", {"llm_titles": False})
    paths = {"data_root": data_root, **overrides.pop("paths", {})}
    return Settings(paths=paths, llm=llm, **overrides)


def _listening_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


class LiveServer:
    """The API app served by uvicorn in a background thread on a free port of 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        self._sock = _listening_socket("127.0.0.1")
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="live-api", daemon=True
        )

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class GrpcServer:
    """server.grpc.server.serve() running on an event loop of its own, in a background thread."""

    def __init__(self, settings: Settings, services: Services, host: str = "127.0.0.1") -> None:
        from server.grpc.server import serve

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            self.port = sock.getsockname()[1]
        self.target = f"{host}:{self.port}"
        self._settings = settings.model_copy(update={"server": settings.server.model_copy(update={"host": host})})
        self._services = services
        self._serve = serve
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="live-grpc", daemon=True)
        self._server = None

    def __enter__(self) -> "GrpcServer":
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(self._settings, self._services, self.port), self._loop)
        self._server = future.result(timeout=20)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
