"""Alembic environment of kbchat: runs migrations on the connection ``Database.upgrade()`` hands over.

``render_as_batch`` lets ALTERs run on SQLite (a table is copied where SQLite cannot alter it in place).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from server.db.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise RuntimeError("kbchat's migrations run through Database.upgrade(), on a live connection")
    run_migrations(connection)


main()
