"""Reranking by the chat model's query likelihood, on the real llama_cpp.server with SmolLM2 behind the proxy."""

from __future__ import annotations

import math

import httpx
import pytest

from configs import Settings
from server.db.engine import Database
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.rerank import ChatModelReranker, reading_text
from server.llm.local.status import SCORE_PATH, status_url

pytestmark = pytest.mark.llm

DOCS = {
    "bees.txt": "Honey bees swarm in late spring when the hive grows crowded. A swarm settles on a branch for a day.",
    "compost.txt": "A compost heap should be turned every two weeks. Turning keeps it aerobic and stops the smell.",
    "tides.txt": "Tides rise and fall twice a day because of the pull of the moon. Spring tides follow a new moon.",
    "bread.txt": "Bread dough rises when yeast turns sugar into gas. Knead it for ten minutes before the first rise.",
}


def score(server, prefixes: list[str], continuation: str) -> httpx.Response:
    return httpx.post(status_url(server.base_url, SCORE_PATH), json={"prefixes": prefixes, "continuation": continuation},
                      timeout=120, trust_env=False)


def test_the_model_server_finds_a_question_likelier_after_the_passage_that_answers_it(smollm2_server):
    question = "What is the capital of France?"
    prefixes = ["Passage: Paris is the capital and largest city of France.\n\nA question about this passage:",
                "Passage: Bananas are yellow when they are ripe.\n\nA question about this passage:"]
    first = score(smollm2_server, prefixes, question)
    assert first.status_code == 200
    body = first.json()
    assert len(body["logprobs"]) == 2 and body["tokens"] > 2 * 8
    assert all(v < 0 for v in body["logprobs"]) and body["logprobs"][0] > body["logprobs"][1] + 0.1
    # Scores do not depend on what the prefixes are read beside, and the chat still answers afterwards.
    alone = score(smollm2_server, prefixes[1:], question).json()["logprobs"][0]
    assert alone == pytest.approx(body["logprobs"][1], abs=0.02)
    chat = httpx.post(smollm2_server.base_url + "/chat/completions", timeout=120, trust_env=False, json={
        "model": "smollm2-135m", "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "user", "content": "What is the capital of France? Answer in one word."}]})
    assert "Paris" in chat.json()["choices"][0]["message"]["content"]


def test_the_scoring_endpoint_refuses_bad_input_with_a_json_error(smollm2_server):
    for body in ({"prefixes": [], "continuation": "why?"}, {"prefixes": ["a"], "continuation": ""},
                 {"prefixes": ["a", ""], "continuation": "why?"},
                 {"prefixes": "not a list", "continuation": "why?"}):
        response = httpx.post(status_url(smollm2_server.base_url, SCORE_PATH), json=body, timeout=60, trust_env=False)
        assert response.status_code == 422 and response.json()["error"]["message"]
    # A prefix longer than the scoring context is cut from its start, not refused.
    long = score(smollm2_server, ["filler words " * 1500 + "Paris is in France."], "Where is Paris?")
    assert long.status_code == 200 and long.json()["tokens"] <= 2048


def test_kb_search_is_reordered_by_the_chat_model_and_keeps_its_order_when_the_model_is_gone(smollm2_server, tmp_path,
                                                                                           caplog):
    settings = Settings(paths={"data_root": tmp_path}, llm={"local": {"port": smollm2_server.port}},
                        kb={"rerank": {"kind": "chat_model", "rank_prior": 0.0}})
    db = Database(settings.paths.database_url)
    db.create_tables()
    manager = KnowledgeBaseManager(settings, db)
    try:
        manager.create_kb("misc")
        manager.add_files("misc", [(name, text.encode()) for name, text in DOCS.items()])
        query = "When do honey bees swarm?"
        first = manager.search("misc", query, top_k=4, score_threshold=0.0, rerank=False)
        hits = manager.search("misc", query, top_k=4, score_threshold=0.0)
        assert sorted(h.doc_id for h in hits) == sorted(h.doc_id for h in first)
        assert [h.rank for h in hits] == [1, 2, 3, 4]
        assert all(0 < h.score <= 1 for h in hits) and [h.score for h in hits] == sorted(
            (h.score for h in hits), reverse=True)
        # The scores are the model's: the geometric mean probability of the question's tokens after each
        # candidate's title and sentences, in the first search's order.
        reranker = manager.reranker
        assert isinstance(reranker, ChatModelReranker)
        # Every document here is two sentences, so the two closest are the whole text.
        texts = [reading_text(h.text, (h.metadata.get("heading_path") or [""])[0], None, 2) for h in first]
        logprobs = score(smollm2_server, reranker.prefixes(query, texts), query).json()["logprobs"]
        expected = sorted(range(4), key=lambda i: -logprobs[i])
        assert [h.doc_id for h in hits] == [first[i].doc_id for i in expected]
        assert hits[0].score == pytest.approx(math.exp(logprobs[expected[0]]), rel=0.05)
        assert hits[0].metadata["source"] == "bees.txt"

        reranker.url = "http://127.0.0.1:9/kbchat/score"  # nothing listens there
        kept = manager.search("misc", query, top_k=4, score_threshold=0.0)
        assert [h.doc_id for h in kept] == [h.doc_id for h in first]
        assert "keeping the first ranking" in caplog.text
    finally:
        manager.close()
