"""The OpenAI-compatible adapter against a real fake server: streaming, tools and every failure mode."""

from __future__ import annotations

import asyncio

import pytest

from configs.settings import LLMModelConfig
from server.llm.base import LLMError
from server.llm.openai_compatible import OpenAICompatibleModel
from tests.fakes.fixtures import free_port
from tests.fakes.flaky_proxy import FlakyProxy

USER = [{"role": "user", "content": "What does article 1 say?"}]


def make_model(base_url: str, *, timeout: float = 5.0, builtin: str | None = None, **kw) -> OpenAICompatibleModel:
    config = LLMModelConfig(
        kind="openai_compatible", base_url=base_url, model="fake-model", timeout=timeout, builtin=builtin, **kw
    )
    return OpenAICompatibleModel("fake", config, default_temperature=0.2)


async def collect(model, messages=USER, **kw) -> list[str]:
    return [delta async for delta in model.stream(messages, **kw)]


def test_stream_yields_sse_deltas_in_order(fake_openai):
    fake_openai.queue("Article 1 protects civil rights.")
    deltas = asyncio.run(collect(make_model(fake_openai.base_url), max_tokens=64, stop=["###"]))
    assert len(deltas) == 8  # 31 characters in 4-character SSE deltas
    assert "".join(deltas) == "Article 1 protects civil rights."
    body = fake_openai.requests[0]
    assert body["stream"] is True and body["model"] == "fake-model" and body["messages"] == USER
    assert body["max_tokens"] == 64 and body["temperature"] == 0.2 and body["stop"] == ["###"]


def test_complete_returns_whole_answer_without_streaming(fake_openai):
    fake_openai.queue("你好，世界")
    answer = asyncio.run(make_model(fake_openai.base_url).complete(USER, temperature=0.9))
    assert answer == "你好，世界"
    assert fake_openai.requests[0].get("stream") in (None, False)
    assert fake_openai.requests[0]["temperature"] == 0.9


def test_max_tokens_zero_is_sent_as_one(fake_openai):
    asyncio.run(make_model(fake_openai.base_url).complete(USER, max_tokens=0))
    assert fake_openai.requests[0]["max_tokens"] == 1


def test_default_max_tokens_comes_from_model_config(fake_openai):
    asyncio.run(make_model(fake_openai.base_url, max_tokens=77).complete(USER))
    assert fake_openai.requests[0]["max_tokens"] == 77


def test_http_500_becomes_llm_error_with_server_message(fake_openai):
    fake_openai.queue_error(500, "kaput")
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(make_model(fake_openai.base_url)))
    err = info.value
    assert err.status == 502 and err.code == "llm_bad_response"
    assert err.message == f"model server at {fake_openai.base_url} returned HTTP 500: kaput"


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limit_and_busy_are_reported_as_overloaded(fake_openai, status):
    fake_openai.queue_error(status, "model busy: 16 requests waiting")
    with pytest.raises(LLMError) as info:
        asyncio.run(make_model(fake_openai.base_url).complete(USER))
    assert info.value.code == "llm_overloaded"
    assert f"HTTP {status}: model busy: 16 requests waiting" in info.value.message


def test_timeout_names_url_and_seconds(fake_openai):
    fake_openai.queue_hang(3)
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(make_model(fake_openai.base_url, timeout=0.3)))
    assert info.value.code == "llm_timeout"
    assert info.value.message == f"model server at {fake_openai.base_url} timed out after 0.3s"


def test_connection_refused_suggests_starting_local_server():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(make_model(url, builtin="smollm2-135m")))
    assert info.value.code == "llm_unreachable"
    assert info.value.message == f"cannot reach model server at {url}: is `kbchat llm serve` running?"


def test_connection_refused_for_remote_model_points_at_base_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMError, match="check base_url"):
        asyncio.run(make_model(url).complete(USER))


def test_drop_mid_stream_keeps_received_text_then_fails(fake_openai):
    fake_openai.queue_drop_after("abcdefghijklmnopqrstuvwxyz", 3)
    received: list[str] = []

    async def run():
        async for delta in make_model(fake_openai.base_url).stream(USER):
            received.append(delta)

    with pytest.raises(LLMError) as info:
        asyncio.run(run())
    assert received == ["abcd", "efgh", "ijkl"]
    assert info.value.code == "llm_bad_response"
    assert "closed the connection in the middle of the answer" in info.value.message


def test_malformed_sse_frame_is_a_bad_response(fake_openai):
    fake_openai.queue_malformed()
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(make_model(fake_openai.base_url)))
    assert info.value.code == "llm_bad_response" and "malformed" in info.value.message


def test_non_json_body_is_a_bad_response(fake_openai):
    fake_openai.queue_malformed()
    with pytest.raises(LLMError) as info:
        asyncio.run(make_model(fake_openai.base_url).complete(USER))
    assert info.value.code == "llm_bad_response"


def test_complete_with_tools_parses_tool_call(fake_openai):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "search_kb",
                "description": "search a knowledge base",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
        }
    ]
    fake_openai.queue_tool_call("search_kb", {"query": "民法典 第一条"})
    result = asyncio.run(make_model(fake_openai.base_url, supports_tools=True).complete_with_tools(USER, tools))
    assert result["content"] is None
    assert len(result["tool_calls"]) == 1
    call = result["tool_calls"][0]
    assert call["name"] == "search_kb" and call["arguments"] == {"query": "民法典 第一条"} and call["id"]
    assert fake_openai.requests[0]["tools"] == tools


def test_complete_with_tools_plain_answer_has_no_calls(fake_openai):
    fake_openai.queue("No tool needed.")
    result = asyncio.run(make_model(fake_openai.base_url, supports_tools=True).complete_with_tools(USER, []))
    assert result == {"content": "No tool needed.", "tool_calls": []}


def test_complete_with_tools_is_refused_unless_configured(fake_openai):
    with pytest.raises(LLMError) as caught:
        asyncio.run(make_model(fake_openai.base_url).complete_with_tools(USER, []))
    assert caught.value.code == "llm_no_tools"
    assert fake_openai.requests == []


def test_model_without_base_url_is_refused():
    with pytest.raises(LLMError, match="no base_url"):
        OpenAICompatibleModel("x", LLMModelConfig(kind="openai_compatible"))


@pytest.mark.parametrize("call", ["stream", "complete"])
def test_a_connection_dropped_before_any_answer_is_tried_once_more(fake_openai, call):
    fake_openai.queue("Still answered.", "Answered again.")

    async def ask(proxy: FlakyProxy) -> str:
        model = make_model(f"http://127.0.0.1:{proxy.port}/v1")  # a new client: no kept-alive connection
        return "".join(await collect(model)) if call == "stream" else await model.complete(USER)

    async def scenario(proxy: FlakyProxy) -> tuple[str, LLMError | None]:
        proxy.drop_next(1)
        first = await ask(proxy)
        proxy.drop_next(2)  # twice in a row is the server's failure, not a stale connection's
        try:
            await ask(proxy)
        except LLMError as exc:
            return first, exc
        return first, None

    with FlakyProxy(fake_openai.port) as proxy:
        first, failure = asyncio.run(scenario(proxy))
    assert first == "Still answered."
    assert failure is not None and failure.code == "llm_unreachable" and proxy.dropped == 3
    assert len(fake_openai.requests) == 1  # the dropped tries never reached the model
