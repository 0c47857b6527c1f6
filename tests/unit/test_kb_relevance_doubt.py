"""KB chat declines a question that comes only doubtfully close to the knowledge base and shares no distinctive
word with it, and answers one that names what the documents name (server/chat/relevance.py)."""

from __future__ import annotations

import pytest

from configs import Settings
from tests.chat_support import answer_of, build_garden_kb, collect, kb_services

HANDBOOK = ("# Staff handbook\n\n## Leave\n\nEvery employee gets twenty-five days of paid annual leave.\n\n"
            "## Travel\n\nTravel costs are refunded within thirty days of the trip.\n")


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
    answer = answer_of(events)
    assert answer.startswith('The knowledge base "garden" does not seem to answer this question directly')
    # The closest passage's best sentence is quoted, with its number and title.
    assert '[1] (' in answer and answer.rstrip().endswith('"') and fake_openai.requests == []
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


def test_a_question_in_other_words_than_the_documents_gets_their_closest_sentence(tmp_path, fake_openai):
    # "holiday" for "annual leave": in the default doubt band, with only "get" in common, it is declined, and the
    # answer quotes the sentence that holds what was asked.
    services = kb_services(tmp_path, fake_openai.base_url)
    services.kb.create_kb("handbook")
    services.kb.add_files("handbook", [("handbook.md", HANDBOOK.encode())])
    events = collect(services, mode="kb", query="How much holiday do I get?", kb_name="handbook")
    services.close()
    assert answer_of(events) == (
        'The knowledge base "handbook" does not seem to answer this question directly: the passages found '
        'share few of its words.\nThe closest, [1] (Staff handbook), says: "Every employee gets twenty-five days '
        'of paid annual leave."')
    assert fake_openai.requests == []


def test_the_closest_sentence_quoted_says_something_not_only_a_link(tmp_path, fake_openai):
    # The booking line shares "holiday" with the question and says nothing but an address. Any keyword score
    # declines here, so the question is declined although it shares that word.
    e5 = Settings().kb.embed_models["multilingual-e5-small"].model_copy(
        update={"relevance_floor": {"en": 0.5}, "relevance_doubt": {"en": 0.999}})
    services = kb_services(tmp_path, fake_openai.base_url,
                           kb={"embed_models": {"multilingual-e5-small": e5}, "relevance_keyword_score": 100.0})
    services.kb.create_kb("handbook")
    linked = HANDBOOK.replace("## Travel", "Holiday bookings: www.holiday-example.com/en\n\n## Travel")
    services.kb.add_files("handbook", [("handbook.md", linked.encode())])
    events = collect(services, mode="kb", query="How much holiday do I get?", kb_name="handbook")
    services.close()
    answer = answer_of(events)
    assert answer.startswith('The knowledge base "handbook" does not seem to answer this question directly')
    assert answer.endswith('says: "Every employee gets twenty-five days of paid annual leave."')
    assert fake_openai.requests == []
