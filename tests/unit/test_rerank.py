"""The reranking stage against a real local service speaking the rerank wire formats."""

from __future__ import annotations

import pytest

from configs import Settings
from server.db.engine import Database
from server.knowledge_base.manager import KnowledgeBaseManager
from tests.fakes.fake_rerank import FakeRerank

DOCS = {
    "a.txt": "Bees make honey from the nectar of clover and lavender flowers.",
    "b.txt": "A compost heap should be turned every two weeks to stay aerobic.",
    "c.txt": "Honey bees swarm in late spring when the hive grows crowded.",
}


@pytest.fixture
def rerank():
    with FakeRerank() as server:
        yield server


def manager_with(tmp_path, rerank_settings):
    settings = Settings(paths={"data_root": tmp_path}, kb={"rerank": rerank_settings})
    db = Database(settings.paths.database_url)
    db.create_tables()
    manager = KnowledgeBaseManager(settings, db)
    manager.create_kb("bees")
    manager.add_files("bees", [(name, text.encode()) for name, text in DOCS.items()])
    return manager


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_search_reorders_the_candidates_by_the_rerank_service(tmp_path, rerank, path):
    manager = manager_with(tmp_path, {"kind": "api", "url": rerank.url + path, "model": "rr",
                                      "api_key": FakeRerank.api_key, "candidates": 3})
    try:
        query = "when do honey bees swarm in spring"
        hits = manager.search("bees", query, top_k=2, score_threshold=0.0)
        assert [h.metadata["source"] for h in hits] == ["c.txt", "a.txt"]
        assert [h.rank for h in hits] == [1, 2] and 0 <= hits[1].score < hits[0].score <= 1
        sent = rerank.requests[-1]
        assert sent["query"] == query and len(sent.get("documents") or sent["texts"]) == 3
        # The stage can be skipped per search (the evaluation compares both).
        plain = manager.search("bees", query, top_k=2, score_threshold=0.0, rerank=False)
        assert len(rerank.requests) == 1 and len(plain) == 2
    finally:
        manager.close()


def test_a_failing_rerank_service_keeps_the_first_ranking(tmp_path, rerank, caplog):
    manager = manager_with(tmp_path, {"kind": "api", "url": rerank.url + "/v1/rerank", "api_key": "wrong"})
    try:
        first = manager.search("bees", "compost heap", top_k=3, score_threshold=0.0, rerank=False)
        hits = manager.search("bees", "compost heap", top_k=3, score_threshold=0.0)
        assert [h.doc_id for h in hits] == [h.doc_id for h in first]
        assert "keeping the first ranking" in caplog.text and "HTTP 401" in caplog.text
    finally:
        manager.close()


def test_an_unloadable_cross_encoder_keeps_the_first_ranking(tmp_path, caplog):
    manager = manager_with(tmp_path, {"kind": "cross_encoder", "model": str(tmp_path / "no-such-model")})
    try:
        hits = manager.search("bees", "compost heap", top_k=2, score_threshold=0.0)
        assert len(hits) == 2 and "cannot load reranker" in caplog.text
    finally:
        manager.close()
