"""Database engine, units of work, and schema upgrades through the migrations (see migrate.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from server.db.migrate import upgrade_to_head
from server.db.models import Base

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Database:
    """An engine plus a session factory; nothing is opened until asked for."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

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

        A database made by a newer kbchat is refused (``migrate.NewerSchema``). See server/db/migrate.py.
        """
        upgrade_to_head(self.engine)

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
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
