"""Database engine, units of work, and schema upgrades through the migrations (see migrate.py)."""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from server.db.migrate import upgrade_to_head
from server.db.models import Base

logger = logging.getLogger(__name__)
T = TypeVar("T")


SETTING = "paths.database_url"
# How long a SQLite connection waits for another one's lock before "database is locked".
SQLITE_BUSY_SECONDS = 30
# A bare postgresql:// means psycopg 3, the driver kbchat installs (SQLAlchemy 2.0 would pick psycopg2).
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg"}


class DatabaseUnavailable(RuntimeError):
    """The configured database URL is malformed, names a missing driver, or cannot be reached."""


def database_url(url: str) -> URL:
    """``url`` parsed, with kbchat's driver filled in where none is named; DatabaseUnavailable if malformed."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"{SETTING} is not a valid SQLAlchemy URL: {exc}") from exc
    return parsed.set(drivername=_DEFAULT_DRIVERS.get(parsed.drivername, parsed.drivername))


class Database:
    """An engine plus a session factory; nothing is opened until asked for.

    Any SQLAlchemy URL works. SQLite (the default) gets its file's folder made, WAL and foreign keys;
    a server database gets connections checked before use, so a restarted server is reconnected to.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = database_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.sqlite:
            path = parsed.database
            if path and path != ":memory:" and not path.startswith("file:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise DatabaseUnavailable(f"{SETTING} {self.safe_url}: no usable driver ({exc})") from exc
        if self.sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return database_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction for several repository calls: committed when the block ends, rolled back if it
        raises, so the calls take effect together or not at all::

            with db.unit_of_work() as session:
                repo.delete_file(session, kb_id, old)
                repo.save_file(session, kb_id, new, docs, fields)
        """
        session = self._factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def session(self) -> AbstractContextManager[Session]:
        """The same as ``unit_of_work()``."""
        return self.unit_of_work()

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call one repository function ``fn(session, ...)`` in its own transaction."""
        with self.unit_of_work() as session:
            return fn(session, *args, **kwargs)

    def upgrade(self) -> None:
        """Bring the database to the newest schema (creating it when empty); safe to repeat, and to race.

        A database made by a newer kbchat is refused (``migrate.NewerSchema``); one that cannot be reached
        raises DatabaseUnavailable naming the setting. See server/db/migrate.py.
        """
        self.check_connection()
        upgrade_to_head(self.engine)

    def check_connection(self) -> None:
        """Open and close one connection; DatabaseUnavailable, naming the setting, when that fails."""
        try:
            with self.engine.connect():
                pass
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            raise DatabaseUnavailable(f"cannot connect to {SETTING} {self.safe_url}: {reason}") from exc

    def create_tables(self) -> None:
        """``upgrade()``, under the name the entry points and ``kbchat init --create-tables`` know."""
        self.upgrade()

    def drop_tables(self) -> None:
        """Drop every kbchat table and the migration record (used by --clear-tables)."""
        Base.metadata.drop_all(self.engine)
        with self.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    _wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _wal(cur: Any) -> None:
    """Switch the database to write-ahead logging. Switching needs the database to itself, and SQLite reports
    "database is locked" at once, without waiting out its busy timeout, while another process is creating or
    switching the same new database; so a locked attempt is retried, for up to SQLITE_BUSY_SECONDS."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + 0.08 * random.random())
