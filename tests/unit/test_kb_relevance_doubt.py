"""KB chat declines a question that comes only doubtfully close to the knowledge base and shares no distinctive
word with it, and answers one that names what the documents name (server/chat/relevance.py)."""

from __future__ import annotations

import pytest

from configs import Settings
from tests.chat_support import answer_of, build_garden_kb, collect, kb_services


@pytest.fixture
def services(tmp_path, fake_openai):
    # Every question falls in the doubt band here, so the keywords alone decide.
    e5 = Settings().kb.embed_models["multilingual-e5-small"].model_copy(
        update={"relevance_floor": {"en": 0.5}, "relevance_doubt": {"en": 0.999}})
    services = kb_services(tmp_path, fake_openai.base_url,
                           kb={"embed_models": {"multilingual-e5-small": e5}, "relevance_keyword_score": 0.6})
    build_garden_kb(services)
    yield services
    services.close()


def test_a_doubtful_question_sharing_no_distinctive_word_is_declined_without_the_model(services, fake_openai):
    events = collect(services, mode="kb", query="How do I renew my passport?", kb_name="garden",
                     score_threshold=0.0)
    assert answer_of(events).startswith('The knowledge base "garden" does not seem to answer this question')
    assert fake_openai.requests == []
    stored = services.chat.conversations.get(events[-1]["conversation_id"]).messages[-1]
    assert stored.meta["unsupported"] is True and stored.meta["keyword_score"] == 0.0
    # The passages found are still shown.
    assert next(e for e in events if e["type"] == "sources")["sources"]


def test_a_doubtful_question_naming_what_the_documents_name_is_answered(services, fake_openai):
    fake_openai.queue("Every two weeks [1].")
    events = collect(services, mode="kb", query="How often should the compost heap be turned?", kb_name="garden")
    assert answer_of(events) == "Every two weeks [1]." and len(fake_openai.requests) == 1
    stored = services.chat.conversations.get(events[-1]["conversation_id"]).messages[-1]
    assert stored.meta["keyword_score"] >= 0.6 and not stored.meta.get("unsupported")
