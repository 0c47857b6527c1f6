"""A client that goes away mid-answer over real HTTP: the model stops generating, the partial answer is stored
as incomplete, and no task is left running in the server."""

from __future__ import annotations

import asyncio
import gc
import json

import httpx
import pytest

from server.app import create_app
from server.services import build_services
from tests.api.transport_support import LiveServer, fake_llm_settings, wait_for

REPLY = "One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen."


@pytest.fixture
def live(tmp_path, fake):
    services = build_services(fake_llm_settings(tmp_path, fake.base_url))
    with LiveServer(create_app(services=services)) as server:
        yield server
    services.close()


def _server_tasks() -> int:
    """Tasks alive on the live server's event loop (the one running loop in another thread)."""
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]
    return sum(len(asyncio.all_tasks(loop)) for loop in loops)


def _deltas(event: dict) -> str:
    if "choices" in event:
        return (event["choices"][0].get("delta") or {}).get("content") or ""
    return event.get("text", "") if event.get("type") == "delta" else ""


@pytest.mark.parametrize("route", ["/chat/llm", "/v1/chat/completions"])
def test_a_client_leaving_mid_answer_stops_the_model_and_keeps_the_partial_answer(live, fake, route):
    with httpx.Client(base_url=live.url, timeout=30, trust_env=False) as client:
        conversation_id = client.post("/conversations", json={"title": "count"}).json()["id"]
        idle = _server_tasks()
        fake.queue_slow(REPLY, seconds_per_chunk=0.3)
        question = "Count slowly to sixteen."
        body = ({"query": question, "conversation_id": conversation_id} if route == "/chat/llm" else
                {"model": "fake", "stream": True, "conversation_id": conversation_id,
                 "messages": [{"role": "user", "content": question}]})
        received = ""
        with client.stream("POST", route, json=body) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    received += _deltas(json.loads(line[6:]))
                if len(received) >= 2 * fake.chunk_size:
                    break  # leave with the answer half written: the connection closes here
        wait_for(lambda: fake.abandoned, "the model's stream to be abandoned", 30)
        assert fake.abandoned[0] < len(REPLY) / fake.chunk_size / 2  # the model stopped well before the end

        def answer() -> dict | None:
            messages = client.get(f"/conversations/{conversation_id}").json()["messages"]
            return next((m for m in messages if m["role"] == "assistant"), None)

        wait_for(lambda: (answer() or {}).get("meta", {}).get("incomplete"), "the partial answer to be stored", 30)
        stored = answer()
        assert stored["content"] and REPLY.startswith(stored["content"])
        wait_for(lambda: _server_tasks() <= idle, "the server's answer tasks to end", 30)
