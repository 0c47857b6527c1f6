"""The WebSocket chat at /ws/chat: tagged event frames, concurrency, bad frames, cancellation."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from tests.api.transport_support import fake_llm_settings, wait_for
from tests.fakes.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def slow():
    """A second fake model, 'slow', for answers that must hang without touching the other's queue."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def client(tmp_path_factory, fake, slow):
    settings = fake_llm_settings(tmp_path_factory.mktemp("ws"), fake.base_url, server={"ws_max_requests": 3})
    slow_model = settings.llm.models["fake"].model_copy(update={"base_url": slow.base_url})
    settings.llm.models["slow"] = slow_model
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_slow(slow):
    slow.reset()


def receive_until_end(ws, request_id: str) -> list[dict]:
    """Frames of one request, up to and including its done or error frame."""
    frames = []
    while True:
        frame = ws.receive_json()
        if frame.get("request_id") != request_id:
            continue
        frames.append(frame)
        if frame["type"] in ("done", "error"):
            return frames


def next_frame(ws, *types: str, request_id: str | None = None) -> dict:
    """The next frame of one of ``types`` (for ``request_id`` if given), skipping the running answers' frames.

    A different final frame for ``request_id`` fails at once instead of waiting for a frame that never comes.
    """
    while True:
        frame = ws.receive_json()
        if frame["type"] in types and request_id in (None, frame.get("request_id")):
            return frame
        if request_id is not None and frame.get("request_id") == request_id and frame["type"] in ("done", "error"):
            raise AssertionError(f"expected {types} for {request_id!r}, got {frame}")


def test_question_gets_accepted_then_tagged_events_ending_with_done(client, fake):
    fake.queue("Hello over a socket.")
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"id": "q1", "query": "Say hello"})
        frames = receive_until_end(ws, "q1")
    assert frames[0] == {"type": "accepted", "request_id": "q1"}
    assert all(f["request_id"] == "q1" for f in frames)
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == "Hello over a socket."
    done = frames[-1]
    assert done["type"] == "done" and done["conversation_id"] and done["message_id"]
    assert fake.requests[-1]["messages"][-1]["content"] == "Say hello"


def test_a_generated_request_id_comes_back_in_the_accepted_frame(client, fake):
    fake.queue("Generated id answer.")
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_text(json.dumps({"query": "No id here"}))
        accepted = ws.receive_json()
        assert accepted["type"] == "accepted" and accepted["request_id"]
        frames = receive_until_end(ws, accepted["request_id"])
    assert frames[-1]["type"] == "done"


def test_concurrent_questions_on_one_socket_interleave_and_finish_independently(client, fake, slow):
    # The first question's model call hangs; the second one must finish while it waits.
    slow.queue_hang(3)
    slow.queue("First answer.")
    fake.queue("Second answer.")
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"id": "slow", "query": "First question", "model": "slow"})
        assert ws.receive_json() == {"type": "accepted", "request_id": "slow"}
        ws.send_json({"id": "fast", "query": "Second question"})
        order, texts = [], {"slow": "", "fast": ""}
        while len(order) < 2:
            frame = ws.receive_json()
            if frame["type"] == "delta":
                texts[frame["request_id"]] += frame["text"]
            if frame["type"] in ("done", "error"):
                order.append((frame["request_id"], frame["type"]))
    assert order == [("fast", "done"), ("slow", "done")]
    assert texts == {"slow": "First answer.", "fast": "Second answer."}


def test_bad_frames_get_error_frames_and_the_socket_stays_open(client, fake):
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_text("this is not json")
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == "invalid_input" and error["request_id"] is None
        ws.send_json(["a", "list"])
        assert ws.receive_json()["code"] == "invalid_input"
        ws.send_json({"id": "no-query", "mode": "llm"})
        error = ws.receive_json()
        assert error == {**error, "type": "error", "code": "invalid_input", "request_id": "no-query"}
        assert "query" in error["message"]
        ws.send_json({"id": "bad-types", "query": "hi", "temperature": "hot", "mode": "telepathy"})
        error = ws.receive_json()
        assert error["request_id"] == "bad-types" and "temperature" in error["message"] and "mode" in error["message"]
        ws.send_json({"id": {"nested": 1}, "query": "hi"})
        assert ws.receive_json()["code"] == "invalid_input"
        ws.send_json({"type": "dance", "id": "t", "query": "hi"})
        assert ws.receive_json()["request_id"] == "t"
        fake.queue("Still here.")
        ws.send_json({"id": "good", "query": "Are you still there?"})
        frames = receive_until_end(ws, "good")
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == "Still here."


