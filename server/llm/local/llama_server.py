"""Entry point running llama_cpp.server, the library's own OpenAI-compatible server, with load tweaks.

Usage: ``python -m server.llm.local.llama_server [--extra-buffers] [--adaptive-threads] -- <llama_cpp.server
arguments>``.

Without ``--extra-buffers`` llama.cpp is told not to repack weights into extra buffer types:
llama-cpp-python built natively on a CPU with AMX routes matrix products through the AMX
kernels, which crash with SIGSEGV on some virtual machines. With ``--adaptive-threads`` the model uses
``--n_threads`` threads while the other processes are quiet and one while they are busy (``threads.py``).
With ``KBCHAT_PROMPT_TIMING_FILE`` set, every prompt the model reads is timed into that file
(``prompt_timing.py``). With ``KBCHAT_PARENT_PID`` set, the process ends when that process does. The server
also answers ``POST /kbchat/score``, the likelihood of a text after each of several others (``scoring.py``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Literal

from server.llm.local.prompt_timing import TIMING_FILE_ENV, install as time_prompts
from server.llm.local.scoring import install_route as install_scoring_route


def disable_extra_buffers() -> None:
    """Make every Llama created in this process load without extra buffer types (no AMX repacking)."""
    import llama_cpp.llama_cpp as capi

    original = capi.llama_model_default_params
    if getattr(original, "_kbchat_patched", False):
        return

    def default_params() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    default_params._kbchat_patched = True  # type: ignore[attr-defined]
    # llama_cpp.Llama looks this function up on the module at construction time.
    capi.llama_model_default_params = default_params


def choose_extra_buffers(setting: bool | Literal["auto"] = "auto") -> None:
    """Let the Llamas created in this process from now on repack their weights only where ``setting``
    (``llm.local.extra_buffers``) wants it on this CPU (``cpu.use_extra_buffers``): in-process models load as the
    model server's do, and none takes the AMX path that crashes on some machines."""
    from server.llm.local.cpu import use_extra_buffers

    if not use_extra_buffers(setting):
        disable_extra_buffers()


# Lines of kbchat's own loggers in this process begin with this; the parent logs them (serve.py).
KBCHAT_LOG_PREFIX = "kbchat: "
FLAGS = ("--extra-buffers", "--adaptive-threads")
PARENT_PID_ENV = "KBCHAT_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Linux: have SIGTERM sent to this process when ``parent_pid``, which started it, dies, even by SIGKILL.

    Set here, in the model process, rather than between fork and exec in the parent: a parent that has served
    gRPC runs gRPC's fork handlers there, which can abort the child before it starts.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return
    if os.getppid() != parent_pid:  # the parent died before the line above
        sys.exit(0)


def main(argv: list[str]) -> None:
    flags = argv[: argv.index("--")] if "--" in argv else [a for a in argv if a in FLAGS]
    args = argv[argv.index("--") + 1 :] if "--" in argv else [a for a in argv if a not in FLAGS]
    if os.environ.get(PARENT_PID_ENV, "").isdigit():
        die_with_parent(int(os.environ[PARENT_PID_ENV]))
    if "--extra-buffers" not in flags:
        disable_extra_buffers()
    if os.environ.get(TIMING_FILE_ENV):
        # Installed first, so the thread governor's own wait before a prompt is not timed with it.
        time_prompts(Path(os.environ[TIMING_FILE_ENV]))
    if "--adaptive-threads" in flags:
        from server.llm.local.threads import install

        logging.basicConfig(level=logging.WARNING, format=KBCHAT_LOG_PREFIX + "%(levelname)s %(name)s: %(message)s")
        logging.getLogger("server.llm.local.threads").setLevel(logging.INFO)
        install(int(args[args.index("--n_threads") + 1]) if "--n_threads" in args else 2)
    from llama_cpp.server.__main__ import main as llama_main

    install_scoring_route()

    sys.argv = ["llama_cpp.server", *args]
    llama_main()


if __name__ == "__main__":
    main(sys.argv[1:])
