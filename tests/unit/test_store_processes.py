"""Several processes writing one knowledge base: none loses another's chunks, and readers see new versions.

Each test that writes from several processes runs on FAISS and on pgvector (see ``backend_manager``). milvus-lite
serves one process at a time by design, so for it a second process must get an error that says so
(test_milvus_store.py); several writers need a Milvus server, which these tests cannot start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from server.knowledge_base.store_pool import WriterLock

# A second process, as `kbchat kb add` is: its own settings, database connection and store pool.
ADD_FILES = textwrap.dedent("""
    import sys
    from pathlib import Path
    from configs import Settings
    from server.db.engine import Database
    from server.knowledge_base.manager import KnowledgeBaseManager

    root, cache, kb, *names = sys.argv[1:]
    settings = Settings(paths={"data_root": root, "cache_dir": cache})
    db = Database(settings.paths.database_url)
    manager = KnowledgeBaseManager(settings, db)
    files = [(name, f"{name} holds the word {Path(name).stem} and nothing else of note.".encode()) for name in names]
    results = manager.add_files(kb, files)
    assert all(r.status == "indexed" for r in results), results
    manager.close()
    db.dispose()
""")


class Paths(NamedTuple):
    """Where the other processes find the knowledge bases of the ``manager`` fixture."""

    data_root: Path
    cache_dir: Path
    env: dict[str, str]


@pytest.fixture
def manager(backend_manager):
    """Every test here runs on each store that several processes may write (conftest.PROCESS_BACKENDS)."""
    return backend_manager


@pytest.fixture
def paths(manager, backend_env) -> Paths:
    """The data root, embedding cache and backend of the ``manager`` fixture, for the other processes."""
    return Paths(manager.settings.paths.data_root, manager.settings.paths.cache_dir, backend_env)


def add_in_process(paths: Paths, kb, *names) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ADD_FILES, str(paths.data_root), str(paths.cache_dir), kb, *names],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **paths.env})


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out


def doc(name: str) -> tuple[str, bytes]:
    return name, f"{name} holds the word {name.split('.')[0]} and nothing else of note.".encode()


def sources(manager, kb: str, query: str) -> set[str]:
    return {h.metadata["source"] for h in manager.search(kb, query, top_k=20, mode="bm25")}


def test_a_write_from_another_process_survives_the_next_write_here(manager, paths):
    manager.create_kb("t")
    manager.add_files("t", [doc("alpha.txt")])
    assert sources(manager, "t", "alpha") == {"alpha.txt"}  # the store is loaded and cached here
    finish(add_in_process(paths, "t", "bravo.txt"))
    # A reader here sees the other process's version without a restart ...
    assert "bravo.txt" in sources(manager, "t", "bravo")
    # ... and a write here starts from it instead of overwriting it with the cached store.
    manager.add_files("t", [doc("charlie.txt")])
    for name in ("alpha", "bravo", "charlie"):
        assert f"{name}.txt" in sources(manager, "t", name)
    store = manager.pool.get("t")
    files = manager.list_files("t")
    assert {f.file_name for f in files} == {"alpha.txt", "bravo.txt", "charlie.txt"}
    assert len(store) == sum(f.chunk_count for f in files) == manager.get_kb("t").chunk_count


def test_processes_writing_at_once_keep_every_file(manager, paths):
    manager.create_kb("t")
    manager.add_files("t", [doc("seed.txt")])
    procs = [add_in_process(paths, "t", *(f"p{p}f{i}.txt" for i in range(3))) for p in range(2)]
    for i in range(3):
        manager.add_files("t", [doc(f"localf{i}.txt")])
    for proc in procs:
        finish(proc)
    expected = {"seed.txt", *(f"p{p}f{i}.txt" for p in range(2) for i in range(3)), *(f"localf{i}.txt" for i in range(3))}
    store = manager.pool.get("t")
    assert store.sources() == expected
    assert {f.file_name for f in manager.list_files("t")} == expected
    assert len(store) == manager.get_kb("t").chunk_count


def test_the_writer_lock_excludes_other_processes_and_is_reentrant_in_a_thread(tmp_path):
    lock = WriterLock(tmp_path / "locks" / "kb.lock")
    probe = textwrap.dedent(f"""
        import fcntl, os
        fd = os.open({str(tmp_path / 'locks' / 'kb.lock')!r}, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("free")
        except BlockingIOError:
            print("held")
    """)

    def other_process_sees() -> str:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout.strip()

    with lock:
        with lock:  # the same thread again: no deadlock
            assert other_process_sees() == "held"
        assert other_process_sees() == "held"  # still held by the outer level
    assert other_process_sees() == "free"
    # Another thread waits for the lock instead of sharing it.
    order: list[str] = []
    with lock:
        waiter = threading.Thread(target=lambda: (lock.__enter__(), order.append("waiter"), lock.__exit__()))
        waiter.start()
        time.sleep(0.2)
        order.append("holder")
    waiter.join(timeout=30)
    assert order == ["holder", "waiter"]


# A process killed after saving the index and before writing the database rows (as SIGKILL would).
KILLED_BETWEEN_SAVE_AND_RECORD = textwrap.dedent("""
    import os, sys
    from configs import Settings
    from server.db.engine import Database
    from server.knowledge_base import indexer
    from server.knowledge_base.manager import KnowledgeBaseManager

    root, cache, kb, name = sys.argv[1:]
    settings = Settings(paths={"data_root": root, "cache_dir": cache})
    manager = KnowledgeBaseManager(settings, Database(settings.paths.database_url))
    indexer.KBIndexer._record = lambda *args, **kwargs: os._exit(9)
    manager.add_files(kb, [(name, f"{name} is about zebras crossing rivers in the dry season.".encode())])
""")


def test_start_up_removes_chunks_a_killed_write_left_without_rows(manager, paths):
    manager.create_kb("t")
    manager.add_files("t", [doc("alpha.txt")])
    proc = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_SAVE_AND_RECORD, str(paths.data_root),
                           str(paths.cache_dir), "t", "zebra.txt"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **paths.env})
    assert proc.returncode == 9, proc.stderr
    # The index holds zebra.txt's chunks; the database has no row for the file, which its content
    # folder holds, so it is listed as pending (waiting to be indexed), and the counts disagree.
    assert "zebra.txt" in sources(manager, "t", "zebras")
    assert {f.file_name: f.status for f in manager.list_files("t")} == {"alpha.txt": "indexed", "zebra.txt": "pending"}
    assert len(manager.pool.get("t")) > manager.get_kb("t").chunk_count

    from server.knowledge_base.maintenance import reconcile_all

    report = reconcile_all(manager)
    assert len(report["t"]["orphan_chunks"]) >= 1 and report["t"]["lost_files"] == []
    assert "zebra.txt" not in sources(manager, "t", "zebras") and "alpha.txt" in sources(manager, "t", "alpha")
    assert len(manager.pool.get("t")) == manager.get_kb("t").chunk_count
    # A file whose chunks went missing is shown as needing to be added again, with no chunks counted.
    store = manager.pool.get("t")
    with manager.pool.writer_lock("t"):
        store.delete_source("alpha.txt")
        store.save()
    assert reconcile_all(manager)["t"]["lost_files"] == ["alpha.txt"]
    alpha = {f.file_name: f for f in manager.list_files("t")}["alpha.txt"]
    assert alpha.status == "error" and "add the file again" in alpha.error and alpha.chunk_count == 0
    assert reconcile_all(manager)["t"] == {"orphan_chunks": [], "lost_files": []}
    # Adding it again repairs it.
    manager.add_files("t", [doc("alpha.txt")], override=True)
    assert "alpha.txt" in sources(manager, "t", "alpha")
