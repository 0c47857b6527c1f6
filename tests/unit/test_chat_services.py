"""ChatServices end to end against FakeOpenAI: events, storage, failures, cancellation, bilingual mode."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict

import pytest

from server.chat.schemas import ChatRequest
from tests.chat_support import answer_of, collect, kb_services
from tests.fakes.fixtures import free_port


@pytest.fixture
def services(tmp_path, fake_openai):
    services = kb_services(tmp_path, fake_openai.base_url)
    yield services
    services.close()


def conversation(services, conversation_id):
    return asdict(services.chat.conversations.get(conversation_id))


def test_llm_answer_streams_and_is_stored_with_its_meta(services, fake_openai):
    fake_openai.queue("Paris is the capital of France.")
    events = collect(services, query="What is the capital of France?")
    assert [e["type"] for e in events][:3] == ["start", "status", "delta"] and events[-1]["type"] == "done"
    # Before its first text the answer says what it waits for: the model reading this many prompt tokens.
    assert events[1]["stage"] == "reading" and events[1]["ahead"] is None
    assert events[1]["prompt_tokens"] == events[-1]["usage"]["prompt_tokens"]
    assert answer_of(events) == "Paris is the capital of France."
    start, done = events[0], events[-1]
    assert start["conversation_id"] == done["conversation_id"]
    assert done["usage"]["prompt_tokens"] > 0 and done["usage"]["completion_tokens"] > 0
    assert done["latency_ms"] > 0
    sent = fake_openai.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[-1] == {"role": "user", "content": "What is the capital of France?"}

    stored = conversation(services, done["conversation_id"])
    user, answer = stored["messages"]
    assert (user["id"], user["role"]) == (start["message_id"], "user")
    assert user["content"] == "What is the capital of France?"
    assert (answer["id"], answer["content"]) == (done["message_id"], "Paris is the capital of France.")
    assert answer["meta"]["mode"] == "llm" and answer["meta"]["model"] == "fake"
    assert answer["meta"]["latency_ms"] > 0 and answer["meta"]["sources"] == []
    assert "incomplete" not in answer["meta"]
    assert stored["title"] == "What is the capital of France?"


def test_follow_up_questions_get_the_stored_history(services, fake_openai):
    fake_openai.queue("First answer.", "Second answer.", "Third answer.")
    first = collect(services, query="First question")
    conv_id = first[-1]["conversation_id"]
    collect(services, query="Second question", conversation_id=conv_id)
    sent = fake_openai.requests[-1]["messages"]
    assert [m["content"] for m in sent[1:]] == ["First question", "First answer.", "Second question"]
    collect(services, query="Third question", conversation_id=conv_id, history_turns=0)
    assert [m["content"] for m in fake_openai.requests[-1]["messages"][1:]] == ["Third question"]
    assert len(conversation(services, conv_id)["messages"]) == 6


def test_history_in_the_request_replaces_the_stored_one(services, fake_openai):
    fake_openai.queue("ok")
    history = [{"role": "user", "content": "Earlier"}, {"role": "assistant", "content": "Earlier reply"}]
    collect(services, query="Now", history=history)
    assert [m["content"] for m in fake_openai.requests[-1]["messages"][1:]] == ["Earlier", "Earlier reply", "Now"]


def test_model_dying_mid_stream_stores_a_partial_incomplete_answer(services, fake_openai):
    fake_openai.queue_drop_after("The answer starts well and then", 3)
    events = collect(services, query="Tell me a story")
    assert answer_of(events) == "The answer s"
    error = events[-1]
    assert error["type"] == "error" and error["code"].startswith("llm_")
    assert not any(e["type"] == "done" for e in events)
    answer = conversation(services, events[0]["conversation_id"])["messages"][-1]
    assert answer["role"] == "assistant" and answer["content"] == "The answer s"
    assert answer["meta"]["incomplete"] is True and answer["meta"]["error"]["code"] == error["code"]


def test_unreachable_model_gives_an_error_event_and_keeps_the_question(tmp_path):
    services = kb_services(tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    try:
        events = collect(services, query="Anyone there?")
        assert [e["type"] for e in events] == ["start", "status", "error"]
        assert events[-1]["code"] == "llm_unreachable" and "cannot reach" in events[-1]["message"]
        user, answer = conversation(services, events[0]["conversation_id"])["messages"]
        assert user["content"] == "Anyone there?" and answer["meta"]["incomplete"] is True and answer["content"] == ""
    finally:
        services.close()


@pytest.mark.parametrize(
    ("fields", "code", "needle"),
    [
        ({"model": "gpt-99"}, "model_not_found", "gpt-99"),
        ({"conversation_id": "missing"}, "not_found", "missing"),
        ({"prompt_template": "pirate"}, "invalid_input", "pirate"),
        ({"mode": "kb"}, "invalid_input", "kb_name"),
        ({"mode": "kb", "kb_name": "absent"}, "not_found", "absent"),
        ({"mode": "search", "engine": "altavista"}, "invalid_input", "altavista"),
    ],
)
def test_requests_that_cannot_be_answered_fail_before_anything_is_stored(services, fake_openai, fields, code, needle):
    events = collect(services, query="hello", **fields)
    assert len(events) == 1 and events[0]["type"] == "error"
    assert events[0]["code"] == code and needle in events[0]["message"]
    assert services.chat.conversations.list().total == 0
    assert fake_openai.requests == []


def test_a_new_conversation_and_its_first_question_are_stored_together(services, fake_openai, monkeypatch):
    from server.db import chat_repository

    def fail(*_args, **_kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(chat_repository, "add_message", fail)
    with pytest.raises(RuntimeError, match="disk is full"):
        collect(services, query="Keep both or neither")
    assert services.chat.conversations.list().total == 0 and fake_openai.requests == []


def test_unstored_requests_leave_no_conversation(services, fake_openai):
    fake_openai.queue("Ephemeral.")
    events = collect(services, query="Do not keep this", store=False)
    assert answer_of(events) == "Ephemeral." and events[-1]["type"] == "done"
    assert services.chat.conversations.list().total == 0


def test_question_too_long_for_the_window_is_refused(tmp_path, fake_openai):
    services = kb_services(tmp_path, fake_openai.base_url, model={"context_window": 256, "max_tokens": 64})
    try:
        events = collect(services, query="word " * 400)
        assert events[-1]["type"] == "error" and events[-1]["code"] == "context_overflow"
        assert fake_openai.requests == []
    finally:
        services.close()


def test_closing_the_stream_keeps_the_partial_answer(services, fake_openai):
    fake_openai.chunk_size = 2
    fake_openai.queue("A long answer that the client will not wait for.")

    async def read_three():
        events = services.chat.run(ChatRequest(query="Go on"))
        seen = []
        async with contextlib.aclosing(events):
            async for event in events:
                seen.append(event)
                if len(seen) == 4:  # start, status and two pieces
                    break
        await services.llms.aclose()
        return seen

    seen = asyncio.run(read_three())
    answer = conversation(services, seen[0]["conversation_id"])["messages"][-1]
    assert answer["content"] == "A lo"
    assert answer["meta"]["incomplete"] is True and answer["meta"]["error"]["code"] == "cancelled"


def test_bilingual_mode_answers_in_english_and_streams_the_translation(services, fake_openai):
    fake_openai.queue("What is the capital of France?", "The capital of France is Paris.")
    fake_openai.queue("法国的首都是巴黎。")
    events = collect(services, query="法国的首都是哪里？", bilingual=True)
    assert answer_of(events) == "法国的首都是巴黎。"
    to_en, answer, to_zh = fake_openai.requests
    assert to_en["messages"][-1]["content"] == "法国的首都是哪里？"
    assert answer["messages"][-1]["content"] == "What is the capital of France?"
    assert to_zh["messages"][-1]["content"] == "The capital of France is Paris."
    stored = conversation(services, events[0]["conversation_id"])["messages"][-1]
    assert stored["content"] == "法国的首都是巴黎。"
    assert stored["meta"]["bilingual"] == {
        "question_en": "What is the capital of France?", "answer_en": "The capital of France is Paris."
    }


def test_bilingual_mode_leaves_english_questions_alone(services, fake_openai):
    fake_openai.queue("Direct answer.")
    events = collect(services, query="What is two plus two?", bilingual=True)
    assert answer_of(events) == "Direct answer." and len(fake_openai.requests) == 1


def test_run_to_completion_gathers_the_whole_answer(services, fake_openai):
    fake_openai.queue("All at once.")

    async def run():
        try:
            return await services.chat.run_to_completion(ChatRequest(query="Everything please", stream=False))
        finally:
            await services.llms.aclose()

    result = asyncio.run(run())
    assert result.answer == "All at once." and result.error is None
    assert result.message_id and result.conversation_id and result.usage["completion_tokens"] > 0


def test_a_prompts_file_without_passages_question_sends_the_bare_question_after_passages_in_the_system(
    tmp_path, fake_openai
):
    from configs.settings import CONFIG_DIR
    from tests.chat_support import build_garden_kb

    shipped = (CONFIG_DIR / "prompts.yaml").read_text(encoding="utf-8")
    start = shipped.index("passages_question:")
    end = shipped.index("\n\n", shipped.index("[1], [2]", start)) + 2
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(shipped[:start] + shipped[end:], encoding="utf-8")
    services = kb_services(tmp_path, fake_openai.base_url, chat={"prompts_file": prompts})
    try:
        build_garden_kb(services)
        fake_openai.queue("Every two weeks [1].")
        events = collect(services, mode="kb", query="How often is compost turned?", kb_name="garden",
                         prompt_template="kb_classic")
    finally:
        services.close()
    assert answer_of(events) == "Every two weeks [1]."
    assert fake_openai.requests[-1]["messages"][-1]["content"] == "How often is compost turned?"
    # A template holding {context} gets the chosen sentences in the system prompt, as older layouts did.
    system = fake_openai.requests[-1]["messages"][0]["content"]
    assert "[1] (garden.md, § Garden guide > Compost)\nTurn the compost heap every two weeks" in system
