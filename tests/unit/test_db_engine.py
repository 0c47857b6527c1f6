import threading

from sqlalchemy import select

from server.db import Database
from server.db.models import SCHEMA_VERSION, SchemaVersion


def test_create_tables_is_idempotent_and_records_the_schema_version(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'info.db'}")
    db.create_tables()
    db.create_tables()
    with db.session() as session:
        rows = session.scalars(select(SchemaVersion)).all()
    assert [(r.id, r.version) for r in rows] == [(1, SCHEMA_VERSION)]


def test_processes_creating_a_new_database_at_once_do_not_fail(tmp_path):
    url = f"sqlite:///{tmp_path / 'info.db'}"
    barrier, errors = threading.Barrier(6), []

    def create() -> None:
        db = Database(url)
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
    with Database(url).session() as session:
        assert len(session.scalars(select(SchemaVersion)).all()) == 1
