"""Concurrency soak: 8 threads here and 2 other processes upload, delete, edit chunks, re-ingest and search
one knowledge base for a bounded time. Nothing may raise but the refusals a race can cause (a file another
worker deleted a moment before), and afterwards the database, the FAISS index and BM25 agree without repair.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import pytest

from server.db import kb_repository as repo
from server.errors import NotFound
from server.knowledge_base.maintenance import reconcile

logger = logging.getLogger(__name__)
SECONDS = 30.0
THREADS = 8
NAMES = [f"memo{n}.txt" for n in range(10)]
WORDS = ["apricot", "basalt", "cobalt", "dynamo", "estuary", "fjord", "gazelle", "hemlock", "indigo", "juniper"]

# Another process, as `kbchat kb add` next to a running API is: adds, deletes and searches until the deadline.
OTHER_PROCESS = textwrap.dedent("""
    import random, sys, time
    from configs import Settings
    from server.db.engine import Database
    from server.errors import NotFound
    from server.knowledge_base.manager import KnowledgeBaseManager

    root, cache, kb, seconds, seed = sys.argv[1:]
    settings = Settings(paths={"data_root": root, "cache_dir": cache})
    manager = KnowledgeBaseManager(settings, Database(settings.paths.database_url))
    rng, deadline, done = random.Random(int(seed)), time.monotonic() + float(seconds), 0
    while time.monotonic() < deadline:
        n = rng.randrange(10)
        name = f"memo{n}.txt"
        action = rng.choice(["add", "add", "delete", "search"])
        try:
            if action == "add":
                text = f"Memo {n} from process {seed}: the {['apricot', 'basalt', 'cobalt', 'dynamo', 'estuary', 'fjord', 'gazelle', 'hemlock', 'indigo', 'juniper'][n]} file, version {done}."
                manager.add_files(kb, [(name, text.encode())], override=True)
            elif action == "delete":
                manager.delete_file(kb, name, delete_content=True)
            else:
                manager.search(kb, "memo about the cobalt file", top_k=5, mode=rng.choice(["vector", "bm25", "hybrid"]))
        except NotFound:
            pass
        done += 1
    manager.close()
    print("operations", done, flush=True)
""")


def memo(n: int, worker: str, version: int) -> tuple[str, bytes]:
    return NAMES[n], f"Memo {n} from {worker}: the {WORDS[n]} file, version {version}.".encode()


@pytest.mark.timeout(600)
def test_threads_and_processes_working_on_one_knowledge_base_keep_it_consistent(manager):
    kb = "soak"
    manager.create_kb(kb)
    manager.add_files(kb, [memo(n, "setup", 0) for n in range(len(NAMES))])
    paths = (str(manager.settings.paths.data_root), str(manager.settings.paths.cache_dir))
    others = [subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, *paths, kb, str(SECONDS), str(seed)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for seed in (1, 2)]
    deadline = time.monotonic() + SECONDS
    errors: list[str] = []
    counts: Counter[str] = Counter()

    def work(worker: int) -> None:
        rng = random.Random(worker)
        version = 0
        while time.monotonic() < deadline:
            n = rng.randrange(len(NAMES))
            action = rng.choice(["add", "delete", "edit", "reingest", "search", "search"])
            try:
                if action == "add":
                    version += 1
                    manager.add_files(kb, [memo(n, f"thread {worker}", version)], override=True)
                elif action == "delete":
                    manager.delete_file(kb, NAMES[n], delete_content=True)
                elif action == "edit":
                    chunks = manager.list_chunks(kb, NAMES[n])
                    if chunks:
                        manager.update_chunk(kb, chunks[0].doc_id, f"Edited memo {n}: the {WORDS[n]} file.")
                elif action == "reingest":
                    manager.reingest_file(kb, NAMES[n])
                else:
                    manager.search(kb, f"the {WORDS[n]} memo", top_k=5, mode=rng.choice(["vector", "bm25", "hybrid"]))
                counts[action] += 1
            except NotFound:
                counts["not found (raced)"] += 1
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(f"{action} {NAMES[n]}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outputs = [proc.communicate(timeout=300)[0] for proc in others]
    logger.info("operations in %.0f s: threads %s; processes %s", SECONDS, dict(counts), outputs)
    assert errors == [], errors[:10]
    assert all(proc.returncode == 0 for proc in others), outputs
    assert sum(counts.values()) > 50

    # Consistent without any repair: the start-up check finds nothing to do.
    assert reconcile(manager, kb) == {"orphan_chunks": [], "lost_files": []}
    store = manager.pool.get(kb)
    recorded = manager.db.run(repo.doc_files, manager.kb_row(kb).id)
    assert store.doc_ids() == set(recorded)
    manager.search(kb, "memo", mode="bm25")  # BM25 follows the chunks it was last searched with
    assert len(store) == store.do_count() == len(store._bm25) == len(recorded) == manager.get_kb(kb).chunk_count
    files = manager.list_files(kb)
    assert sum(f.chunk_count for f in files) == len(recorded)
    assert all(f.status == "indexed" for f in files), files
    for info in files:
        n = NAMES.index(info.file_name)
        assert info.file_name in {h.metadata["source"] for h in manager.search(kb, WORDS[n], top_k=10, mode="bm25")}
