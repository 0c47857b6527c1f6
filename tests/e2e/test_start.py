"""`kbchat start` as a real process: children come up, answer, and all of them go away on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fakes.fixtures import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class Started:
    """A running `kbchat start` with its output file and ports."""

    def __init__(self, process: subprocess.Popen, out: Path, err: Path, ports: dict[str, int]) -> None:
        self.process = process
        self.out = out
        self.err = err
        self.ports = ports

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"kbchat start exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not printed within {timeout}s:\n{self.output()}")
            time.sleep(0.2)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def start(tmp_path: Path, *flags: str, **env_overrides: str) -> Started:
    ports = {"api": free_port(), "webui": free_port(), "grpc": free_port(), "llm": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KBCHAT_")}
    env.update(
        {
            "KBCHAT_PATHS__DATA_ROOT": str(tmp_path / "data"),
            "KBCHAT_SERVER__HOST": "127.0.0.1",
            "KBCHAT_SERVER__API_PORT": str(ports["api"]),
            "KBCHAT_SERVER__WEBUI_PORT": str(ports["webui"]),
            "KBCHAT_SERVER__GRPC_PORT": str(ports["grpc"]),
            "KBCHAT_LLM__LOCAL__PORT": str(ports["llm"]),
            "KBCHAT_LLM__LOCAL__N_CTX": "2048",
            "KBCHAT_LLM__DEFAULT_MODEL": "smollm2-135m",
            "HOME": str(tmp_path),  # keeps Streamlit's per-user files out of the real home
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    env.update(env_overrides)
    out, err = tmp_path / "start.out", tmp_path / "start.err"
    with out.open("wb") as o, err.open("wb") as e:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "start", *flags], cwd=tmp_path, env=env, stdout=o, stderr=e
        )
    return Started(process, out, err, ports)


def assert_all_gone(processes: list[psutil.Process], timeout: float = 5.0) -> None:
    gone, alive = psutil.wait_procs(processes, timeout=timeout)
    leftovers = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, f"stray processes: {[(p.pid, p.cmdline()) for p in leftovers]}"


@pytest.fixture
def cleanup():
    """Kill anything a failing test leaves behind."""
    started: list[Started] = []
    yield started.append
    for s in started:
        for p in [*s.descendants(), psutil.Process(s.process.pid)] if s.process.poll() is None else []:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def test_start_api_only_and_stop_cleanly_on_sigterm(tmp_path, cleanup):
    s = start(tmp_path, "--api")
    cleanup(s)
    s.wait_for_output("kbchat is running", timeout=120)
    assert httpx.get(f"http://127.0.0.1:{s.ports['api']}/health", timeout=5).status_code == 200
    assert f"ready at http://127.0.0.1:{s.ports['api']}" in s.output()
    children = s.descendants()
    assert children and not any("llama_server" in " ".join(p.cmdline()) for p in children)
    s.process.send_signal(signal.SIGTERM)
    assert s.process.wait(timeout=30) == 0
    assert "kbchat stopped" in s.output()
    assert_all_gone(children)


@pytest.mark.llm
def test_start_all_parts_with_local_model_leaves_no_orphans(tmp_path, cleanup):
    s = start(tmp_path, "-a", KBCHAT_SERVER__API_KEY="start-test-key")
    cleanup(s)
    s.wait_for_output("kbchat is running", timeout=240)
    llm_url = f"http://127.0.0.1:{s.ports['llm']}/v1/models"
    assert httpx.get(llm_url, timeout=5).status_code == 401  # the model server wants the key too
    models = httpx.get(llm_url, headers={"Authorization": "Bearer start-test-key"}, timeout=5).json()
    assert [m["id"] for m in models["data"]] == ["smollm2-135m"]
    assert httpx.get(f"http://127.0.0.1:{s.ports['api']}/health", timeout=5).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{s.ports['webui']}/_stcore/health", timeout=5).status_code == 200
    for name in ("model server", "API", "WebUI"):
        assert f"{name:<13} ready at" in s.output()
    children = s.descendants()
    commands = [" ".join(p.cmdline()) for p in children]
    assert any("server.llm.local.llama_server" in c for c in commands)  # the model process, a grandchild
    assert any("streamlit" in c for c in commands)
    s.process.send_signal(signal.SIGTERM)
    assert s.process.wait(timeout=60) == 0
    assert_all_gone(children)
    with socket.socket() as sock:  # the model port is free again
        # Nothing listens there any more; connections the server closed may linger in TIME_WAIT, which
        # SO_REUSEADDR lets a new listener ignore (as every server does), while a live listener still refuses it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", s.ports["llm"]))


def test_child_dying_stops_the_rest_with_error(tmp_path, cleanup):
    s = start(tmp_path, "--api", "--grpc")
    cleanup(s)
    s.wait_for_output("kbchat is running", timeout=120)
    children = s.descendants()
    api = next(p for p in children if "uvicorn" in " ".join(p.cmdline()))
    api.kill()
    assert s.process.wait(timeout=60) == 1
    assert "API exited unexpectedly" in s.output()
    assert_all_gone(children)


def test_refuses_non_loopback_host_without_api_key(tmp_path):
    s = start(tmp_path, "--api", KBCHAT_SERVER__HOST="0.0.0.0")
    assert s.process.wait(timeout=60) == 2
    assert "refusing to listen on non-loopback address 0.0.0.0 without an API key" in s.output()


def test_busy_port_is_reported_before_starting_anything(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        s = start(tmp_path, "--api", KBCHAT_SERVER__API_PORT=str(port))
        assert s.process.wait(timeout=60) == 1
    assert f"API (127.0.0.1:{port})" in s.output() and "already listens" in s.output()
