"""Pytest fixtures shared by every suite: fake model servers, the real SmolLM2 server, free ports."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes.fake_openai import FakeOpenAI

__all__ = ["fake_openai", "free_port", "proxied", "smollm2_server", "SmolLM2Server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running FakeOpenAI server; script it with queue(), queue_error(), ..."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def proxied(fake_openai: FakeOpenAI) -> Iterator[Callable[..., tuple[Any, str]]]:
    """Start the model server's queueing proxy (max_queue chosen by the test) in front of the fake server;
    returns (proxy, its base URL without /v1)."""
    from server.llm.local.proxy import QueueProxy, serve_in_thread

    started = []

    def start(max_queue: int, upstream: str | None = None, access_check=None) -> tuple[QueueProxy, str]:
        proxy = QueueProxy(upstream or fake_openai.base_url.removesuffix("/v1"), max_queue, access_check=access_check)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server, thread = serve_in_thread(proxy, sock, name="test-proxy")
        started.append((server, thread))
        return proxy, f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(timeout=10)


class SmolLM2Server:
    """Handle on the session's real llama_cpp.server running SmolLM2-135M."""

    model = "smollm2-135m"

    def __init__(self, base_url: str, port: int, process) -> None:
        self.base_url = base_url
        self.port = port
        self.process = process


@pytest.fixture(scope="session")
def smollm2_server(tmp_path_factory) -> Iterator[SmolLM2Server]:
    """One real llama_cpp.server with SmolLM2 on a free port, shared by the whole test session."""
    from configs import Settings
    from server.llm.local.builtin import BUILTIN_MODELS, WeightsMissing
    from server.llm.local.serve import ModelServer

    data_root = tmp_path_factory.mktemp("smollm2")
    port = free_port()
    settings = Settings(
        paths={"data_root": data_root},
        llm={"local": {"port": port, "n_ctx": 2048, "n_threads": 2, "start_timeout": 120}},
    )
    try:
        server = ModelServer.for_builtin(settings, BUILTIN_MODELS["smollm2-135m"])
    except WeightsMissing as exc:
        pytest.skip(str(exc))
    server.start()
    try:
        yield SmolLM2Server(server.base_url, port, server.process)
    finally:
        server.stop()
