"""Conversation titles (fallback and model-written), feedback and Markdown / JSON export."""

from __future__ import annotations

import asyncio
import json

import pytest

from server.chat.conversations import to_markdown
from server.chat.schemas import ChatRequest
from server.chat.titles import clean_title, fallback_title
from server.db.chat_repository import ConversationRecord, FeedbackRecord, MessageRecord
from server.errors import BadRequest, InvalidInput, NotFound
from tests.chat_support import build_garden_kb, collect, kb_services


@pytest.fixture
def services(tmp_path, fake_openai, db_url):
    """Chat services storing conversations on each database engine in turn."""
    services = kb_services(tmp_path, fake_openai.base_url, chat={"llm_titles": True, "title_max_chars": 20},
                           paths={"database_url": db_url})
    yield services
    services.close()


def test_fallback_title_is_the_shortened_question():
    assert fallback_title("  How   do I\nturn compost?  ", 30) == "How do I turn compost?"
    assert fallback_title("A question that is much too long to be a title", 20) == "A question that is…"


@pytest.mark.parametrize(
    ("raw", "title"),
    [('"Composting Tips"', "Composting Tips"), ("Title: Compost basics.\nExtra line", "Compost basics"),
     ("「堆肥技巧」。", "堆肥技巧"), ("**Garden care**", "Garden care"), ("   ", ""), ("Python 3.11 tips", "Python 3.11 tips"),
     ("Hello, I'm not sure. How can I help?", ""), ("你好。我是助手", ""),
     ("When it comes to composting, turning the pile is a crucial part", ""), ("Compost basics [1][2]", "Compost basics"),
     ("堆肥技巧[1]。", "堆肥技巧")],
)
def test_model_titles_lose_quotes_labels_and_punctuation(raw, title):
    assert clean_title(raw, 30) == title


def test_model_title_replaces_the_fallback_after_the_first_answer(services, fake_openai):
    fake_openai.queue("Turn it every two weeks.", '"Compost Turning"')
    events = collect(services, query="How often should I turn my compost heap?")
    conv = services.chat.conversations.get(events[-1]["conversation_id"])
    assert conv.title == "Compost Turning"
    # The title is asked for in the conversation just answered: the answer's messages as the model read them,
    # its reply, then the instruction, so the model server reuses the prompt it has computed.
    answer_request, title_request = fake_openai.requests[-2:]
    assert title_request["messages"] == [
        *answer_request["messages"],
        {"role": "assistant", "content": "Turn it every two weeks."},
        {"role": "user", "content": services.chat.templates()["title"]},
    ]
    # Later answers leave the title alone.
    fake_openai.queue("Yes.")
    collect(services, query="Really?", conversation_id=conv.id)
    assert len(fake_openai.requests) == 3
    assert services.chat.conversations.get(conv.id).title == "Compost Turning"


def test_a_chinese_conversation_is_titled_by_the_chinese_instruction(services, fake_openai):
    fake_openai.queue("每两周翻一次。", "堆肥翻堆频率[1]")
    events = collect(services, query="堆肥多久翻一次？")
    assert fake_openai.requests[-1]["messages"][-1]["content"] == services.chat.templates()["title_zh"]
    assert services.chat.conversations.get(events[-1]["conversation_id"]).title == "堆肥翻堆频率"


def test_an_answer_given_without_the_model_keeps_the_question_as_title(services, fake_openai):
    services.kb.create_kb("empty")
    events = collect(services, query="What is in the empty knowledge base?", mode="kb", kb_name="empty")
    assert any(e["type"] == "delta" for e in events)
    assert fake_openai.requests == []
    assert services.chat.conversations.get(events[-1]["conversation_id"]).title == fallback_title(
        "What is in the empty knowledge base?", 20)


def test_a_follow_up_continues_the_answer_only_in_the_process_that_made_it(tmp_path, services, fake_openai, db_url):
    build_garden_kb(services)
    fake_openai.queue("Every two weeks [1].", "Compost Turning")
    first = collect(services, mode="kb", kb_name="garden", query="How often is the compost heap turned?", top_k=1)
    conv = first[-1]["conversation_id"]
    answer_request = fake_openai.requests[0]
    fake_openai.queue("How often are tomatoes watered?", "Twice a week [1].")
    collect(services, mode="kb", kb_name="garden", query="And the tomatoes?", conversation_id=conv, top_k=1)
    condense = fake_openai.requests[2]
    assert condense["messages"][:-2] == answer_request["messages"]
    # Another API process (a replica) over the same database has no model call to continue: it rewrites the
    # next follow-up from the stored history.
    replica = kb_services(tmp_path, fake_openai.base_url, chat={"llm_titles": True, "title_max_chars": 20},
                          paths={"database_url": db_url})
    try:
        fake_openai.queue("How often are roses watered?", "Weekly.")
        collect(replica, mode="kb", kb_name="garden", query="And the roses?", conversation_id=conv, top_k=1)
    finally:
        replica.close()
    condense = fake_openai.requests[4]
    assert [m["content"] for m in condense["messages"][:-1]] == [
        "How often is the compost heap turned?", "Every two weeks [1].", "And the tomatoes?", "Twice a week [1]."]


