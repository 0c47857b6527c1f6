"""What the model process prints, as the model server keeps it to explain a failed start (serve.py)."""

from __future__ import annotations

import subprocess
import sys

from configs import Settings
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
