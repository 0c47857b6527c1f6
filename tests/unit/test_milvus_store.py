"""What only the milvus store has: a collection per knowledge base, versioned rows, rebuilds, a milvus-lite file
that outlives its process, and errors naming its setting. The behaviour it shares with FAISS is tested in
test_vector_store.py."""

from __future__ import annotations

import subprocess
import sys
from functools import partial

import numpy as np
import pytest

from server.errors import InvalidInput
from server.knowledge_base.vector_store import StoreOptions, check_kind
from server.knowledge_base.vector_store.milvus_store import (
    MilvusStore,
    VectorDatabaseUnavailable,
    client_for,
    collection_name,
    dispose_clients,
)
from tests.pg_support import unused_port
from tests.unit import store_support
from tests.unit.store_support import DIM, REPO, unit


@pytest.fixture
def options(tmp_path):
    yield StoreOptions(milvus_uri=str(tmp_path / "milvus.db"))
    dispose_clients()


open_kb = partial(store_support.open_kb, "milvus")
filled = partial(store_support.filled, "milvus")


def rows(options: StoreOptions, kb: str = "kb") -> list[tuple[int, int, int | None]]:
    """(chunk id, added_in, removed_in or None) of every row the KB's collection holds."""
    client = client_for(str(options.milvus_uri), None)
    found = client.query(collection_name(kb, DIM), filter="chunk_id >= 0",
                         output_fields=["chunk_id", "added_in", "removed_in"])
    return sorted((r["chunk_id"], r["added_in"], None if r["removed_in"] >= 2**62 else r["removed_in"])
                  for r in found)


def test_each_kb_has_its_own_collection_whatever_its_name(tmp_path, options):
    names = ["kb", "知识库", "my.notes-2"]
    for n, kb in enumerate(names):
        store = open_kb(tmp_path, options, kb)
        store.add([(f"{kb}-0", kb, {"source": "x.txt"})], unit(1, n)[None, :])
        store.save()
    collections = client_for(str(options.milvus_uri), None).list_collections()
    assert sorted(collections) == sorted(collection_name(kb, DIM) for kb in names)
    assert all(name.isascii() and name.replace("_", "").isalnum() for name in collections)
    for kb in names:
        assert [d.doc_id for d, _ in open_kb(tmp_path, options, kb).vector_search(unit(1, 0), 5)] == [f"{kb}-0"]


def test_search_restricted_to_a_file_with_quotes_in_its_name(tmp_path, options):
    store = open_kb(tmp_path, options)
    odd = 'say "hi" \\ bye.txt'
    store.add([("q0", "quoted", {"source": odd}), ("q1", "quoted too", {"source": odd}),
               ("p0", "plain", {"source": "plain.txt"})], np.stack([unit(0, 1), unit(1, 1), unit(1, 0)]))
    store.save()
    again = open_kb(tmp_path, options)
    assert [d.doc_id for d, _ in again.vector_search(unit(1, 0), 5, source=odd)] == ["q1", "q0"]
    assert [d.doc_id for d, _ in again.vector_search(unit(1, 0), 5, source="plain.txt")] == ["p0"]


def test_a_reader_keeps_its_version_while_a_writer_saves_the_next(tmp_path, options):
    filled(tmp_path, options)
    reader = open_kb(tmp_path, options)
    writer = open_kb(tmp_path, options)
    writer.delete_source("a.txt")
    writer.add([("c0", "cherries", {"source": "c.txt"})], unit(1, 0.1)[None, :])
    writer.save()
    assert [d.doc_id for d, _ in reader.vector_search(unit(1, 0), 5)] == ["a0", "b0"]
    assert [d.doc_id for d, _ in open_kb(tmp_path, options).vector_search(unit(1, 0), 5)] == ["c0", "b0"]
    # a0's row stays for the reader of version 1 until the save after next.
    assert rows(options) == [(1, 1, 2), (2, 1, None), (3, 2, None)]
    writer.add([("d0", "dates", {"source": "d.txt"})], unit(0, 0, 1)[None, :])
    writer.save()
    assert rows(options) == [(2, 1, None), (3, 2, None), (4, 3, None)]


