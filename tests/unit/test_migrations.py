"""Schema migrations: a database from before migrations is upgraded in place, and the models match the
migrated schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from server.db import Database
from server.db import kb_repository as repo
from server.db.migrate import BASELINE_REVISION, NewerSchema, current_revision, head_revision
from server.db.models import SCHEMA_VERSION, Base, SchemaVersion

SCHEMA_V1 = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v1.sql"


@pytest.fixture
def old_database(tmp_path) -> Database:
    """A SQLite database as kbchat made it before migrations, with a knowledge base, files and a conversation."""
    path = tmp_path / "info.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_V1.read_text(encoding="utf-8"))
    db = Database(f"sqlite:///{path}")
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


def test_migrations_build_the_schema_the_models_describe(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'new.db'}")
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


def test_a_database_of_a_newer_kbchat_is_refused(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'info.db'}")
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


def test_cleared_tables_are_built_again(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'info.db'}")
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
