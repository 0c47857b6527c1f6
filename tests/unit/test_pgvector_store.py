"""What only the pgvector store has: its HNSW index, versioned rows shared by processes, rebuilds, and
errors naming its setting. The behaviour it shares with FAISS is tested in test_vector_store.py."""

from __future__ import annotations

import subprocess
import sys
from functools import partial

import pytest
from sqlalchemy import create_engine, text

from server.errors import InvalidInput
from server.knowledge_base.vector_store import StoreOptions, check_kind
from server.knowledge_base.vector_store.pgvector_store import (
    VectorDatabaseUnavailable,
    dispose_engines,
    index_name,
    table_name,
)
from tests.pg_support import unused_port
from tests.unit import store_support
from tests.unit.store_support import DIM, REPO, unit


@pytest.fixture
def options(pg_url):
    yield StoreOptions(pgvector_url=pg_url)
    dispose_engines()


open_kb = partial(store_support.open_kb, "pgvector")
filled = partial(store_support.filled, "pgvector")


def rows(url: str, kb: str = "kb") -> list[tuple[int, int, int | None]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(text(f"SELECT id, added_in, removed_in FROM {table_name(DIM)} WHERE kb = :kb "
                                  "ORDER BY id, added_in"), {"kb": kb}).all()
    engine.dispose()
    return [tuple(r) for r in found]


def test_each_kb_has_an_hnsw_cosine_index_that_serves_its_searches(tmp_path, options, pg_url):
    filled(tmp_path, options, "kb")
    filled(tmp_path, options, "other")
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        definition = conn.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                                 {"n": index_name(DIM, "kb")})
        conn.exec_driver_sql("SET enable_seqscan = off")  # two rows: the planner would rightly scan them
        vector = "[" + ",".join(str(x) for x in unit(1, 0)) + "]"
        plan = "\n".join(conn.execute(text(
            f"EXPLAIN SELECT id FROM {table_name(DIM)} WHERE {table_name(DIM)}.kb = 'kb' AND added_in <= 1 "
            f"ORDER BY embedding <=> '{vector}' LIMIT 3")).scalars())
    engine.dispose()
    assert "USING hnsw (embedding vector_cosine_ops)" in definition and "WHERE" in definition
    assert index_name(DIM, "kb") in plan


def test_a_reader_keeps_its_version_while_a_writer_saves_the_next(tmp_path, options, pg_url):
    filled(tmp_path, options)
    reader = open_kb(tmp_path, options)
    writer = open_kb(tmp_path, options)
    writer.delete_source("a.txt")
    writer.add([("c0", "cherries", {"source": "c.txt"})], unit(1, 0.1)[None, :])
    writer.save()
    assert [d.doc_id for d, _ in reader.vector_search(unit(1, 0), 5)] == ["a0", "b0"]
    assert [d.doc_id for d, _ in open_kb(tmp_path, options).vector_search(unit(1, 0), 5)] == ["c0", "b0"]
    # a0's row stays for the reader of version 1 until the save after next.
    assert rows(pg_url) == [(1, 1, 2), (2, 1, None), (3, 2, None)]
    writer.add([("d0", "dates", {"source": "d.txt"})], unit(0, 0, 1)[None, :])
    writer.save()
    assert rows(pg_url) == [(2, 1, None), (3, 2, None), (4, 3, None)]


def test_a_rebuild_replaces_every_vector_and_may_reuse_ids(tmp_path, options, pg_url):
    filled(tmp_path, options)
    rebuilt = open_kb(tmp_path, options, fresh=True)
    rebuilt.add([("z0", "zucchini", {"source": "z.txt"})], unit(0, 0, 1)[None, :])
    rebuilt.save()
    again = open_kb(tmp_path, options)
    assert again.doc_ids() == {"z0"} and [d.doc_id for d, _ in again.vector_search(unit(1, 0), 5)] == ["z0"]
    assert rows(pg_url) == [(1, 1, 2), (1, 2, None), (2, 1, 2)]


def test_another_process_searches_what_was_saved(tmp_path, options, pg_url):
    filled(tmp_path, options)
    script = (
        "import sys, pathlib, numpy as np\n"
        "from server.knowledge_base.vector_store import StoreOptions, open_store\n"
        "options = StoreOptions(pgvector_url=sys.argv[2])\n"
        "store = open_store('pgvector', pathlib.Path(sys.argv[1]), 'kb', 'model-a', options)\n"
        "q = np.zeros(8, dtype=np.float32); q[1] = 1\n"
        "print(len(store), [(d.doc_id, round(s, 3)) for d, s in store.vector_search(q, 2)])\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "kb"), pg_url], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=False, env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2 [('b0', 1.0), ('a0', 0.0)]"


def test_pgvector_without_a_database_is_refused_naming_the_setting():
    with pytest.raises(InvalidInput, match=r"kb\.pgvector_url"):
        check_kind("pgvector", StoreOptions())
    assert check_kind("faiss", StoreOptions()) == "faiss"


def test_an_unreachable_pgvector_database_is_a_503_naming_the_setting(tmp_path):
    store = open_kb(tmp_path, StoreOptions(pgvector_url=f"postgresql://u:pw@127.0.0.1:{unused_port()}/x"))
    store.add([("a0", "apples", {"source": "a.txt"})], unit(1, 0)[None, :])
    with pytest.raises(VectorDatabaseUnavailable, match=r"kb\.pgvector_url") as caught:
        store.save()
    assert caught.value.status == 503 and "pw" not in caught.value.message
    dispose_engines()
