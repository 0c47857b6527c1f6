import threading

import pytest
from sqlalchemy import select

from server.cli import main as kbchat_main
from server.db import Database
from server.db.engine import DatabaseUnavailable
from server.db.models import SCHEMA_VERSION, SchemaVersion
from tests.pg_support import unused_port


def test_create_tables_is_idempotent_and_records_the_schema_version(db_url):
    db = Database(db_url)
    db.create_tables()
    db.create_tables()
    with db.session() as session:
        rows = session.scalars(select(SchemaVersion)).all()
    db.dispose()
    assert [(r.id, r.version) for r in rows] == [(1, SCHEMA_VERSION)]


def test_processes_creating_a_new_database_at_once_do_not_fail(db_url):
    barrier, errors = threading.Barrier(6), []

    def create() -> None:
        db = Database(db_url)
        barrier.wait()
        try:
            db.create_tables()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db = Database(db_url)
    with db.session() as session:
        assert len(session.scalars(select(SchemaVersion)).all()) == 1
    db.dispose()


def test_only_sqlite_gets_sqlite_pragmas(db_url):
    db = Database(db_url)
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        else:
            assert db.engine.dialect.name == "postgresql" and db.engine.pool._pre_ping
    db.dispose()


def test_a_bare_postgresql_url_uses_the_installed_psycopg_driver(pg_cluster):
    db = Database(pg_cluster.url(driver="postgresql"))
    assert db.engine.dialect.driver == "psycopg"
    db.check_connection()
    db.dispose()


def test_an_unreachable_database_names_the_setting_and_hides_the_password():
    db = Database(f"postgresql://kbchat:s3cret@127.0.0.1:{unused_port()}/kbchat")
    with pytest.raises(DatabaseUnavailable, match=r"paths\.database_url") as caught:
        db.create_tables()
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
    db.dispose()


def test_a_malformed_url_or_unknown_driver_names_the_setting():
    with pytest.raises(DatabaseUnavailable, match=r"paths\.database_url is not a valid SQLAlchemy URL"):
        Database("not a url")
    with pytest.raises(DatabaseUnavailable, match=r"paths\.database_url .*no usable driver"):
        Database("nosuchdb+driver://host/db")


def test_the_command_line_reports_an_unreachable_database_in_one_line(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("KBCHAT_PATHS__DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("KBCHAT_PATHS__DATABASE_URL", f"postgresql://kbchat@127.0.0.1:{unused_port()}/kbchat")
    assert kbchat_main(["kb", "list"]) == 2
    assert any("cannot connect to paths.database_url postgresql+psycopg://kbchat@127.0.0.1:" in r.getMessage()
               for r in caplog.records)
