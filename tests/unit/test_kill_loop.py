"""Crash safety, proven: a process ingesting (or rebuilding) a knowledge base is SIGKILLed at random moments.

After every kill, the start-up repair runs and then the database and the index must agree: no chunk in
the index that no file row lists, no file marked indexed without its chunks, counts equal, and the file
indexed before the kills still found by vector and BM25 search. Re-running the batch then completes it.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from server.db import kb_repository as repo
from server.knowledge_base.maintenance import reconcile

logger = logging.getLogger(__name__)
KILLS = 20
FILES = 5
# One writer process, as `kbchat kb add` / `kbchat kb rebuild` are; the batch's words change every round, so
# every round embeds and indexes anew (and re-ingests files the previous rounds left).
WRITER = textwrap.dedent("""
    import sys
    from configs import Settings
    from server.db.engine import Database
    from server.knowledge_base.manager import KnowledgeBaseManager

    root, cache, kb, action, round_, count = sys.argv[1:]
    settings = Settings(paths={"data_root": root, "cache_dir": cache})
    manager = KnowledgeBaseManager(settings, Database(settings.paths.database_url))
    if action == "rebuild":
        manager.rebuild(kb)
    else:
        words = ["orchard", "harbour", "granite", "lantern", "meadow", "copper", "falcon", "glacier"]
        files = []
        for n in range(int(count)):
            paragraphs = [f"Section {p} of report {n}, round {round_}: the {words[(n + p) % 8]} survey found "
                          f"{int(round_) * 7 + p} items near the {words[(n + 2 * p) % 8]} site." for p in range(12)]
            files.append((f"report{n}.txt", "\\n\\n".join(paragraphs).encode()))
        results = manager.add_files(kb, files, override=True)
        assert all(r.status == "indexed" for r in results), results
    print("done", flush=True)
""")


def run_writer(paths, env: dict[str, str], kb: str, action: str, round_: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(paths[0]), str(paths[1]), kb, action, str(round_), str(FILES)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})


def assert_consistent(manager, kb: str) -> None:
    reconcile(manager, kb)  # what the API and gRPC server do at start-up
    row = manager.kb_row(kb)
    store = manager.pool.get(kb)
    recorded = manager.db.run(repo.doc_files, row.id)
    assert store.doc_ids() == set(recorded), "the index and the database list different chunks"
    for info in manager.list_files(kb):
        chunks = sum(1 for name in recorded.values() if name == info.file_name)
        assert chunks == info.chunk_count, info
        if info.status == "indexed":
            assert chunks > 0, info
    assert manager.get_kb(kb).chunk_count == len(store) == len(recorded)
    for mode in ("vector", "bm25"):
        hits = manager.search(kb, "baseline notes about the lighthouse keeper", top_k=3, mode=mode)
        assert hits and hits[0].metadata["source"] == "baseline.txt", (mode, hits)


@pytest.mark.timeout(1800)
def test_random_kills_while_writing_leave_database_and_index_in_agreement(tmp_path, backend_manager, backend_env):
    """On FAISS and on pgvector (conftest.PROCESS_BACKENDS); the writers get the backend through their environment."""
    manager = backend_manager
    paths = (manager.settings.paths.data_root, tmp_path / "kill-cache")
    manager.create_kb("k")
    manager.add_files("k", [("baseline.txt", b"Baseline notes about the lighthouse keeper and his logbook.")])
    # How long an uninterrupted round of each kind takes here, so that the kills fall across its whole length.
    duration = {}
    for action in ("add", "rebuild"):
        started = time.monotonic()
        writer = run_writer(paths, backend_env, "k", action, 0)
        out, _ = writer.communicate(timeout=600)
        assert writer.returncode == 0, out
        duration[action] = time.monotonic() - started
        assert_consistent(manager, "k")

    rng = random.Random(20261202)
    killed = 0
    for round_ in range(1, KILLS + 1):
        action = "rebuild" if round_ % 4 == 0 else "add"
        writer = run_writer(paths, backend_env, "k", action, round_)
        time.sleep(rng.uniform(0.05, 0.95) * duration[action])
        if writer.poll() is None:
            writer.send_signal(signal.SIGKILL)
            killed += 1
        out, _ = writer.communicate(timeout=600)
        assert writer.returncode in (0, -signal.SIGKILL), out
        assert_consistent(manager, "k")
    logger.info("writers killed: %d of %d; uninterrupted rounds took %s s", killed, KILLS, duration)
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} writers were still running when killed"

    final = run_writer(paths, backend_env, "k", "add", KILLS + 1)
    out, _ = final.communicate(timeout=600)
    assert final.returncode == 0, out
    assert_consistent(manager, "k")
    files = {f.file_name: f.status for f in manager.list_files("k")}
    assert files == {"baseline.txt": "indexed", **{f"report{n}.txt": "indexed" for n in range(FILES)}}
