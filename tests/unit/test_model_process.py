"""The model process as the model server starts it: its output tail, and its end with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from configs import Settings
from server.llm.local.llama_server import PARENT_PID_ENV
from server.llm.local.serve import STDERR_TAIL_LINES, ModelServer


def test_grpc_fork_noise_does_not_push_the_model_error_out_of_the_tail(tmp_path):
    # A process that has served gRPC and then starts the model process can get lines like these from gRPC's
    # fork handlers, many of them, after the model's own error.
    noise = "E1204 22:40:01.123456   4321 ev_epoll1_linux.cc:373] (event_engine) Epoll1Poller: epoll_wait error"
    script = ("print('llama_model_load: error loading model'); print('Failed to load model from file'); "
              f"[print({noise!r}) for _ in range({STDERR_TAIL_LINES * 2})]")
    server = ModelServer(Settings(paths={"data_root": tmp_path}), tmp_path / "m.gguf", "m")
    server.process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)
    server._read_output()
    server.process.wait(timeout=30)
    assert server.stderr_tail().splitlines() == ["llama_model_load: error loading model",
                                                 "Failed to load model from file"]


def test_the_model_process_ends_when_the_process_that_started_it_is_killed(tmp_path):
    # parent -> child; the child ties itself to the parent as the model process does, and reports its pid.
    child = ("import os, sys, time; from server.llm.local.llama_server import die_with_parent; "
             f"die_with_parent(int(os.environ[{PARENT_PID_ENV!r}])); print(os.getpid(), flush=True); time.sleep(120)")
    parent = ("import os, subprocess, sys, time; "
              f"env = dict(os.environ, {PARENT_PID_ENV}=str(os.getpid())); "
              f"subprocess.Popen([sys.executable, '-c', {child!r}], env=env); time.sleep(120)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    started = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, env=env)
    assert started.stdout is not None
    child_pid = int(started.stdout.readline())
    started.send_signal(signal.SIGKILL)
    started.wait(timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
