"""Fixtures for the WebUI tests: the real kbchat API (uvicorn in a thread) backed by the fake model,
and the Streamlit WebUI as a subprocess for the browser test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fixtures import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


@dataclass
class ApiServer:
    """A running kbchat API: its URL, the settings it was built from and the fake model behind it."""

    url: str
    settings: object
    fake: FakeOpenAI


def api_settings(data_root: Path, fake: FakeOpenAI, **overrides: object):
    """Settings of a test API: data under ``data_root``, the fake model as default, no API key."""
    from configs import Settings

    values: dict = {
        "paths": {"data_root": data_root},
        "llm": {
            "default_model": "fake",
            "models": {
                "fake": {"kind": "openai_compatible", "base_url": fake.base_url, "model": "fake-model"},
                # nothing listens there: the "model server is down" case
                "offline": {"kind": "openai_compatible", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                            "model": "offline-model", "timeout": 5},
            },
        },
        "server": {"api_key": None, "api_url": None},
    }
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return Settings(**values)


def run_uvicorn(app: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="kbchat-test-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test API did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def webui_fake_model() -> Iterator[FakeOpenAI]:
    """One fake OpenAI-compatible model for all WebUI tests; each test queues its own replies."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def model_proxy(webui_fake_model: FakeOpenAI) -> Iterator[str]:
    """The bundled model server's queueing proxy in front of the fake model; yields its URL."""
    import socket

    from server.llm.local.proxy import QueueProxy, serve_in_thread

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server, thread = serve_in_thread(QueueProxy(webui_fake_model.base_url.removesuffix("/v1"), 8), sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, webui_fake_model: FakeOpenAI, model_proxy: str
) -> Iterator[ApiServer]:
    """The real app from server.app.create_app on a free port, with its data under a temporary folder.

    Model "local" is a built-in model as kbchat serves it: behind the queueing proxy (here in front of
    the fake), so answers can say how many are ahead of them.
    """
    from server.app import create_app

    settings = api_settings(
        tmp_path_factory.mktemp("webui_api"),
        webui_fake_model,
        # nothing listens at this SearXNG URL: the "search engine offline" case
        chat={"history_turns": 7, "search": {"searxng_url": f"http://127.0.0.1:{free_port()}", "timeout": 5}},
        kb={"top_k": 4},
    )
    settings.llm.models["local"] = settings.llm.models["fake"].model_copy(update={"builtin": "smollm2-135m"})
    settings.llm.local.port = int(model_proxy.rsplit(":", 1)[1])
    server, thread, url = run_uvicorn(create_app(settings))
    try:
        yield ApiServer(url=url, settings=settings, fake=webui_fake_model)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def fake_model(api_server: ApiServer) -> Iterator[FakeOpenAI]:
    """The API's fake model; a test sets ``default_reply`` (not the queue: the chat service may also
    ask the model for a conversation title) and it is put back afterwards, with any reply a stopped
    answer never took forgotten."""
    fake = api_server.fake
    before = fake.default_reply
    yield fake
    fake.default_reply = before
    fake.reset()


@pytest.fixture
def webui_env(api_server: ApiServer, monkeypatch: pytest.MonkeyPatch) -> ApiServer:
    """Point the WebUI (run in this process by AppTest) at the test API."""
    monkeypatch.setenv("KBCHAT_SERVER__API_URL", api_server.url)
    monkeypatch.delenv("KBCHAT_SERVER__API_KEY", raising=False)
    return api_server


@pytest.fixture(scope="module")
def webui_server(api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run webui.py` as a subprocess talking to the test API; yields the WebUI URL."""
    port = free_port()
    env = {
        **os.environ,
        "KBCHAT_SERVER__API_URL": api_server.url,
        "HOME": str(tmp_path_factory.mktemp("streamlit_home")),  # no ~/.streamlit credentials prompt
    }
    env.pop("KBCHAT_SERVER__API_KEY", None)
    log_path = tmp_path_factory.mktemp("streamlit_log") / "streamlit.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", "webui.py",
                "--server.headless", "true",
                "--server.port", str(port),
                "--server.address", "127.0.0.1",
                "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
