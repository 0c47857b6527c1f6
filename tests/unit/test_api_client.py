"""The WebUI's ApiClient against a real local HTTP server speaking the kbchat wire format."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from webui_pages.api_client import ApiClient, ApiError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread; yield its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _sse(*events: object) -> bytes:
    return b"".join(f"data: {json.dumps(e) if not isinstance(e, str) else e}\n\n".encode() for e in events)


def build_app(state: dict) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record_auth(request: Request, call_next):
        state.setdefault("auth", []).append(request.headers.get("authorization"))
        return await call_next(request)

    @app.get("/settings/public")
    async def public(request: Request):
        if request.headers.get("authorization") != "Bearer s3cret":
            return JSONResponse({"error": {"code": "unauthorized", "message": "missing or wrong API key"}}, 401)
        return {"models": ["fake"], "default_model": "fake", "top_k": 3}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "fake", "object": "model"}, {"id": "kb/laws", "object": "model"}]}

    @app.get("/kbs/{kb}/files")
    async def files(kb: str):
        if kb != "知识 库":
            return JSONResponse({"error": {"code": "not_found", "message": f"knowledge base {kb!r} not found"}}, 404)
        return [{"file_name": "a b.md", "chunk_count": 2}]

    @app.delete("/kbs/{kb}/files/{file_name}")
    async def delete_file(kb: str, file_name: str, delete_content: bool = False):
        state["deleted"] = (kb, file_name, delete_content)
        return PlainTextResponse(status_code=204)

    @app.get("/broken")
    async def broken():
        return PlainTextResponse("Internal Server Error: database is locked", status_code=500)

    @app.get("/slow")
    async def slow():
        await asyncio.sleep(3)
        return {"ok": True}

    @app.post("/kbs/{kb}/files")
    async def upload(kb: str, request: Request):
        form = await request.form()
        state["form"] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        uploaded = [(f.filename, len(await f.read())) for f in form.getlist("files")]
        state["uploaded"] = uploaded
        if form.get("stream") == "true":
            events = [{"stage": "file_start", "file_name": n, "files_done": 0, "files_total": len(uploaded)}
                      for n, _ in uploaded]
            events.append({"stage": "result", "results": [{"file_name": n, "status": "indexed"} for n, _ in uploaded]})
            return StreamingResponse(iter([_sse(*events, "[DONE]")]), media_type="text/event-stream")
        return {"results": [{"file_name": n, "status": "indexed", "chunks": 1} for n, _ in uploaded]}

    @app.post("/chat/{mode}")
    async def chat(mode: str, request: Request):
        body = await request.json()
        state["chat_body"] = body
        if mode == "missing":
            return JSONResponse({"error": {"code": "not_found", "message": "knowledge base 'nope' not found"}}, 404)

        async def normal():
            yield b": keep-alive comment\n\n"
            yield _sse({"type": "start", "conversation_id": "c1", "message_id": "m0"})
            for word in ("Hello", ", ", "world"):
                yield _sse({"type": "delta", "text": word})
            # one event split over two data lines, as the SSE format allows
            yield b'data: {"type": "sources",\ndata:  "sources": [{"index": 1, "file": "a.md"}]}\n\n'
            yield _sse({"type": "done", "message_id": "m1", "conversation_id": "c1"}, "[DONE]")

        async def dropped():
            yield _sse({"type": "delta", "text": "partial "})
            await asyncio.sleep(0.05)
            raise RuntimeError("model died")

        async def endless():
            try:
                yield _sse({"type": "start", "conversation_id": "c2"})
                while True:
                    yield _sse({"type": "delta", "text": "x"})
                    await asyncio.sleep(0.05)
            finally:
                state["endless_closed"] = True

        async def silent():
            try:
                yield _sse({"type": "start", "conversation_id": "c3"})
                await asyncio.sleep(30)  # a model that takes its time before the first token
                yield _sse({"type": "delta", "text": "late"})
            finally:
                state["silent_closed"] = time.monotonic()

        generator = {"llm": normal, "drop": dropped, "endless": endless, "silent": silent}[mode]()
        return StreamingResponse(generator, media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def server():
    state: dict = {}
    with serve(build_app(state)) as url:
        yield url, state


def test_bearer_key_is_sent_when_configured(server):
    url, _state = server
    client = ApiClient(url, api_key="s3cret")
    assert client.public_settings()["default_model"] == "fake"


def test_wrong_key_becomes_unauthorized_api_error(server):
    url, _state = server
    with pytest.raises(ApiError) as info:
        ApiClient(url, api_key="wrong").public_settings()
    assert (info.value.status, info.value.code) == (401, "unauthorized")
    assert "API key" in info.value.message


def test_error_body_gives_status_code_and_message(server):
    url, _state = server
    with pytest.raises(ApiError) as info:
        ApiClient(url).list_files("nope")
    assert info.value.status == 404
    assert info.value.code == "not_found"
    assert info.value.message == "knowledge base 'nope' not found"


def test_plain_text_error_body_is_kept_readable(server):
    url, _state = server
    with pytest.raises(ApiError) as info:
        ApiClient(url).request("GET", "/broken")
    assert info.value.status == 500
    assert info.value.code == "http_500"
    assert "database is locked" in info.value.message


def test_names_with_spaces_and_cjk_reach_the_route_intact(server):
    url, state = server
    client = ApiClient(url)
    assert client.list_files("知识 库")[0]["file_name"] == "a b.md"
    client.delete_file("知识 库", "a b.md", delete_content=True)
    assert state["deleted"] == ("知识 库", "a b.md", True)


def test_unreachable_api_raises_api_unreachable_naming_the_url():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ApiError) as info:
        ApiClient(url).public_settings()
    assert info.value.status == 0
    assert info.value.code == "api_unreachable"
    assert url in info.value.message


def test_slow_api_raises_api_timeout(server):
    url, _state = server
    with pytest.raises(ApiError) as info:
        ApiClient(url, timeout=0.5).request("GET", "/slow")
    assert info.value.code == "api_timeout"


def test_model_ids_include_kb_pseudo_models(server):
    url, _state = server
    assert ApiClient(url).model_ids() == ["fake", "kb/laws"]


def test_chat_stream_yields_events_until_done_marker(server):
    url, state = server
    with ApiClient(url).chat_stream("llm", {"query": "hi", "model": None, "temperature": 0.2}) as events:
        received = list(events)
        assert events.finished
    assert [e["type"] for e in received] == ["start", "delta", "delta", "delta", "sources", "done"]
    assert "".join(e["text"] for e in received if e["type"] == "delta") == "Hello, world"
    assert received[4]["sources"] == [{"index": 1, "file": "a.md"}]
    # None fields are left out so the server applies its own defaults
    assert state["chat_body"] == {"query": "hi", "temperature": 0.2, "stream": True}


def test_stream_error_status_raises_before_first_event(server):
    url, _state = server
    with pytest.raises(ApiError) as info:
        with ApiClient(url).chat_stream("missing", {"query": "q", "kb_name": "nope"}):
            pytest.fail("the stream must not open")
    assert (info.value.status, info.value.code) == (404, "not_found")


def test_stream_cut_mid_answer_raises_stream_interrupted(server):
    url, _state = server
    received = []
    with pytest.raises(ApiError) as info:
        with ApiClient(url).chat_stream("drop", {"query": "q"}) as events:
            for event in events:
                received.append(event)
    assert info.value.code == "stream_interrupted"
    assert received == [{"type": "delta", "text": "partial "}]


def test_leaving_the_stream_closes_the_connection(server):
    url, state = server
    state.pop("endless_closed", None)
    with ApiClient(url).chat_stream("endless", {"query": "q"}) as events:
        for event in events:
            if event["type"] == "delta":
                break
    deadline = time.monotonic() + 5
    while not state.get("endless_closed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.get("endless_closed"), "the server kept streaming after the client left"


def test_upload_sends_files_and_form_fields(server):
    url, state = server
    with ApiClient(url).upload_files_stream(
        "kb1", [("a.txt", b"hello"), ("b.md", b"# t\n")], override=True, chunk_size=300, chunk_overlap=30
    ) as events:
        result = list(events)[-1]
    assert [r["file_name"] for r in result["results"]] == ["a.txt", "b.md"]
    assert state["uploaded"] == [("a.txt", 5), ("b.md", 4)]
    assert state["form"] == {
        "override": "true", "to_vector_store": "true", "stream": "true", "chunk_size": "300", "chunk_overlap": "30"
    }


def test_streamed_upload_yields_progress_then_result(server):
    url, state = server
    with ApiClient(url).upload_files_stream("kb1", [("a.txt", b"x")], to_vector_store=False) as events:
        received = list(events)
    assert state["form"]["stream"] == "true"
    assert state["form"]["to_vector_store"] == "false"
    assert "chunk_size" not in state["form"]
    assert [e["stage"] for e in received] == ["file_start", "result"]
    assert received[-1]["results"] == [{"file_name": "a.txt", "status": "indexed"}]


def test_close_from_another_thread_ends_a_blocked_stream_at_once(server):
    """The Stop button closes the stream from another thread while the reader waits for the model."""
    url, state = server
    stream = ApiClient(url).chat_stream("silent", {"query": "q"})
    received: list = []
    finished = threading.Event()

    def read() -> None:
        with stream as events:
            received.extend(events)  # ends quietly: a stream we closed ourselves is not an error
        finished.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.02)
    assert received == [{"type": "start", "conversation_id": "c3"}]
    closed_at = time.monotonic()
    stream.close()
    assert finished.wait(3), "the reading thread stayed blocked after close()"
    while "silent_closed" not in state and time.monotonic() < closed_at + 3:
        time.sleep(0.02)
    assert state.get("silent_closed", closed_at + 99) - closed_at < 3, "the server did not see the client leave"
