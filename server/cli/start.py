"""`kbchat start`: run the model server, API, WebUI and gRPC server as supervised child processes.

Each child runs in its own process group, so stopping it also stops whatever it started.
Ctrl-C or SIGTERM stops them all (SIGTERM, then SIGKILL after a grace period); if one child
dies unexpectedly the others are stopped too and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

import httpx

from configs import Settings
from configs.settings import PROJECT_ROOT
from server.cli.output import say
from server.auth import api_key, is_loopback
from server.db import Database
from server.llm.local.assemble import is_ready
from server.llm.local.builtin import BUILTIN_MODELS
from server.llm.local.serve import connect_host

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
# Extra time for the first start of a model whose weights must still be assembled and hashed.
ASSEMBLY_SECONDS = 600.0


@dataclass
class Child:
    """One supervised part of kbchat."""

    name: str
    command: list[str]
    ready: tuple[str, str]  # ("http", url) or ("tcp", "host:port")
    url: str
    timeout: float
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> subprocess.Popen[bytes]:
        """The started process."""
        if self.process is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self.process


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("start", help="start kbchat's servers (default: all of them)")
    parser.add_argument("-a", "--all", action="store_true", help="model server (if local), API, WebUI and gRPC")
    parser.add_argument("--llm", action="store_true", help="the local model server")
    parser.add_argument("--api", action="store_true", help="the HTTP API")
    parser.add_argument("--webui", action="store_true", help="the Streamlit WebUI")
    parser.add_argument("--grpc", action="store_true", help="the gRPC server")
    parser.set_defaults(func=cmd_start)


def _local_model_name(settings: Settings) -> str | None:
    """The built-in model `kbchat llm serve` would serve for the default model, if it is local."""
    if settings.llm.local.gguf:
        return "gguf"
    config = settings.llm.models.get(settings.llm.default_model)
    return config.builtin if config is not None and config.builtin else None


def plan(args: argparse.Namespace, settings: Settings) -> list[Child]:
    """The children to start, in start order."""
    everything = args.all or not (args.llm or args.api or args.webui or args.grpc)
    srv, local = settings.server, settings.llm.local
    host = connect_host(srv.host)
    python = sys.executable
    children: list[Child] = []
    if everything or args.llm:
        builtin = _local_model_name(settings)
        if builtin is None:
            say(f"default model {settings.llm.default_model!r} is not a built-in local model; "
                "not starting the model server")
        else:
            model = BUILTIN_MODELS.get(builtin)
            slow = model is not None and not is_ready(model, settings.paths.model_dir)
            base = f"http://{connect_host(local.host)}:{local.port}"
            children.append(
                Child(
                    "model server",
                    [python, "-m", "server.cli", "llm", "serve"],
                    ("http", f"{base}/v1/models"),
                    f"{base}/v1",
                    local.start_timeout + (ASSEMBLY_SECONDS if slow else 0.0),
                )
            )
    if everything or args.api:
        base = f"http://{host}:{srv.api_port}"
        command = [python, "-m", "uvicorn", "server.app:create_app", "--factory"]
        command += ["--host", srv.host, "--port", str(srv.api_port), "--log-level", "warning"]
        children.append(Child("API", command, ("http", f"{base}/health"), base, 120.0))
    if everything or args.webui:
        base = f"http://{host}:{srv.webui_port}"
        command = [python, "-m", "streamlit", "run", str(PROJECT_ROOT / "webui.py")]
        command += ["--server.port", str(srv.webui_port), "--server.address", srv.host]
        command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
        # Watching the tree (with .venv, thousands of files) overflows inotify and reloads nothing a user needs.
        command += ["--server.fileWatcherType", "none", "--server.runOnSave", "false"]
        env = {"KBCHAT_SERVER__API_URL": srv.api_url or f"http://{host}:{srv.api_port}"}
        # Streamlit reads .streamlit/config.toml from its working directory.
        children.append(
            Child("WebUI", command, ("http", f"{base}/_stcore/health"), base, 120.0, env, cwd=str(PROJECT_ROOT))
        )
    if everything or args.grpc:
        address = f"{host}:{srv.grpc_port}"
        children.append(Child("gRPC", [python, "-m", "server.grpc.server"], ("tcp", address), address, 120.0))
    return children


def _check_hosts(settings: Settings, children: list[Child]) -> str | None:
    """Why binding is refused, or None: a non-loopback address needs an API key."""
    key = settings.server.api_key
    if key is not None and key.get_secret_value():
        return None
    hosts = {settings.llm.local.host if c.name == "model server" else settings.server.host for c in children}
    exposed = sorted(h for h in hosts if not is_loopback(h))
    if exposed:
        return (
            f"refusing to listen on non-loopback address {', '.join(exposed)} without an API key: "
            "set KBCHAT_SERVER__API_KEY (or server.api_key), or bind 127.0.0.1"
        )
    return None


def _port_in_use(target: str) -> bool:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def _is_ready(child: Child, client: httpx.Client) -> bool:
    kind, target = child.ready
    if kind == "tcp":
        return _port_in_use(target)
    try:
        return client.get(target).status_code == 200
    except httpx.HTTPError:
        return False


def _address_of(child: Child) -> str:
    url = child.ready[1]
    return url.split("://", 1)[-1].split("/", 1)[0]


def _spawn(child: Child) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.update(child.env)
    child.process = subprocess.Popen(
        child.command, env=env, cwd=child.cwd, stdin=subprocess.DEVNULL, start_new_session=True
    )
    logger.info("started %s (pid %d): %s", child.name, child.process.pid, " ".join(child.command))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_children(children: list[Child], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every child's process group, then SIGKILL whatever is left after ``grace`` seconds."""
    started = [(c, c.process) for c in children if c.process is not None]
    for _child, process in reversed(started):
        if _group_alive(process.pid):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for child, process in started:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0fs; killing it", child.name, grace)
    # Members of a group may outlive its leader; leave nothing behind.
    while any(_group_alive(p.pid) for _, p in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child, process in started:
        if _group_alive(process.pid):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.error("%s (pid %d) survived SIGKILL", child.name, process.pid)


def _wait_ready(children: list[Child], stop: threading.Event, settings: Settings) -> str | None:
    """None once every child answers; otherwise why not."""
    pending = list(children)
    deadlines = {c.name: time.monotonic() + c.timeout for c in children}
    key = api_key(settings)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(timeout=2.0, trust_env=False, headers=headers) as client:
        while pending:
            if stop.is_set():
                return "interrupted"
            for child in list(pending):
                code = child.running.poll()
                if code is not None:
                    return f"{child.name} exited with code {code} while starting"
                if _is_ready(child, client):
                    pending.remove(child)
                    say(f"{child.name:<13} ready at {child.url}")
                elif time.monotonic() > deadlines[child.name]:
                    return f"{child.name} was not ready within {child.timeout:.0f}s"
            if pending:
                stop.wait(0.2)
    return None


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    children = plan(args, settings)
    if not children:
        say("error: nothing to start", file=sys.stderr)
        return 2
    problem = _check_hosts(settings, children)
    if problem:
        say(f"error: {problem}", file=sys.stderr)
        return 2
    busy = [f"{c.name} ({_address_of(c)})" for c in children if _port_in_use(_address_of(c))]
    if busy:
        say(f"error: something already listens on the port of: {', '.join(busy)}", file=sys.stderr)
        return 1

    if any(c.name in ("API", "gRPC") for c in children):
        # Both would create the schema of a new database at the same moment; do it once, first.
        Database(settings.paths.database_url).create_tables()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    code = 0
    try:
        for child in children:
            _spawn(child)
        problem = _wait_ready(children, stop, settings)
        if problem and problem != "interrupted":
            say(f"error: {problem}; stopping everything", file=sys.stderr)
            code = 1
        elif not problem:
            say("kbchat is running; press Ctrl-C to stop")
            code = _supervise(children, stop)
    finally:
        stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("kbchat stopped")
    return code


def _supervise(children: list[Child], stop: threading.Event) -> int:
    while not stop.wait(0.5):
        for child in children:
            code = child.running.poll()
            if code is not None:
                say(f"error: {child.name} exited unexpectedly with code {code}; stopping the others", file=sys.stderr)
                return 1
    return 0
