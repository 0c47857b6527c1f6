"""Entry point running llama_cpp.server, the library's own OpenAI-compatible server, with load tweaks.

Usage: ``python -m server.llm.local.llama_server [--extra-buffers] -- <llama_cpp.server arguments>``.

Without ``--extra-buffers`` llama.cpp is told not to repack weights into extra buffer types:
llama-cpp-python built natively on a CPU with AMX routes matrix products through the AMX
kernels, which crash with SIGSEGV on some virtual machines.
"""

from __future__ import annotations

import sys
from typing import Any


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


def main(argv: list[str]) -> None:
    extra = "--extra-buffers" in argv
    args = argv[argv.index("--") + 1 :] if "--" in argv else [a for a in argv if a != "--extra-buffers"]
    if not extra:
        disable_extra_buffers()
    from llama_cpp.server.__main__ import main as llama_main

    sys.argv = ["llama_cpp.server", *args]
    llama_main()


if __name__ == "__main__":
    main(sys.argv[1:])
