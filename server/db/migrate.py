"""Bringing a database to the newest schema with the Alembic migrations of server/db/migrations.

* A new database is built by running every revision.
* A database made before migrations existed (kbchat tables, a ``schema_version`` row, no
  ``alembic_version``) is stamped with the first revision, which is that schema, and upgraded from there.
* A database at a revision this code does not know, or with a higher ``schema_version``, was made by a
  newer kbchat and is refused untouched.

Processes may start at once (the API and gRPC server do, and so do API replicas): next to a SQLite file an
``flock`` lets one of them migrate while the others wait and then find nothing to do; on PostgreSQL a
transaction-level advisory lock does the same; on other databases a migration that loses a race fails, and
is retried once the winner's work is visible.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, insert, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from server.db.models import SCHEMA_VERSION, SchemaVersion

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BASELINE_REVISION = "0001"  # the schema from before migrations
_ATTEMPTS = 5
# The key of the PostgreSQL advisory lock held while migrating (any constant that no other code uses).
_PG_MIGRATION_LOCK = 0x6B6263686174  # "kbchat"


class NewerSchema(RuntimeError):
    """The database was migrated by a newer kbchat than this one."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration of kbchat's migrations, running on ``connection`` (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database, None when it has no ``alembic_version``."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Migrate the database to the newest revision; safe to repeat and to run from several processes."""
    with _migration_lock(engine):
        for attempt in range(_ATTEMPTS):
            try:
                _upgrade(engine)
                return
            except (OperationalError, IntegrityError, ProgrammingError):
                # Another process changed the schema between our look and our change; looking again sees it.
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))


def _upgrade(engine: Engine) -> None:
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # Where SQLite cannot ALTER, a batch migration copies the table and drops the old one; with
            # foreign keys on, that drop would cascade to the rows referring to it.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    # Released when the transaction ends; DDL is transactional there, so waiters see it all.
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
                _migrate(connection)
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _migrate(connection: Connection) -> None:
    config = alembic_config(connection)
    current = current_revision(connection)
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise NewerSchema(f"database schema revision {current} is newer than this kbchat ({head_revision()})")
    tables = set(inspect(connection).get_table_names())
    if "schema_version" in tables:
        recorded = connection.scalar(select(SchemaVersion.version))
        if recorded is not None and recorded > SCHEMA_VERSION:
            raise NewerSchema(f"database schema version {recorded} is newer than this kbchat ({SCHEMA_VERSION})")
    if current is None and "knowledge_base" in tables:
        logger.info("database from before migrations: recording it at revision %s", BASELINE_REVISION)
        if "schema_version" in tables and connection.scalar(select(SchemaVersion.version)) is None:
            connection.execute(insert(SchemaVersion).values(id=1, version=1))
        command.stamp(config, BASELINE_REVISION)
        current = BASELINE_REVISION
    command.upgrade(config, "head")
    upgraded = current_revision(connection)
    if upgraded != current:
        logger.info("database schema upgraded from revision %s to %s", current or "(empty database)", upgraded)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on ``<database file>.migrate.lock`` for a SQLite file; nothing otherwise."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
