"""The OpenAI-compatible /v1 API, driven by the official openai SDK and langchain's ChatOpenAI over real HTTP."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient
from langchain_openai import ChatOpenAI
from sqlalchemy import func, select

from server.app import create_app
from server.db.models import Message
from server.services import build_services
from tests.api.transport_support import LiveServer, fake_llm_settings

GUIDE = (
    "# Garden guide\n\n"
    "Tomatoes need at least six hours of direct sun per day and deep watering twice a week.\n\n"
    "## Compost\n\n"
    "Turn the compost heap every two weeks so it stays aerobic.\n"
)


@pytest.fixture(scope="module")
def services(tmp_path_factory, fake):
    settings = fake_llm_settings(tmp_path_factory.mktemp("openai_compat"), fake.base_url)
    services = build_services(settings)
    services.kb.create_kb("garden")
    results = services.kb.add_files("garden", [("guide.md", GUIDE.encode())])
    assert results[0].status == "indexed", results
    yield services
    services.close()


@pytest.fixture(scope="module")
def live(services):
    with LiveServer(create_app(services=services)) as server:
        yield server


@pytest.fixture
def client(live):
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=30)


def _message_count(services) -> int:
    return services.db.run(lambda session: session.scalar(select(func.count()).select_from(Message)))


def test_models_lists_chat_models_and_one_model_per_kb(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids == ["fake", "kb/garden"]
    assert all(m.object == "model" and m.owned_by == "kbchat" for m in models.data)
    assert models.data[1].created > 0
    assert client.models.retrieve("kb/garden").id == "kb/garden"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("kb/absent")


def test_plain_model_completion_is_proxied_with_the_clients_messages(client, fake):
    fake.queue("Paris is the capital.")
    reply = client.chat.completions.create(
        model="fake",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        temperature=0.2,
        max_tokens=33,
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == "Paris is the capital."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    sent = fake.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 33


def test_plain_model_stream_yields_chunks_then_usage(client, fake):
    fake.queue("Streaming works fine.")
    stream = client.chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "Say something"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Streaming works fine."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len(chunks) > 4  # really streamed in pieces, not one blob


def test_kb_model_answers_from_the_knowledge_base_with_sources(client, fake):
    fake.queue("Six hours of sun [1].")
    reply = client.chat.completions.create(
        model="kb/garden", messages=[{"role": "user", "content": "How much sun do tomatoes need?"}]
    )
    assert reply.choices[0].message.content == "Six hours of sun [1]."
    sources = reply.model_extra["sources"]
    assert sources and sources[0]["file"] == "guide.md" and sources[0]["kb"] == "garden"
    assert "six hours of direct sun" in sources[0]["text"]
    prompt = " ".join(str(m.get("content")) for m in fake.requests[-1]["messages"])
    assert "six hours of direct sun" in prompt and "How much sun do tomatoes need?" in prompt


def test_kb_model_declines_a_question_the_kb_does_not_answer_unless_told_not_to(client, fake):
    asked = len(fake.requests)
    question = [{"role": "user", "content": "How much does a garden shed cost?"}]
    reply = client.chat.completions.create(model="kb/garden", messages=question)
    assert reply.choices[0].message.content.startswith('The knowledge base "garden" does not seem to answer')
    assert reply.model_extra["sources"] and len(fake.requests) == asked
    fake.queue("About 300 euros [1].")
    reply = client.chat.completions.create(model="kb/garden", messages=question,
                                           extra_body={"refuse_unsupported": False})
    # Asked anyway, the invented price gets the note that the passages do not hold it.
    assert reply.choices[0].message.content == (
        "About 300 euros [1].\n\n(Not found in the passages: 300. Check the sources before relying on it.)")
    assert len(fake.requests) == asked + 1


def test_kb_model_stream_sends_sources_in_the_final_chunk(client, fake):
    # With history, the model first rewrites the question to stand alone, then answers it.
    fake.queue("How often should I turn the compost heap?", "Turn it every two weeks [1].")
    chunks = list(
        client.chat.completions.create(
            model="kb/garden",
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "How often should I turn the compost?"},
            ],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Turn it every two weeks [1]."
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and not last.choices[0].delta.content
    assert any("compost" in s["text"].lower() for s in last.model_extra["sources"])
    assert all("sources" not in (c.model_extra or {}) for c in chunks[:-1])
    # The rewrite reads the history; the answer reads the rewritten question alone (chat.kb_answer_history).
    condense, answer = fake.requests[-2:]
    assert "Hello!" in " ".join(str(m.get("content")) for m in condense["messages"])
    assert "Hello!" not in " ".join(str(m.get("content")) for m in answer["messages"])
    assert "How often should I turn the compost heap?" in answer["messages"][-1]["content"]


def test_v1_chats_are_stored_only_with_a_conversation_id(client, fake, services):
    before = _message_count(services)
    client.chat.completions.create(model="kb/garden", messages=[{"role": "user", "content": "Tomatoes?"}])
    client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "Hello"}])
    assert _message_count(services) == before

    conversation = services.chat.conversations.create(title="via v1")
    conversation_id = conversation.id
    fake.queue("Stored answer.")
    reply = client.chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "Remember this"}],
        extra_body={"conversation_id": conversation_id},
    )
    assert reply.choices[0].message.content == "Stored answer."
    assert reply.model_extra["conversation_id"] == conversation_id
    assert _message_count(services) == before + 2


def test_unknown_models_raise_not_found_in_the_sdk(client):
    with pytest.raises(openai.NotFoundError) as plain:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in plain.value.message
    with pytest.raises(openai.NotFoundError) as kb:
        client.chat.completions.create(
            model="kb/absent", messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert kb.value.body["code"] == "not_found" and kb.value.body["type"] == "invalid_request_error"


def test_model_failure_before_the_answer_is_a_502(client, fake):
    fake.queue_error(500, "model exploded")
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "x"}], stream=True)
    assert err.value.status_code == 502
    assert err.value.body["code"].startswith("llm_") and "model exploded" in err.value.message


def test_model_dying_mid_stream_raises_in_the_sdk(client, fake):
    fake.queue_drop_after("This answer will be cut short by a crash", 3)
    stream = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "x"}], stream=True)
    received = ""
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            received += chunk.choices[0].delta.content or ""
    assert received == "This answer "
    assert "llm" in str(err.value.body.get("code"))


def test_tool_calls_pass_through_for_tool_capable_models(client, fake):
    fake.queue_tool_call("get_weather", {"city": "Oslo"})
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    reply = client.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=tools
    )
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Oslo"}'
    assert fake.requests[-1]["tools"] == tools
    fake.queue_tool_call("get_weather", {"city": "Bergen"})
    chunks = list(client.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "Weather in Bergen?"}], tools=tools, stream=True
    ))
    streamed = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    assert streamed[0][0].function.name == "get_weather"
    assert streamed[0][0].function.arguments == '{"city": "Bergen"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_bad_requests_get_422_in_openai_error_shape(live):
    response = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "fake", "messages": []})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["type"] == "invalid_request_error"
    assert "messages" in error["message"]
    ends_with_answer = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    response = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "kb/garden", "messages": ends_with_answer})
    assert response.status_code == 422 and "last message" in response.json()["error"]["message"]
    too_long = [{"role": "user", "content": "x" * 20001}]
    response = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "kb/garden", "messages": too_long})
    assert response.status_code == 422 and "query" in response.json()["error"]["message"]
    response = httpx.post(
        f"{live.url}/v1/chat/completions",
        json={"model": "kb/garden", "messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function"}]},
    )
    assert response.status_code == 400 and "plain chat models" in response.json()["error"]["message"]
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]
    response = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "fake", "messages": image})
    assert response.status_code == 422 and "image_url" in response.json()["error"]["message"]


def test_langchain_chat_openai_works_unchanged(live, fake):
    fake.queue("LangChain plain.", "LangChain streamed.", "From the garden [1].")
    plain = ChatOpenAI(base_url=f"{live.url}/v1", api_key="unused", model="fake", max_retries=0)
    assert plain.invoke("Hello").content == "LangChain plain."
    assert "".join(chunk.content for chunk in plain.stream("Hello again")) == "LangChain streamed."
    kb = ChatOpenAI(base_url=f"{live.url}/v1", api_key="unused", model="kb/garden", max_retries=0)
    assert kb.invoke("How much sun do tomatoes need?").content == "From the garden [1]."
    fake.queue("Streamed from the garden.")
    assert "".join(chunk.content for chunk in kb.stream("Compost?")) == "Streamed from the garden."


def test_embeddings_match_the_kb_embedder_in_float_and_base64(client, live, services):
    texts = ["tomatoes need sun", "番茄需要阳光"]
    expected = np.asarray(services.kb.embed(texts, None), dtype=np.float32)
    # The SDK asks for base64 unless told otherwise and decodes it itself.
    sdk = client.embeddings.create(model="multilingual-e5-small", input=texts)
    got = np.asarray([item.embedding for item in sdk.data], dtype=np.float32)
    assert got.shape == (2, 384) and np.allclose(got, expected, atol=1e-6)
    raw = httpx.post(f"{live.url}/v1/embeddings", json={"input": texts[0], "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, expected[0], atol=1e-6)
    floats = client.embeddings.create(model="kb/garden", input=texts[0], encoding_format="float")
    assert np.allclose(floats.data[0].embedding, expected[0], atol=1e-6)
    assert floats.model == "multilingual-e5-small" and floats.usage.prompt_tokens > 0


def test_a_query_model_id_embeds_texts_as_search_queries(client, live, services):
    text = "how often do I turn compost"
    query = np.asarray(services.kb.embed([text], None, is_query=True)[0], dtype=np.float32)
    passage = np.asarray(services.kb.embed([text], None)[0], dtype=np.float32)
    assert not np.allclose(query, passage, atol=1e-3)  # e5 reads "query: " and "passage: " differently
    for model in ("multilingual-e5-small:query", "kb/garden:query"):
        got = client.embeddings.create(model=model, input=text, encoding_format="float")
        assert np.allclose(got.data[0].embedding, query, atol=1e-6) and got.model == "multilingual-e5-small"
    got = client.embeddings.create(model="multilingual-e5-small:passage", input=text, encoding_format="float")
    assert np.allclose(got.data[0].embedding, passage, atol=1e-6)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="multilingual-e5-small:questions", input=text)


def test_embeddings_reject_token_ids_empty_text_and_unknown_models(client, live):
    response = httpx.post(f"{live.url}/v1/embeddings", json={"input": [1, 2, 3]})
    assert response.status_code == 422 and "token-id" in response.json()["error"]["message"]
    response = httpx.post(f"{live.url}/v1/embeddings", json={"input": ["ok", "  "]})
    assert response.status_code == 422
    with pytest.raises(openai.NotFoundError) as err:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert "multilingual-e5-small" in err.value.message


def test_the_default_model_is_prepared_at_start_up_and_a_missing_one_does_not_stop_it(tmp_path, fake, caplog):
    settings = fake_llm_settings(tmp_path / "ok", fake.base_url)
    with TestClient(create_app(settings)) as client:
        assert client.app.state.services.llms.built() == ["fake"]  # before any request
    assert client.app.state.services.llms.built() == []  # closed at shutdown
    broken = fake_llm_settings(tmp_path / "broken", fake.base_url)
    broken.llm.default_model = "absent"
    with TestClient(create_app(broken)) as client:
        assert client.get("/health").status_code == 200
        response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 404 and "absent" in response.json()["error"]["message"]
    assert "could not prepare the default chat model 'absent'" in caplog.text
