"""Every vector store kind (FAISS files, pgvector on the test PostgreSQL, milvus on a milvus-lite file): search and scores, deletion by file,
persistence, crash-safe saves, model checks; and the pool."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from server.knowledge_base.bm25 import TOKENS_VERSION
from server.knowledge_base.store_pool import StorePool
from server.knowledge_base.vector_store import (
    EmbedModelMismatch,
    FaissStore,
    StoreOptions,
    StoreUnreadable,
    VectorStore,
    check_kind,
    open_store,
)
from server.knowledge_base.vector_store import versions
from server.knowledge_base.vector_store.milvus_store import dispose_clients
from server.knowledge_base.vector_store.pgvector_store import dispose_engines
from server.errors import InvalidInput

DIM = 8


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


@pytest.fixture(params=["faiss", "pgvector", "milvus"])
def make_store(request, tmp_path):
    """Opens the store of knowledge base 'kb' under a folder, of each kind in turn."""
    options = StoreOptions()
    if request.param == "pgvector":
        options = StoreOptions(pgvector_url=request.getfixturevalue("pg_url"))
    if request.param == "milvus":
        options = StoreOptions(milvus_uri=str(tmp_path / "milvus.db"))

    def make(tmp_path, model: str = "model-a") -> VectorStore:
        return open_store(request.param, tmp_path / "vs", "kb", model, options)

    yield make
    dispose_engines()
    dispose_clients()


def fill(store: VectorStore) -> None:
    docs = [
        ("a0", "apples grow on trees", {"source": "a.txt", "chunk_index": 0}),
        ("a1", "apple pie recipe", {"source": "a.txt", "chunk_index": 1}),
        ("b0", "bananas are yellow", {"source": "b.txt", "chunk_index": 0}),
    ]
    store.add(docs, np.stack([unit(1, 0), unit(1, 1), unit(0, 1)]))


def test_vector_search_ranks_by_cosine_and_reports_max_zero_cosine(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.add([("neg", "opposite", {"source": "c.txt"})], unit(-1, 0)[None, :])
    hits = store.vector_search(unit(1, 0), 10)
    assert [d.doc_id for d, _ in hits] == ["a0", "a1", "b0", "neg"]
    scores = dict((d.doc_id, s) for d, s in hits)
    assert scores["a0"] == pytest.approx(1.0, abs=1e-6)
    assert scores["a1"] == pytest.approx(np.sqrt(0.5), abs=1e-6)
    assert scores["b0"] == pytest.approx(0.0, abs=1e-6)
    assert scores["neg"] == 0.0  # cosine -1 is clamped to 0


def test_vector_search_restricted_to_one_file(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    hits = store.vector_search(unit(1, 0), 5, source="b.txt")
    assert [d.doc_id for d, _ in hits] == ["b0"]
    assert store.vector_search(unit(1, 0), 5, source="missing.txt") == []


def test_delete_source_removes_every_chunk_of_a_file(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    removed = store.delete_source("a.txt")
    assert sorted(removed) == ["a0", "a1"]
    assert [d.doc_id for d, _ in store.vector_search(unit(1, 0), 5)] == ["b0"]
    assert store.bm25_search("apple", 5) == []
    assert store.sources() == {"b.txt"}


def test_update_replaces_text_and_vector_but_keeps_doc_id_and_metadata(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    assert store.bm25_search("bananas", 5)[0][0].doc_id == "b0"  # BM25 built (and its tokens kept) first
    store.update("b0", "cherries are red", unit(1, 0))
    doc = store.get("b0")
    assert doc.text == "cherries are red" and doc.metadata == {"source": "b.txt", "chunk_index": 0}
    assert store.bm25_search("cherries", 5)[0][0].doc_id == "b0"
    assert store.bm25_search("bananas", 5) == []
    top = store.vector_search(unit(1, 0), 2)
    assert {d.doc_id for d, _ in top} == {"a0", "b0"}


def test_saved_store_loads_with_docs_vectors_and_bm25(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.save()
    again = make_store(tmp_path)
    assert len(again) == 3 and again.dim == DIM
    assert [d.doc_id for d, _ in again.vector_search(unit(0, 1), 1)] == ["b0"]
    assert again.bm25_search("bananas yellow", 5)[0][0].doc_id == "b0"
    assert [d.doc_id for d in again.docs_for_source("a.txt")] == ["a0", "a1"]
    # What the chunks say is looked up on letters and digits alone, whatever the case and separators.
    assert again.mentions("Apple-Pie") and again.mentions("YELLOW") and not again.mentions("cherries")
    # New ids never reuse old ones after a reload.
    again.add([("c0", "cherry", {"source": "c.txt"})], unit(0, 0, 1)[None, :])
    assert again.get("c0").id > max(again.get(d).id for d in ("a0", "a1", "b0"))


def test_sidecar_records_model_and_dimension(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.save()
    current = (tmp_path / "vs" / "CURRENT").read_text()
    sidecar = json.loads((tmp_path / "vs" / current / "store.json").read_text())
    assert sidecar["embed_model"] == "model-a" and sidecar["dim"] == DIM and sidecar["count"] == 3


def test_loading_with_another_embedding_model_is_refused(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.save()
    with pytest.raises(EmbedModelMismatch) as info:
        make_store(tmp_path, model="model-b")
    assert "model-a" in info.value.message and "--recreate-vs" in info.value.message
    assert info.value.status == 409


def test_vectors_of_another_dimension_are_refused(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    with pytest.raises(EmbedModelMismatch):
        store.add([("x", "x", {"source": "x.txt"})], np.ones((1, DIM + 1), dtype=np.float32))
    with pytest.raises(EmbedModelMismatch):
        store.vector_search(np.ones(DIM * 2, dtype=np.float32), 3)
    assert len(store) == 3


def test_crash_while_writing_the_index_keeps_the_previous_version(tmp_path, monkeypatch, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.save()
    store.delete_source("a.txt")
    store.add([("c0", "cherries", {"source": "c.txt"})], unit(0, 0, 1)[None, :])
    real_write = type(store).do_save_index

    def write_then_die(self, folder):
        real_write(self, folder)  # the index is written (for pgvector: committed) when the "crash" happens
        raise OSError("disk full")

    monkeypatch.setattr(type(store), "do_save_index", write_then_die)
    with pytest.raises(OSError):
        store.save()
    monkeypatch.undo()
    again = make_store(tmp_path)
    assert len(again) == 3 and again.get("a0") is not None and again.get("c0") is None
    assert [d.doc_id for d, _ in again.vector_search(unit(1, 0), 5)] == ["a0", "a1", "b0"]
    assert [p.name for p in (tmp_path / "vs").iterdir() if p.name.startswith(".tmp-")] == []
    # The next save starts from the saved version, whatever the failed one left behind.
    again.delete_source("b.txt")
    again.add([("d0", "dates", {"source": "d.txt"})], unit(0, 0, 0, 1)[None, :])
    again.save()
    last = make_store(tmp_path)
    assert sorted(last.doc_ids()) == ["a0", "a1", "d0"]
    assert [d.doc_id for d, _ in last.vector_search(unit(0, 0, 0, 1), 5)][0] == "d0"


def test_crash_before_switching_versions_keeps_the_previous_version(tmp_path, monkeypatch, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.save()
    store.delete_source("b.txt")
    real_replace = os.replace

    def fail_on_pointer(src, dst):
        if str(dst).endswith("CURRENT"):
            raise OSError("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(versions.os, "replace", fail_on_pointer)
    with pytest.raises(OSError):
        store.save()
    monkeypatch.undo()
    again = make_store(tmp_path)
    assert len(again) == 3 and again.get("b0") is not None
    # The next successful save wins and removes the leftovers, keeping only the version before it (a
    # process that began reading it may still be reading).
    again.delete_source("b.txt")
    again.save()
    folders = sorted(p.name for p in (tmp_path / "vs").iterdir() if p.is_dir())
    assert folders == [f"v{again.version - 1:06d}", f"v{again.version:06d}"]
    assert len(make_store(tmp_path)) == 2


def test_unreadable_store_names_the_fix(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.save()
    current = (tmp_path / "vs" / "CURRENT").read_text()
    (tmp_path / "vs" / current / "docs.jsonl").write_text("{not json\n")
    with pytest.raises(StoreUnreadable) as info:
        make_store(tmp_path)
    assert "--recreate-vs" in info.value.message


def test_bm25_index_is_rebuilt_when_missing_from_disk(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.save()
    current = (tmp_path / "vs" / "CURRENT").read_text()
    for path in (tmp_path / "vs" / current / "bm25").iterdir():
        if path.is_file():
            path.unlink()
    again = make_store(tmp_path)
    assert again.bm25_search("bananas", 3)[0][0].doc_id == "b0"


def test_bm25_index_tokenized_by_an_earlier_version_is_rebuilt(tmp_path, monkeypatch, make_store):
    import server.knowledge_base.bm25 as bm25

    monkeypatch.setattr(bm25, "word_parts", lambda word: [])  # tokenized as before version 2: words whole
    store = make_store(tmp_path)
    store.add([("c0", "SpearmanCorrelation,1Freq Ki67CD8frequencyUnstim", {"source": "c.csv", "chunk_index": 0}),
               ("d0", "Ki67 is a marker", {"source": "d.txt", "chunk_index": 0})],
              np.stack([unit(1, 0), unit(0, 1)]))
    store.save()
    meta = tmp_path / "vs" / (tmp_path / "vs" / "CURRENT").read_text().strip() / "bm25" / "bm25.json"
    saved = json.loads(meta.read_text())
    assert saved.pop("tokens") == TOKENS_VERSION
    meta.write_text(json.dumps(saved))  # as saved before the version was recorded
    monkeypatch.undo()
    again = make_store(tmp_path)
    assert {doc.doc_id for doc, _ in again.bm25_search("Ki67", 3)} == {"c0", "d0"}


def test_empty_store_saves_and_loads(tmp_path, make_store):
    store = make_store(tmp_path)
    fill(store)
    store.clear()
    store.save()
    again = make_store(tmp_path)
    assert len(again) == 0 and again.vector_search(unit(1), 3) == [] and again.bm25_search("apple", 3) == []


def test_unknown_vector_store_kind_is_invalid_input():
    with pytest.raises(InvalidInput):
        check_kind("chroma")


def test_pool_evicts_least_recently_used_store(tmp_path):
    opened = []

    def opener(kb):
        opened.append(kb)
        return open_store("faiss", tmp_path / kb, kb, "m")

    pool = StorePool(2, opener, tmp_path / ".locks")
    a = pool.get("a")
    pool.get("b")
    assert pool.get("a") is a  # hit: "a" becomes most recent
    c = pool.get("c")  # evicts "b"
    assert pool.get("a") is a and pool.get("c") is c  # both stayed loaded
    pool.get("b")
    assert opened == ["a", "b", "c", "b"]


def test_a_reader_whose_version_is_pruned_meanwhile_reads_the_new_one(tmp_path, monkeypatch, make_store):
    from server.knowledge_base.vector_store.base import VectorStore

    store = make_store(tmp_path)
    fill(store)
    store.save()
    real_load = VectorStore.load
    calls = []

    def load_while_others_save(self):
        calls.append(1)
        if len(calls) == 1:  # two saves of another process land while this one reads: its version is gone
            for n in range(2):
                monkeypatch.setattr(VectorStore, "load", real_load)
                writer = make_store(tmp_path)
                writer.add([(f"w{n}", f"written meanwhile {n}", {"source": f"w{n}.txt"})], unit(0, 0, 1)[None, :])
                writer.save()
                monkeypatch.setattr(VectorStore, "load", load_while_others_save)
            raise StoreUnreadable("the version folder vanished")
        return real_load(self)

    monkeypatch.setattr(VectorStore, "load", load_while_others_save)
    reader = make_store(tmp_path)
    assert len(calls) == 2 and len(reader) == 5
    # An unreadable store that nobody saved meanwhile is reported at once.
    calls.clear()

    def unreadable(self):
        calls.append(1)
        raise StoreUnreadable("broken")

    monkeypatch.setattr(VectorStore, "load", unreadable)
    with pytest.raises(StoreUnreadable):
        make_store(tmp_path)
    assert len(calls) == 1
