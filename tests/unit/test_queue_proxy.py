"""The queueing proxy in front of the model process, with a fake OpenAI server as the model."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from configs import Settings
from server.auth import check_access
from tests.fakes.fixtures import free_port

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def wait_for(predicate, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def sse_text(raw: str) -> str:
    text = ""
    for line in raw.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            choices = json.loads(line[6:])["choices"]
            if choices:
                text += choices[0]["delta"].get("content") or ""
    return text


def test_stream_is_forwarded_unchanged(fake_openai, proxied):
    fake_openai.queue("streamed through the proxy")
    _, url = proxied(4)
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{url}/v1/chat/completions", json=BODY)
        models = client.get(f"{url}/v1/models")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert sse_text(response.text) == "streamed through the proxy"
    assert response.text.rstrip().endswith("data: [DONE]")
    assert models.json()["data"][0]["id"] == "fake-model"


def test_generations_run_one_at_a_time(fake_openai, proxied):
    for _ in range(4):
        fake_openai.queue_hang(0.3)
        fake_openai.queue("done")
    _, url = proxied(8)

    async def run():
        async with httpx.AsyncClient(timeout=30) as client:
            started = time.monotonic()
            responses = await asyncio.gather(*(client.post(f"{url}/v1/chat/completions", json=BODY) for _ in range(4)))
            return responses, time.monotonic() - started

    responses, elapsed = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 4
    assert all(sse_text(r.text) == "done" for r in responses)
    assert elapsed >= 4 * 0.3  # in parallel it would take about 0.3 s


def test_requests_past_the_queue_bound_get_503(fake_openai, proxied):
    fake_openai.queue_hang(1.0)
    fake_openai.queue("first")
    fake_openai.queue("second")
    proxy, url = proxied(1)

    async def run():
        async with httpx.AsyncClient(timeout=30) as client:
            first = asyncio.create_task(client.post(f"{url}/v1/chat/completions", json=BODY))
            await wait_for(lambda: len(fake_openai.requests) == 1)
            second = asyncio.create_task(client.post(f"{url}/v1/chat/completions", json=BODY))
            await wait_for(lambda: proxy.waiting == 1)
            queue = (await client.get(f"{url}/queue")).json()
            third = await client.post(f"{url}/v1/chat/completions", json=BODY)
            return await first, await second, third, queue

    first, second, third, queue = asyncio.run(run())
    assert queue == {"active": 1, "waiting": 1, "max_queue": 1}
    assert third.status_code == 503
    assert third.json() == {"error": {"message": "model busy: 1 requests waiting", "type": "server_busy", "code": 503}}
    assert (first.status_code, sse_text(first.text)) == (200, "first")
    assert (second.status_code, sse_text(second.text)) == (200, "second")
    assert proxy.waiting == 0 and proxy.active == 0


def test_client_leaving_the_queue_frees_its_place(fake_openai, proxied):
    fake_openai.queue_hang(1.0)
    proxy, url = proxied(1)

    async def run():
        async with httpx.AsyncClient(timeout=30) as client:
            first = asyncio.create_task(client.post(f"{url}/v1/chat/completions", json=BODY))
            await wait_for(lambda: len(fake_openai.requests) == 1)
            impatient = asyncio.create_task(client.post(f"{url}/v1/chat/completions", json=BODY))
            await wait_for(lambda: proxy.waiting == 1)
            impatient.cancel()
            await wait_for(lambda: proxy.waiting == 0)
            await first

    asyncio.run(run())
    assert len(fake_openai.requests) == 1  # the cancelled request never reached the model


def test_unreachable_model_process_gives_502(proxied):
    _, url = proxied(2, upstream=f"http://127.0.0.1:{free_port()}")
    response = httpx.post(f"{url}/v1/chat/completions", json=BODY, timeout=10)
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_error"


def test_api_key_is_required_when_configured(fake_openai, proxied, tmp_path):
    settings = Settings(paths={"data_root": tmp_path}, server={"api_key": "s3cret"})
    _, url = proxied(2, access_check=lambda auth, host: check_access(settings, auth, host))
    refused = httpx.post(f"{url}/v1/chat/completions", json=BODY, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "unauthorized"
    assert fake_openai.requests == []
    allowed = httpx.post(
        f"{url}/v1/chat/completions", json=BODY, headers={"Authorization": "Bearer s3cret"}, timeout=10
    )
    assert allowed.status_code == 200 and sse_text(allowed.text) == fake_openai.default_reply


def test_an_answer_waiting_for_the_bundled_model_says_how_many_are_ahead(fake_openai, proxied, tmp_path):
    from tests.chat_support import collect

    from server.services import build_services

    fake_openai.queue_hang(4.5)
    fake_openai.queue("first answer")
    fake_openai.queue("second answer")
    proxy, url = proxied(4)
    port = int(url.rsplit(":", 1)[1])
    settings = Settings(
        paths={"data_root": tmp_path}, chat={"llm_titles": False},
        llm={"default_model": "local", "models": {"local": {"kind": "openai_compatible", "builtin": "smollm2-135m"}},
             "local": {"port": port}},
    )
    services = build_services(settings)

    def blocker():
        return httpx.post(f"{url}/v1/chat/completions", json=BODY, timeout=30)

    async def ask():
        first = asyncio.get_running_loop().run_in_executor(None, blocker)
        await wait_for(lambda: proxy.active == 1)
        events = await asyncio.to_thread(collect, services, query="Am I next?", store=False)
        return events, await first

    try:
        events, first = asyncio.run(ask())
    finally:
        services.close()
    statuses = [e for e in events if e["type"] == "status"]
    assert statuses[0]["stage"] == "waiting" and statuses[0]["ahead"] == 1
    assert statuses[0]["prompt_tokens"] > 0
    # Repeated while it waits, every two seconds.
    assert len(statuses) >= 2 and all(s["ahead"] == 1 for s in statuses)
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "second answer"
    assert sse_text(first.text) == "first answer"


def test_the_status_calls_carry_the_api_key_when_one_is_configured(fake_openai, proxied, tmp_path):
    """Behind ``server.api_key`` the proxy refuses a bare GET /queue; the chat adapter's queue and speed calls and
    the probe adding files uses send the key, and see a generation under way."""
    from server.llm.local.speed import PromptSpeed
    from server.llm.local.status import local_model_busy
    from server.llm.registry import LLMRegistry

    settings = Settings(paths={"data_root": tmp_path}, server={"api_key": "s3cret"})
    fake_openai.queue_hang(3.0)
    proxy, url = proxied(2, access_check=lambda auth, host: check_access(settings, auth, host))
    proxy.prompt_speed = PromptSpeed(prompt_tokens=135, tokens_per_s=42.0)
    settings = Settings(
        paths={"data_root": tmp_path}, server={"api_key": "s3cret"},
        llm={"default_model": "local", "models": {"local": {"kind": "openai_compatible", "builtin": "smollm2-135m"}},
             "local": {"port": int(url.rsplit(":", 1)[1])}},
    )
    assert httpx.get(f"{url}/queue", timeout=10).status_code == 401
    model = LLMRegistry(settings).get()

    async def generation_under_way() -> tuple[int | None, float | None, bool]:
        headers = {"Authorization": "Bearer s3cret"}
        async with httpx.AsyncClient(timeout=30) as client:
            blocker = asyncio.create_task(client.post(f"{url}/v1/chat/completions", json=BODY, headers=headers))
            await wait_for(lambda: proxy.active == 1)
            seen = await model.queue_depth(), await model.prompt_speed(), await asyncio.to_thread(
                local_model_busy, settings)
            await blocker
            return seen

    assert asyncio.run(generation_under_way()) == (1, 42.0, True)
    assert local_model_busy(settings) is False
