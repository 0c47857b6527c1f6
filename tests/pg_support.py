"""A throwaway PostgreSQL cluster for the tests, from the binaries (and pgvector) of the ``pgserver`` wheel.

The cluster lives in a temporary folder, listens on 127.0.0.1 at a free port, trusts local connections and
keeps nothing durable (fsync off). PostgreSQL refuses to run as root, so under root it runs as the system
user ``kbchat-pg``, made with ``useradd`` when missing. The server dies with the process that started it
(``setpriv --pdeathsig``), so even a killed test run leaves no server behind.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)

SERVICE_USER = "kbchat-pg"
SUPERUSER = "postgres"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


class ClusterUnavailable(RuntimeError):
    """The test PostgreSQL could not be started; the message says why and what to install."""


def binaries() -> Path:
    """The ``bin`` folder of the PostgreSQL that the ``pgserver`` wheel ships (found without importing it)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ClusterUnavailable("the pgserver wheel is not installed; `make test` installs it (pip install '.[test]')")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    for tool in ("initdb", "postgres"):
        if not os.access(bin_dir / tool, os.X_OK):
            raise ClusterUnavailable(f"{bin_dir / tool} is missing or not executable")
    return bin_dir


@dataclass
class Cluster:
    """A running throwaway cluster: its superuser URL, and databases made fresh for each test."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    started_in: float
    _made: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True)

    def create_database(self) -> str:
        """A new empty database (with the ``vector`` extension, from template1); returns its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._made.append(name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown, then the folder is removed; the process is killed if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_account() -> pwd.struct_passwd | None:
    """The account the server runs as: ``kbchat-pg`` under root (created if needed), else the current user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise ClusterUnavailable(f"cannot create the system user {SERVICE_USER}: {result.stderr.strip()}")
    return pwd.getpwnam(SERVICE_USER)


def _as_account(command: list[str], account: pwd.struct_passwd | None) -> list[str]:
    """``command`` run as ``account``, dying with this process; setpriv drops root before exec."""
    prefix = ["setpriv", "--pdeathsig", "SIGQUIT"]
    if account is not None:
        prefix += ["--reuid", str(account.pw_uid), "--regid", str(account.pw_gid), "--clear-groups"]
    return prefix + ["--", *command]


def start_cluster() -> Cluster:
    """Initialise and start a cluster; raises ClusterUnavailable with the server's log when it cannot."""
    bin_dir = binaries()
    if shutil.which("setpriv") is None:
        raise ClusterUnavailable("setpriv (util-linux) is needed to run PostgreSQL as a non-root user")
    account = _service_account()
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="kbchat-pg-"))
    data = root / "data"
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
        if not os.access(bin_dir, os.R_OK | os.X_OK):
            raise ClusterUnavailable(f"{bin_dir} is not readable by {SERVICE_USER}")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    init = subprocess.run(
        _as_account([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                     "--no-sync", "--no-instructions"], account),
        cwd=root, env=env, capture_output=True, text=True, check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailable(f"initdb failed ({init.returncode}): {init.stderr.strip() or init.stdout.strip()}")
    for _ in range(3):
        port = unused_port()
        log = root / f"postgres-{port}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                _as_account([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
                             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                             "-c", "max_connections=200"], account),
                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        if _wait_ready(process, port):
            cluster = Cluster(root=root, port=port, process=process, started_in=time.monotonic() - began)
            with cluster._admin() as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # the server's default database
            with psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="template1",
                                 autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # every database made from now on
            logger.info("test PostgreSQL on 127.0.0.1:%d (as %s), started in %.1f s", port,
                        account.pw_name if account else "the current user", cluster.started_in)
            return cluster
        if process.poll() is None:
            process.kill()
        process.wait()
        text = log.read_text(errors="replace")
        if "Address already in use" not in text:
            shutil.rmtree(root, ignore_errors=True)
            raise ClusterUnavailable(f"PostgreSQL did not start:\n{text[-3000:]}")
    shutil.rmtree(root, ignore_errors=True)
    raise ClusterUnavailable("PostgreSQL found no free port on 127.0.0.1 in three tries")


def _wait_ready(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            time.sleep(0.1)
    return False


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
