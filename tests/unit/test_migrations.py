"""Schema migrations, on SQLite and PostgreSQL: a database from before migrations, or at an older revision,
is upgraded in place, and the models match the migrated schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from server.db import Database
from server.db import kb_repository as repo
from server.db.migrate import BASELINE_REVISION, NewerSchema, alembic_config, current_revision, head_revision
from server.db.models import SCHEMA_VERSION, Base, SchemaVersion

SCHEMA_V1 = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v1.sql"
ROWS_MARKER = "-- A few rows"


def _baseline_on_postgresql(url: str, *, keep_revision: bool) -> Database:
    """A PostgreSQL database with kbchat's first schema (what its models created before migrations) and the
    rows of schema_v1.sql; without ``alembic_version`` unless ``keep_revision``."""
    db = Database(url)
    rows = SCHEMA_V1.read_text(encoding="utf-8").split(ROWS_MARKER, 1)[1].split("\n", 1)[1]
    with db.engine.begin() as conn:
        command.upgrade(alembic_config(conn), BASELINE_REVISION)
        if not keep_revision:
            conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DELETE FROM schema_version"))
        conn.exec_driver_sql(rows)
        for table in ("knowledge_base", "knowledge_file", "file_doc", "feedback"):
            # The rows name their ids, as an exported database would; the sequences move past them.
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    return db


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-at-0001"])
def old_database(request, tmp_path) -> Database:
    """A database as kbchat made it before migrations (or at the first revision), with a knowledge base,
    files and a conversation: a SQLite file from schema_v1.sql, or the same on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "info.db"
        with sqlite3.connect(path) as conn:
            conn.executescript(SCHEMA_V1.read_text(encoding="utf-8"))
        db = Database(f"sqlite:///{path}")
    else:
        db = _baseline_on_postgresql(request.getfixturevalue("pg_url"), keep_revision=request.param.endswith("0001"))
    yield db
    db.dispose()


def test_a_database_from_before_migrations_is_upgraded_in_place(old_database):
    old_database.upgrade()
    with old_database.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    with old_database.unit_of_work() as session:
        assert session.scalar(select(SchemaVersion.version)) == SCHEMA_VERSION
        kb = repo.require_kb(session, "laws")
        files = {f.file_name: f for f in repo.list_files(session, kb.id)}
        docs = repo.doc_files(session, kb.id)
        messages = session.execute(text("SELECT id, content FROM message ORDER BY seq")).all()
    assert (kb.description, kb.file_count, kb.chunk_count) == ("labour law", 3, 3)
    law, notes, scan = files["劳动法.md"], files["notes.txt"], files["scan.pdf"]
    assert (law.chunk_size, law.chunk_overlap, law.chunk_unit) == (500, 50, "chars")
    assert (notes.chunk_size, notes.chunk_overlap, notes.chunk_unit) == (256, 32, "tokens")
    assert (scan.chunk_size, scan.chunk_overlap, scan.chunk_unit) == (None, None, None)
    assert law.splitter == "structure-recursive:500/50:chars" and law.chunk_count == 2 and law.mtime == 1767607200.5
    assert scan.status == "error" and "text layer" in scan.error
    assert docs == {"d1": "劳动法.md", "d2": "劳动法.md", "d3": "notes.txt"}
    assert [m.id for m in messages] == ["m1", "m2"]
    old_database.upgrade()  # a second start finds nothing to do
    with old_database.unit_of_work() as session:  # and new rows get new ids
        assert repo.add_kb(session, "contracts", "", "faiss", "multilingual-e5-small").id == 2


def test_migrations_build_the_schema_the_models_describe(db_url):
    db = Database(db_url)
    db.upgrade()
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    db.dispose()
    assert differences == []


def test_an_upgraded_old_database_matches_the_models_too(old_database):
    old_database.upgrade()
    with old_database.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert differences == []


def test_a_database_of_a_newer_kbchat_is_refused(db_url):
    db = Database(db_url)
    db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(NewerSchema, match="9999"):
        db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    with pytest.raises(NewerSchema, match="newer than this kbchat"):
        db.upgrade()
    db.dispose()


def test_cleared_tables_are_built_again(db_url):
    db = Database(db_url)
    db.upgrade()
    db.drop_tables()
    with db.engine.connect() as conn:
        assert current_revision(conn) is None
    db.upgrade()
    with db.unit_of_work() as session:
        assert repo.list_kbs(session) == []
    db.dispose()


def test_the_baseline_is_the_first_revision():
    assert BASELINE_REVISION == "0001" and head_revision() != BASELINE_REVISION