def test_a_rebuild_replaces_every_vector_and_may_reuse_ids(tmp_path, options):
    filled(tmp_path, options)
    rebuilt = open_kb(tmp_path, options, fresh=True)
    rebuilt.add([("z0", "zucchini", {"source": "z.txt"})], unit(0, 0, 1)[None, :])
    rebuilt.save()
    again = open_kb(tmp_path, options)
    assert again.doc_ids() == {"z0"} and [d.doc_id for d, _ in again.vector_search(unit(1, 0), 5)] == ["z0"]
    assert rows(options) == [(1, 1, 2), (1, 2, None), (2, 1, 2)]


# Another process opening the KB's store and searching it, as `kbchat kb` commands do.
SEARCH_IN_ANOTHER_PROCESS = (
    "import sys, pathlib, numpy as np\n"
    "from server.knowledge_base.vector_store import StoreOptions, open_store\n"
    "options = StoreOptions(milvus_uri=sys.argv[2])\n"
    "store = open_store('milvus', pathlib.Path(sys.argv[1]), 'kb', 'model-a', options)\n"
    "q = np.zeros(8, dtype=np.float32); q[1] = 1\n"
    "print(len(store), [(d.doc_id, round(s, 3)) for d, s in store.vector_search(q, 2)])\n"
)


def search_in_another_process(tmp_path, options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SEARCH_IN_ANOTHER_PROCESS, str(tmp_path / "kb"),
                           str(options.milvus_uri)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False, env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"})


def test_the_milvus_lite_file_is_searched_by_the_next_process(tmp_path, options):
    filled(tmp_path, options)
    dispose_clients()  # milvus-lite serves one process at a time: this one lets go, as at a restart
    out = search_in_another_process(tmp_path, options)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "2 [('b0', 1.0), ('a0', 0.0)]"


def test_a_second_process_on_a_held_milvus_lite_file_gets_an_error_that_says_why(tmp_path, options):
    # milvus-lite locks its folder for the process that opened it: several writers (or API replicas) on a
    # milvus knowledge base need a Milvus server, so the writer tests of test_store_processes.py skip it.
    filled(tmp_path, options)  # this process holds the file, as a running API server would
    out = search_in_another_process(tmp_path, options)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "VectorDatabaseUnavailable" in last and "kb.milvus_uri" in last, out.stderr
    assert "serves one process at a time; for several, use a Milvus server" in last, out.stderr
    assert [d.doc_id for d, _ in open_kb(tmp_path, options).vector_search(unit(0, 1), 2)] == ["b0", "a0"]


def test_a_deleted_kb_takes_its_collections_with_it(tmp_path, options):
    filled(tmp_path, options, "gone")
    filled(tmp_path, options, "kept")
    MilvusStore.discard_saved(options, "gone")
    assert client_for(str(options.milvus_uri), None).list_collections() == [collection_name("kept", DIM)]


@pytest.mark.parametrize("uri", [None, "", "vectors/milvus.sqlite", "ftp://host/x"])
def test_an_unusable_milvus_uri_is_refused_naming_the_setting(uri):
    with pytest.raises(InvalidInput, match=r"kb\.milvus_uri"):
        check_kind("milvus", StoreOptions(milvus_uri=uri))
    assert check_kind("milvus", StoreOptions(milvus_uri="http://localhost:19530")) == "milvus"


def test_an_unreachable_milvus_server_is_a_503_naming_the_setting(tmp_path):
    options = StoreOptions(milvus_uri=f"http://127.0.0.1:{unused_port()}", milvus_token="root:s3cret")
    assert "s3cret" not in repr(options)
    store = open_kb(tmp_path, options)
    store.add([("a0", "apples", {"source": "a.txt"})], unit(1, 0)[None, :])
    with pytest.raises(VectorDatabaseUnavailable, match=r"kb\.milvus_uri") as caught:
        store.save()
    assert caught.value.status == 503 and "s3cret" not in caught.value.message
    assert not (tmp_path / "kb" / "CURRENT").exists()
    dispose_clients()
