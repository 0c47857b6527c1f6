"""Evidence sentences ordered by the chat model (chat.evidence_scoring), on the real SmolLM2 server behind the proxy."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from configs import Settings
from server.chat.evidence import rank_sentences, split_passages
from server.chat.kb_chat import scores_evidence, sentence_readings
from server.chat.sources import kb_source
from server.knowledge_base.rerank import ChatModelReranker
from server.llm.local.assemble import ensure_weights
from server.llm.local.builtin import BUILTIN_MODELS
from server.llm.local.status import SCORE_PATH, status_url
from server.services import Services, build_services
from tests.chat_support import answer_of, collect

pytestmark = pytest.mark.llm

QUESTION = "When do honey bees swarm, and where does the swarm settle?"
DOCS = {
    "bees.txt": "Honey bees swarm in late spring when the hive grows crowded. A swarm settles on a branch for a day. "
                "Beekeepers check their hives every week in spring.",
    "wasps.txt": "Wasps build paper nests in sheds and roofs. A wasp nest is abandoned in late autumn. "
                 "Honey bees and wasps both sting when their nest is disturbed.",
}


@pytest.fixture
def services(smollm2_server, tmp_path) -> Iterator[Services]:
    settings = Settings(paths={"data_root": tmp_path},
                        llm={"default_model": "smollm2-135m", "local": {"port": smollm2_server.port}},
                        chat={"llm_titles": False, "rewrite_query": False, "refuse_unsupported": False,
                              "evidence_scoring": True, "evidence_scoring_languages": ["en", "zh"]})
    ensure_weights(BUILTIN_MODELS["smollm2-135m"], settings.paths.model_dir)
    built = build_services(settings)
    built.kb.create_kb("garden")
    built.kb.add_files("garden", [(name, text.encode()) for name, text in DOCS.items()])
    try:
        yield built
    finally:
        built.close()


def ask(services: Services) -> list[dict]:
    return collect(services, mode="kb", query=QUESTION, kb_name="garden", top_k=2, score_threshold=0.0,
                   temperature=0, max_tokens=12)


def test_the_model_reads_first_the_passage_of_the_sentence_it_finds_the_question_likeliest_after(services,
                                                                                                 smollm2_server):
    events = ask(services)
    kinds = [e["type"] for e in events]
    stages = [e["stage"] for e in events if e["type"] == "status"]
    assert "weighing" in stages
    first, second = [e["sources"] for e in events if e["type"] == "sources"]
    # The evidence is shown at once, and again once the model has scored its best sentences.
    assert kinds.index("sources") < kinds.index("status") < len(kinds) - kinds[::-1].index("sources") - 1 \
        < kinds.index("delta")
    assert answer_of(events).strip()
    # What the model scored: the best sentences by shared words and meaning, each after its document's title.
    hits = services.kb.search("garden", QUESTION, top_k=2, score_threshold=0.0)
    assert [h["text"] for h in first] == [h.text for h in hits]
    passages = split_passages([h.text for h in hits])
    candidates = rank_sentences(QUESTION, passages, services.kb.sentence_similarities(QUESTION, hits))[:4]
    assert len(candidates) >= 2
    scorer = services.chat.evidence_scorer
    assert isinstance(scorer, ChatModelReranker)
    readings = sentence_readings([kb_source(i, h, "garden") for i, h in enumerate(hits, 1)], hits, passages,
                                 candidates)
    logprobs = httpx.post(status_url(smollm2_server.base_url, SCORE_PATH), timeout=120, trust_env=False,
                          json={"prefixes": scorer.prefixes(QUESTION, readings), "continuation": QUESTION}
                          ).json()["logprobs"]
    prior = scorer.config.rank_prior
    best = candidates[max(range(len(candidates)), key=lambda i: logprobs[i] - prior * i)]
    best_text = passages[best.rank].text
    start, end = passages[best.rank].spans[best.index]
    # Its passage is now [1], with the best sentence highlighted; the other keeps its place after it.
    assert second[0]["text"] == best_text and [start, end] in second[0]["highlights"]
    assert [s["index"] for s in second] == [1, 2]
    assert sorted(s["text"] for s in second) == sorted(s["text"] for s in first)


def test_the_sentence_the_model_scored_best_is_quoted_alone_and_two_are_quoted_without_scoring(services,
                                                                                               monkeypatch):
    chat = services.settings.chat
    monkeypatch.setattr(chat, "quote_evidence", ["en"])
    assert chat.quoted_sentences == 2
    scored = answer_of(ask(services))
    assert scored.startswith("According to [1] (") and "; [" not in scored
    monkeypatch.setattr(chat, "evidence_scoring", False)
    unscored = answer_of(ask(services))
    # Without the scoring, the best sentence of another passage is quoted too, then the conclusion begins.
    assert unscored.startswith("According to [") and "; [" in unscored and '". So' in unscored


def test_when_the_model_cannot_score_the_first_evidence_stands(services, caplog):
    scorer = services.chat.evidence_scorer
    assert isinstance(scorer, ChatModelReranker)
    scorer.url = "http://127.0.0.1:9/kbchat/score"  # nothing listens there
    with caplog.at_level(logging.WARNING):
        events = ask(services)
    assert len([e for e in events if e["type"] == "sources"]) == 1
    assert answer_of(events).strip() and not [e for e in events if e["type"] == "error"]
    assert "evidence scoring failed" in caplog.text


def test_scoring_is_decided_by_the_question_s_language_and_the_model_s_reading_speed():
    auto = Settings(chat={"evidence_scoring": "auto"})
    assert scores_evidence(auto, "zh", 200.0) and not scores_evidence(auto, "zh", 40.0)
    assert not scores_evidence(auto, "zh", None)  # the speed is not known yet
    assert not scores_evidence(auto, "en", 1000.0)  # English answers did not gain
    on = Settings(chat={"evidence_scoring": True, "evidence_scoring_languages": ["zh", "en"]})
    assert scores_evidence(on, "en", 5.0) and not scores_evidence(Settings(chat={"evidence_scoring": False}), "zh", 500)