@pytest.mark.parametrize("with_history", [True, False])
def test_a_follow_up_rewritten_to_stand_alone_is_answered_with_or_without_the_history(tmp_path, fake_openai,
                                                                                        with_history):
    services = kb_services(tmp_path, fake_openai.base_url, chat={"llm_titles": False,
                                                                 "kb_answer_history": with_history})
    try:
        build_garden_kb(services)
        fake_openai.queue("Every two weeks [1].")
        first = collect(services, mode="kb", kb_name="garden", query="How often is the compost heap turned?", top_k=1)
        fake_openai.queue("How often are tomatoes watered?", "Twice a week [1].")
        collect(services, mode="kb", kb_name="garden", query="And the tomatoes?",
                conversation_id=first[-1]["conversation_id"], top_k=1)
    finally:
        services.close()
    answer = fake_openai.requests[-1]["messages"]
    if with_history:
        assert [m["role"] for m in answer] == ["system", "user", "assistant", "user"]
        assert answer[-1]["content"].endswith("And the tomatoes?\nAnswer in one or two sentences from the passages "
                                              "and cite them as [1], [2].")
    else:
        assert [m["role"] for m in answer] == ["system", "user"]
        assert "Question: How often are tomatoes watered?" in answer[-1]["content"]
        assert "And the tomatoes?" not in answer[-1]["content"]


def test_failed_model_title_keeps_the_fallback(services, fake_openai):
    fake_openai.queue("An answer.")
    fake_openai.queue_error(500, "title model broke")
    events = collect(services, query="How often should I turn my compost heap?")
    assert services.chat.conversations.get(events[-1]["conversation_id"]).title == "How often should I…"


def test_fallback_title_is_set_before_the_model_title_arrives(services, fake_openai):
    fake_openai.queue("An answer.")
    fake_openai.queue_hang(0.5)
    fake_openai.queue("Late Title")

    async def run():
        events = [e async for e in services.chat.run(ChatRequest(query="What should I plant in May?"))]
        during = services.chat.conversations.get(events[-1]["conversation_id"]).title
        await services.chat.wait_background()
        after = services.chat.conversations.get(events[-1]["conversation_id"]).title
        await services.llms.aclose()
        return during, after

    assert asyncio.run(run()) == ("What should I plant…", "Late Title")


def test_a_rename_during_title_generation_wins(services, fake_openai):
    fake_openai.queue("An answer.")
    fake_openai.queue_hang(0.5)
    fake_openai.queue("Model Title")

    async def run():
        events = [e async for e in services.chat.run(ChatRequest(query="Question"))]
        conv_id = events[-1]["conversation_id"]
        services.chat.conversations.rename(conv_id, "My own title")
        await services.chat.wait_background()
        await services.llms.aclose()
        return services.chat.conversations.get(conv_id).title

    assert asyncio.run(run()) == "My own title"


def test_feedback_is_for_answers_only_and_can_be_changed(services, fake_openai):
    fake_openai.queue("An answer.", "A title")
    events = collect(services, query="Rate me")
    user_id, answer_id = events[0]["message_id"], events[-1]["message_id"]
    assert services.chat.feedback(answer_id, "up").score == "up"
    changed = services.chat.feedback(answer_id, -1, "  too vague  ")
    assert (changed.score, changed.reason, changed.message_id) == ("down", "too vague", answer_id)
    stored = services.chat.conversations.get(events[0]["conversation_id"]).messages[-1]
    assert stored.feedback.score == "down" and stored.feedback.reason == "too vague"
    with pytest.raises(BadRequest):
        services.chat.feedback(user_id, "up")
    with pytest.raises(NotFound):
        services.chat.feedback("no-such-message", "up")
    for bad in ("sideways", 0, 2, True, None):
        with pytest.raises(InvalidInput):
            services.chat.feedback(answer_id, bad)


def test_export_markdown_lists_turns_sources_and_feedback():
    sources = [
        {"index": 1, "file": "garden.md", "location": "§ Garden > Compost", "score": 0.8123, "kb": "garden"},
        {"index": 2, "file": "Compost basics", "location": "garden.example", "score": None,
         "url": "https://garden.example/compost"},
    ]
    messages = (
        MessageRecord(id="m1", conversation_id="c1", role="user", content="How often?", mode="kb",
                      meta={"model": "fake"}, created_at=None, feedback=None),
        MessageRecord(id="m2", conversation_id="c1", role="assistant", content="Every two weeks [1].", mode="kb",
                      meta={"model": "fake", "sources": sources}, created_at=None,
                      feedback=FeedbackRecord(message_id="m2", score="up", reason="clear", updated_at=None)),
    )
    conversation = ConversationRecord(id="c1", title="Compost", mode="kb", created_at="2025-01-01T00:00:00",
                                      updated_at=None, message_count=2, messages=messages)
    text = to_markdown(conversation)
    assert text.startswith("# Compost\n")
    assert "## User (kb, fake)\n\nHow often?" in text and "## Assistant (kb, fake)\n\nEvery two weeks [1]." in text
    assert "1. garden.md — § Garden > Compost — score 0.812" in text
    assert "2. Compost basics — garden.example <https://garden.example/compost>" in text
    assert "**Feedback:** up: clear" in text


def test_export_of_a_stored_conversation(services, fake_openai):
    fake_openai.queue("Stored answer.", "Export Title")
    events = collect(services, query="Export me")
    conv_id = events[-1]["conversation_id"]
    services.chat.feedback(events[-1]["message_id"], "down", "wrong")
    md = services.chat.conversations.export(conv_id, "md")
    assert md.file_name == "Export_Title.md" and md.media_type.startswith("text/markdown")
    assert "Stored answer." in md.content.decode() and "**Feedback:** down: wrong" in md.content.decode()
    data = services.chat.conversations.export(conv_id, "json")
    parsed = json.loads(data.content)
    assert data.file_name == "Export_Title.json" and parsed["id"] == conv_id
    assert [m["content"] for m in parsed["messages"]] == ["Export me", "Stored answer."]
    with pytest.raises(InvalidInput):
        services.chat.conversations.export(conv_id, "pdf")
    with pytest.raises(NotFound):
        services.chat.conversations.export("missing", "md")
