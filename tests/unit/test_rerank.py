"""The reranking stage against a real local service speaking the rerank wire formats."""

from __future__ import annotations

import pytest

from configs import Settings
from server.db.engine import Database
from configs.settings import RerankSettings
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.rerank import ChatModelReranker, RerankError, make_reranker, reading_text
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


def test_the_chat_model_reads_a_candidate_as_its_title_and_its_sentences_closest_to_the_question():
    articles = ["第一条 为了保护民事主体的合法权益，调整民事关系，维护社会和经济秩序，适应中国特色社会主义发展要求，制定本法。",
                "第二条 民法调整平等主体的自然人、法人和非法人组织之间的人身关系和财产关系，本法另有规定的依照其规定。",
                "第三条 民事主体的人身权利、财产权利以及其他合法权益受法律保护，任何组织或者个人不得侵犯这些权利。"]
    assert reading_text("".join(articles), "民法典", [0.2, 0.9, 0.5], 2) == "民法典 " + articles[1] + articles[2]
    english = ("The lease ends after one year unless renewed. The landlord must give thirty days of notice before "
               "any sale. Rent is due on the first day of each month.")
    assert reading_text(english, "Lease", [0.9, 0.1, 0.8], 2) == (
        "Lease The lease ends after one year unless renewed. Rent is due on the first day of each month.")
    # Without sentence vectors (or when they no longer match the text) the whole text is read.
    assert reading_text(english, "", None, 2) == english
    assert reading_text(english, "", [0.5], 2) == english


def test_the_chat_model_reranks_ten_candidates_unless_told_otherwise():
    assert RerankSettings(kind="chat_model").pool == 10
    assert RerankSettings(kind="api").pool == 20
    assert RerankSettings(kind="chat_model", candidates=5).pool == 5
    reranker = make_reranker(RerankSettings(kind="chat_model"), "http://127.0.0.1:9/kbchat/score")
    assert isinstance(reranker, ChatModelReranker) and reranker.url.endswith("/kbchat/score")
    zh, en = reranker.prefixes("房东要卖房，我得搬走吗？", ["甲"]), reranker.prefixes("Must I move out?", ["A"])
    assert zh[0].startswith("资料：甲") and en[0].startswith("Passage: A")
    with pytest.raises(RerankError, match="failed"):
        reranker.scores("Must I move out?", ["A", "B"])
    reranker.close()


def ask_through_the_reranker(tmp_path, rerank, fake_openai) -> list[dict]:
    """The events of one KB chat question about the garden KB, its search reranked by the fake rerank service."""
    from tests.chat_support import build_garden_kb, collect, kb_services

    services = kb_services(tmp_path, fake_openai.base_url,
                           kb={"rerank": {"kind": "api", "url": rerank.url + "/v1/rerank", "api_key": FakeRerank.api_key}})
    build_garden_kb(services)
    fake_openai.queue("Twice a week [1].")
    return collect(services, mode="kb", query="How often should tomato plants be watered?", kb_name="garden", top_k=2,
                   score_threshold=0.0)


def test_kb_chat_says_it_is_ranking_before_the_reranked_passages_and_the_page_shows_it(tmp_path, rerank, fake_openai):
    from tests.chat_support import only
    from webui_pages.dialogue import status_line
    from webui_pages.i18n import translate

    events = ask_through_the_reranker(tmp_path, rerank, fake_openai)
    kinds = [e["type"] for e in events]
    ranking = kinds.index("status")
    assert events[ranking]["stage"] == "ranking" and ranking < kinds.index("sources") < kinds.index("delta")
    assert rerank.requests and "twice a week" in only(events, "sources")["sources"][0]["text"]
    live = {"started": 10.0, "status": events[ranking]}
    assert status_line(lambda key, **kw: translate("en", key, **kw), live, now=13.2) == "Ranking the passages found, 3 s"
    assert status_line(lambda key, **kw: translate("zh", key, **kw), live, now=13.2) == "正在为检索到的资料重新排序，3 秒"


def test_a_slow_ranking_keeps_saying_so_until_the_passages_are_known(tmp_path, rerank, fake_openai, monkeypatch):
    from server.chat import context

    monkeypatch.setattr(context, "STATUS_EVERY", 0.2)
    rerank.delay = 1.5
    events = ask_through_the_reranker(tmp_path, rerank, fake_openai)
    kinds = [e["type"] for e in events]
    before_sources = events[:kinds.index("sources")]
    # Repeated while the reranker works, so the page's count of seconds goes on.
    assert len([e for e in before_sources if e.get("stage") == "ranking"]) >= 3
    assert "Twice a week" in "".join(e["text"] for e in events if e["type"] == "delta")


def test_the_page_says_when_the_model_weighs_the_evidence_sentences():
    from webui_pages.dialogue import status_line
    from webui_pages.i18n import translate

    live = {"started": 10.0, "status": {"type": "status", "stage": "weighing", "ahead": None, "prompt_tokens": None}}
    assert status_line(lambda key, **kw: translate("zh", key, **kw), live, now=12.5) == "正在挑出最能回答问题的句子，2 秒"
    assert status_line(lambda key, **kw: translate("en", key, **kw), live, now=12.5) == (
        "Picking the sentences that answer best, 2 s")


def test_a_search_with_a_rewrite_is_reranked_for_the_question_as_asked(tmp_path, rerank, fake_openai):
    from tests.chat_support import build_garden_kb, collect, kb_services

    services = kb_services(tmp_path, fake_openai.base_url,
                           kb={"rerank": {"kind": "api", "url": rerank.url + "/v1/rerank", "api_key": FakeRerank.api_key}})
    build_garden_kb(services)
    question = "My tomato leaves droop, how often should they get water?"
    fake_openai.queue("Tomato plants should be watered twice a week.", "Twice a week [1].")
    events = collect(services, mode="kb", query=question, kb_name="garden", top_k=2, score_threshold=0.0,
                     rewrite_query=True)
    assert "Twice a week" in "".join(e["text"] for e in events if e["type"] == "delta")
    # Both searches (the question's, then the one with the hypothetical answer) were judged for the question.
    assert len(rerank.requests) == 2 and {r["query"] for r in rerank.requests} == {question}
    searched = services.kb.search("garden", f"{question}\nTomato plants should be watered twice a week.", top_k=2,
                                  score_threshold=0.0, rerank_query="compost")
    assert rerank.requests[-1]["query"] == "compost" and len(searched) == 2
