"""Database engine, sessions and idempotent, versioned schema creation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import SCHEMA_VERSION, Base, SchemaVersion

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

    def create_tables(self) -> None:
        """Create missing tables and record the schema version; safe to repeat, and to race."""
        for attempt in range(3):
            try:
                Base.metadata.create_all(self.engine)
                break
            except OperationalError:
                # Another process (API and gRPC start together) created a table between our
                # existence check and CREATE TABLE; checking again sees it.
                if attempt == 2:
                    raise
                time.sleep(0.2)
        try:
            with self.session() as session:
                row = session.scalar(select(SchemaVersion))
                if row is None:
                    session.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
                elif row.version > SCHEMA_VERSION:
                    raise RuntimeError(
                        f"database schema version {row.version} is newer than this kbchat ({SCHEMA_VERSION})"
                    )
        except IntegrityError:
            pass  # another process recorded the version first

    def drop_tables(self) -> None:
        """Drop every kbchat table (used by --clear-tables)."""
        Base.metadata.drop_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