def test_failures_while_answering_end_with_an_error_frame(client):
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"id": "kb", "mode": "kb", "kb_name": "absent", "query": "anything"})
        frames = receive_until_end(ws, "kb")
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "not_found"
    assert "absent" in frames[-1]["message"]


def test_cancel_stops_a_running_answer(client, slow):
    slow.queue_hang(30)
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_json({"id": "long", "query": "Take your time", "model": "slow"})
        assert ws.receive_json()["type"] == "accepted"
        wait_for(lambda: slow.requests, "the model call to start")
        ws.send_json({"type": "cancel", "id": "long"})
        frames = receive_until_end(ws, "long")
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "cancelled"
        assert not any(f["type"] == "done" for f in frames)
        ws.send_json({"type": "cancel", "id": "long"})
        assert ws.receive_json()["code"] == "not_found"


def test_duplicate_running_ids_and_too_many_questions_are_refused(client, slow):
    for n in range(3):
        slow.queue_hang(30)
        slow.queue(f"Late answer {n}.")
    with client.websocket_connect("/ws/chat") as ws:
        for n in range(3):
            ws.send_json({"id": f"r{n}", "query": "wait", "model": "slow"})
            assert next_frame(ws, "accepted", "error")["type"] == "accepted"
        ws.send_json({"id": "r0", "query": "again", "model": "slow"})
        duplicate = next_frame(ws, "error", request_id="r0")
        assert duplicate["code"] == "invalid_input" and duplicate["request_id"] == "r0"
        assert "still running" in duplicate["message"]
        ws.send_json({"id": "r3", "query": "one too many"})
        refused = next_frame(ws, "error", request_id="r3")
        assert refused["code"] == "too_many_requests" and refused["request_id"] == "r3"


# ----- any frame at all: the property
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Frames that look like requests: the real field names, with values of any JSON type.
_FIELDS = ["id", "type", "query", "mode", "model", "temperature", "max_tokens", "kb_name", "top_k", "history",
           "conversation_id", "stream", "score_threshold"]
_REQUEST_LIKE = st.dictionaries(st.sampled_from(_FIELDS), _JSON_VALUES, max_size=6)
_FRAMES = st.one_of(
    st.text(max_size=60).map(lambda t: ("text", t)),
    st.binary(max_size=60).map(lambda b: ("bytes", b)),
    _JSON_VALUES.map(lambda v: ("text", json.dumps(v))),
    _REQUEST_LIKE.map(lambda d: ("text", json.dumps(d))),
    _REQUEST_LIKE.map(lambda d: ("bytes", json.dumps(d).encode())),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(_FRAMES, min_size=1, max_size=4))
def test_any_frame_gets_an_answer_and_the_socket_stays_open(client, fake, frames):
    """Text or binary, JSON or not: every frame gets an error frame or runs to a final frame, never a crash,
    and the socket then still answers a good question."""
    with client.websocket_connect("/ws/chat") as ws:
        for kind, data in frames:
            ws.send_text(data) if kind == "text" else ws.send_bytes(data)
            frame = ws.receive_json()
            assert frame["type"] in ("error", "accepted"), frame
            if frame["type"] == "error":
                assert frame["code"] in ("invalid_input", "not_found", "too_many_requests") and frame["message"]
            else:
                final = receive_until_end(ws, frame["request_id"])[-1]
                assert final["type"] == "done" or final["code"] not in ("internal_error",), final
        fake.queue("Still here.")
        ws.send_json({"id": "check", "query": "Are you still there?"})
        frames_out = receive_until_end(ws, "check")
    assert frames_out[-1]["type"] == "done"
