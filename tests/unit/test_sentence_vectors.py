"""Sentence vectors: a chunk is found by its best sentence, in memory, across saves and through the manager."""

from __future__ import annotations

import numpy as np
import pytest

from configs import Settings
from server.db.engine import Database
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.retriever import FusionParams, retrieve
from server.knowledge_base.sentences import sentence_spans, sentences
from server.knowledge_base.vector_store import open_store
from server.knowledge_base.vector_store.sentence_index import SentenceIndex

DIM = 4


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def test_the_index_ranks_chunks_by_their_best_sentence_and_filters_by_chunk():
    index = SentenceIndex()
    index.add(1, np.stack([unit(0, 1), unit(1, 1)]))  # best cosine with (1, 0): 0.707
    index.add(2, np.stack([unit(0, 0, 1), unit(1, 0), unit(1, 0.1)]))  # best: 1.0, twice over
    index.add(3, np.stack([unit(0, 0, 0, 1)]))
    hits = index.search(unit(1, 0), 3)
    assert [owner for owner, _ in hits] == [2, 1, 3]
    assert hits[0][1] == pytest.approx(1.0) and hits[1][1] == pytest.approx(np.sqrt(0.5))
    assert [owner for owner, _ in index.search(unit(1, 0), 3, allowed={1, 3})] == [1, 3]
    assert index.search(unit(1, 0), 1) == [(2, pytest.approx(1.0))]
    assert index.scores(2, unit(1, 0)) == pytest.approx([0.0, 1.0, 0.995], abs=1e-3)
    index.remove([2])
    assert [owner for owner, _ in index.search(unit(1, 0), 3)] == [1, 3] and len(index) == 3


def make_store(tmp_path):
    return open_store("faiss", tmp_path / "vs", "kb", "model-a")


def test_a_store_keeps_sentence_vectors_across_saves_edits_and_deletes(tmp_path):
    store = make_store(tmp_path)
    docs = [("a", "apples. pears.", {"source": "a.txt"}), ("b", "bananas.", {"source": "b.txt"})]
    # The chunk vectors say nothing about (1, 0); only a's second sentence matches it.
    store.add(docs, np.stack([unit(0, 1), unit(0, 0, 1)]),
              [np.stack([unit(0, 1), unit(1, 0)]), np.stack([unit(0, 0, 1)])])
    assert [d.doc_id for d, _ in store.sentence_search(unit(1, 0), 5)] == ["a", "b"]
    store.save()

    reopened = make_store(tmp_path)
    assert reopened.sentence_count == 3
    assert reopened.sentence_scores("a", unit(1, 0)).round(3).tolist() == [0.0, 1.0]
    assert [d.doc_id for d, _ in reopened.sentence_search(unit(1, 0), 5, source="b.txt")] == ["b"]
    hits = retrieve(reopened, "x", unit(1, 0), top_k=1, mode="vector", score_threshold=0.0, params=FusionParams())
    assert [h.doc_id for h in hits] == ["a"]  # found by its sentence though its chunk vector is orthogonal

    reopened.update("a", "plums.", unit(0, 1), np.stack([unit(0, 0, 0, 1)]))
    assert reopened.sentence_scores("a", unit(1, 0)).tolist() == [0.0]
    reopened.delete_source("b.txt")
    assert reopened.sentence_count == 1 and reopened.sentence_scores("b", unit(1, 0)) is None
    with pytest.raises(ValueError):
        reopened.add([("c", "c", {"source": "c.txt"})], unit(1)[None, :], [])


def test_a_version_saved_without_sentence_vectors_loads_and_searches_by_chunk_vectors(tmp_path):
    store = make_store(tmp_path)
    store.add([("a", "apples.", {"source": "a.txt"})], unit(1, 0)[None, :])
    store.save()
    reopened = make_store(tmp_path)
    assert reopened.sentence_count == 0
    hits = retrieve(reopened, "apples", unit(1, 0), top_k=1, mode="hybrid", score_threshold=0.0, params=FusionParams())
    assert [h.doc_id for h in hits] == ["a"]


@pytest.fixture
def manager_factory(tmp_path, tmp_path_factory):
    made = []

    def make(**kb):
        cache = tmp_path_factory.getbasetemp() / "kb-embedding-cache"
        settings = Settings(paths={"data_root": tmp_path / str(len(made)), "cache_dir": cache}, kb=kb)
        db = Database(settings.paths.database_url)
        db.create_tables()
        made.append((KnowledgeBaseManager(settings, db), db))
        return made[-1][0]

    yield make
    for mgr, db in made:
        mgr.close()
        db.dispose()


LEASE = ("The tenant pays the rent on the first day of each month. Pets of any kind are not allowed in the flat. "
         "The deposit is returned within thirty days after the tenant moves out.").encode()


def test_added_and_edited_chunks_get_sentence_vectors_unless_turned_off(manager_factory):
    manager = manager_factory()
    manager.create_kb("docs")
    manager.add_files("docs", [("lease.txt", LEASE)])
    store = manager.pool.get("docs")
    chunk = manager.list_chunks("docs", "lease.txt")[0]
    assert store.sentence_count == len(sentences(chunk.text)) == 3
    query = manager.embeddings.embed_query(None, "when do I get my deposit back?")
    scores = store.sentence_scores(chunk.doc_id, query)
    assert int(np.argmax(scores)) == 2  # the deposit sentence, in text order
    manager.update_chunk("docs", chunk.doc_id, "Cats and dogs are allowed in the flat if the landlord agrees. Smoking is not allowed anywhere in the building.")
    assert store.sentence_count == 2

    plain = manager_factory(sentence_vectors=False)
    plain.create_kb("docs")
    plain.add_files("docs", [("lease.txt", LEASE)])
    assert plain.pool.get("docs").sentence_count == 0
    assert plain.search("docs", "deposit back", top_k=1)[0].metadata["source"] == "lease.txt"


def test_sentences_are_the_spans_evidence_is_chosen_in():
    text = ("第十九条 劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，试用期不得超过二个月。\n\n"
            "同一用人单位与同一劳动者只能约定一次试用期，以完成一定工作任务为期限的，不得约定试用期。")
    assert sentences(text) == [text[s:e].strip() for s, e in sentence_spans(text)]
    assert len(sentences(text)) == 2
