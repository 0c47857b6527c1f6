"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted replies, for tests.

It speaks the actual wire format (chat.completion JSON, SSE ``chat.completion.chunk``
frames ending in ``data: [DONE]``, plain-text ``text_completion``s, embeddings) so clients are exercised end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.fakes.loopback import read_body


@dataclass
class _Reply:
    kind: str  # "text" | "tool" | "error" | "hang" | "drop" | "malformed" | "slow"
    text: str = ""
    name: str = ""
    arguments: dict = field(default_factory=dict)
    status: int = 200
    seconds: float = 0.0
    n_chunks: int = 0


class _Dropped(Exception):
    """Raised inside the app to make uvicorn cut the connection mid-response."""


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def _before_stop(text: str, stop: str | list[str] | None) -> str:
    """``text`` up to the first of the ``stop`` sequences, which the API leaves out of the reply."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    return text[:min((text.index(s) for s in stops if s and s in text), default=len(text))]


def _fake_embedding(text: str, dim: int) -> list[float]:
    """A deterministic unit vector derived from the text's hash."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class FakeOpenAI:
    """Context manager running a scripted OpenAI-compatible server in a background thread."""

    default_reply: str = "This is a fake answer."
    chunk_size: int = 4
    embedding_dim: int = 64

    def __init__(self, models: list[str] | None = None) -> None:
        self.models = models or ["fake-model"]
        self.requests: list[dict] = []
        self.embedding_requests: list[dict] = []
        self.abandoned: list[int] = []  # per slow reply whose client went away: the chunks it had sent
        self._replies: deque[_Reply] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.port = 0
        self.base_url = ""

    # ---- scripting -------------------------------------------------------------------------

    def queue(self, *replies: str) -> None:
        with self._lock:
            self._replies.extend(_Reply("text", text=r) for r in replies)

    def queue_tool_call(self, name: str, arguments: dict) -> None:
        with self._lock:
            self._replies.append(_Reply("tool", name=name, arguments=dict(arguments)))

    def queue_error(self, status: int, message: str = "boom") -> None:
        with self._lock:
            self._replies.append(_Reply("error", status=status, text=message))

    def queue_hang(self, seconds: float) -> None:
        """Hold the next request for ``seconds``, then answer it with the reply queued after the hang."""
        with self._lock:
            self._replies.append(_Reply("hang", seconds=seconds))

    def queue_drop_after(self, text: str, n_chunks: int) -> None:
        with self._lock:
            self._replies.append(_Reply("drop", text=text, n_chunks=n_chunks))

    def queue_slow(self, text: str, seconds_per_chunk: float) -> None:
        """Stream the next reply one chunk every ``seconds_per_chunk``, stopping if the client goes away;
        ``abandoned`` then records how many of its chunks were sent."""
        with self._lock:
            self._replies.append(_Reply("slow", text=text, seconds=seconds_per_chunk))

    def queue_malformed(self) -> None:
        """Next response is broken: invalid JSON in an SSE frame, or a non-JSON body."""
        with self._lock:
            self._replies.append(_Reply("malformed"))

    def reset(self) -> None:
        """Forget queued replies and recorded requests (a reply left over from one test must not leak into the next)."""
        with self._lock:
            self._replies.clear()
        self.requests.clear()
        self.embedding_requests.clear()
        self.abandoned.clear()

    def _next_reply(self, after_hang: bool = False) -> _Reply:
        """The next queued reply, or the default text; after a hang, a queued hang is left for the next request."""
        with self._lock:
            if self._replies and not (after_hang and self._replies[0].kind == "hang"):
                return self._replies.popleft()
            return _Reply("text", text=self.default_reply)

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeOpenAI":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        config = uvicorn.Config(
            self._app,
            interface="asgi3",  # a bound method confuses uvicorn's ASGI-version detection
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- ASGI app ----------------------------------------------------------------------------

    async def _app(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/")
        method = scope["method"]
        body = await read_body(receive)
        if method == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
            await self._json(send, 200, {"object": "list", "data": data})
            return
        if method == "POST" and path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
            try:
                payload = json.loads(body or b"{}")
            except json.JSONDecodeError:
                await self._error(send, 400, "request body is not JSON")
                return
            if path == "/v1/embeddings":
                await self._embeddings(send, payload)
            elif path == "/v1/completions":
                await self._text_completion(send, payload)
            else:
                await self._chat(send, payload, receive)
            return
        await self._error(send, 404, f"no route {method} {path}")

    async def _json(self, send, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _error(self, send, status: int, message: str) -> None:
        err = {"error": {"message": message, "type": "fake_error", "param": None, "code": str(status)}}
        await self._json(send, status, err)

    async def _embeddings(self, send, payload: dict) -> None:
        self.embedding_requests.append(payload)
        inputs = payload.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": _fake_embedding(str(t), self.embedding_dim)}
            for i, t in enumerate(inputs)
        ]
        tokens = sum(_count_tokens(str(t)) for t in inputs)
        await self._json(
            send,
            200,
            {
                "object": "list",
                "data": data,
                "model": payload.get("model", self.models[0]),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    async def _text_completion(self, send, payload: dict) -> None:
        """A plain-text completion of ``payload["prompt"]`` (how a client continues an answer it began): the next
        queued text reply up to the first of its ``stop`` sequences, streamed as ``text_completion`` frames or
        whole."""
        self.requests.append(payload)
        reply = self._next_reply()
        if reply.kind == "error":
            await self._error(send, reply.status, reply.text)
            return
        cid, created = f"cmpl-{uuid.uuid4().hex[:12]}", int(time.time())
        model = payload.get("model") or self.models[0]
        text = _before_stop(reply.text, payload.get("stop"))

        def body(text: str, finish: str | None) -> dict:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            return {"id": cid, "object": "text_completion", "created": created, "model": model, "choices": [choice]}

        if not payload.get("stream"):
            await self._json(send, 200, body(text, "stop"))
            return
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        pieces = [text[i : i + self.chunk_size] for i in range(0, len(text), self.chunk_size)]
        for data in [*(body(p, None) for p in pieces), body("", "stop")]:
            frame = f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    async def _chat(self, send, payload: dict, receive) -> None:
        self.requests.append(payload)
        reply = self._next_reply()
        if reply.kind == "hang":
            # The delayed request is bound to the reply queued after the hang right away, so
            # requests arriving meanwhile do not take it. Hangs queued back to back delay one request each.
            seconds, reply = reply.seconds, self._next_reply(after_hang=True)
            # Wait in small steps so stopping the server does not block on a sleeping request.
            end = time.monotonic() + seconds
            while time.monotonic() < end and not self._stopping:
                await asyncio.sleep(0.02)
        if reply.kind == "error":
            await self._error(send, reply.status, reply.text)
            return
        if reply.kind == "malformed":
            stream = bool(payload.get("stream"))
            ctype = b"text/event-stream" if stream else b"application/json"
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", ctype)]})
            body = b'data: {"choices": [{"delta": {"content": "x"\n\ndata: [DONE]\n\n' if stream else b"<html>oops"
            await send({"type": "http.response.body", "body": body})
            return
        model = payload.get("model") or self.models[0]
        prompt_tokens = sum(_count_tokens(str(m.get("content") or "")) for m in payload.get("messages", []))
        if payload.get("stream"):
            await self._stream(send, reply, model, prompt_tokens, payload, receive)
        else:
            await self._complete(send, reply, model, prompt_tokens)

    def _tool_call(self, reply: _Reply) -> dict:
        return {
            "id": f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": reply.name, "arguments": json.dumps(reply.arguments, ensure_ascii=False)},
        }

    async def _complete(self, send, reply: _Reply, model: str, prompt_tokens: int) -> None:
        if reply.kind == "tool":
            message = {"role": "assistant", "content": None, "tool_calls": [self._tool_call(reply)]}
            finish, completion_tokens = "tool_calls", 1
        else:
            message = {"role": "assistant", "content": reply.text}
            finish, completion_tokens = "stop", _count_tokens(reply.text)
        await self._json(
            send,
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    async def _slow(self, emit, frame, pieces: list[str], seconds: float, receive) -> bool:
        """Send the pieces one by one; False (and a note in ``abandoned``) when the client disconnects first."""
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            for sent, piece in enumerate(pieces):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), seconds)
                if gone.is_set():
                    self.abandoned.append(sent)
                    return False
                await emit(frame({"content": piece}))
            return True
        finally:
            watcher.cancel()

    async def _stream(self, send, reply: _Reply, model: str, prompt_tokens: int, payload: dict, receive) -> None:
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())

        def frame(delta: dict, finish: str | None = None) -> bytes:
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def emit(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await emit(frame({"role": "assistant", "content": ""}))
        if reply.kind == "tool":
            call = self._tool_call(reply)
            args = call["function"]["arguments"]
            head = {"index": 0, "id": call["id"], "type": "function", "function": {"name": reply.name, "arguments": ""}}
            await emit(frame({"tool_calls": [head]}))
            for i in range(0, len(args), self.chunk_size):
                part = {"index": 0, "function": {"arguments": args[i : i + self.chunk_size]}}
                await emit(frame({"tool_calls": [part]}))
            await emit(frame({}, "tool_calls"))
            completion_tokens = 1
        else:
            pieces = [reply.text[i : i + self.chunk_size] for i in range(0, len(reply.text), self.chunk_size)]
            if reply.kind == "slow" and not await self._slow(emit, frame, pieces, reply.seconds, receive):
                return
            if reply.kind == "drop":
                for piece in pieces[: reply.n_chunks]:
                    await emit(frame({"content": piece}))
                    await asyncio.sleep(0.01)
                raise _Dropped("connection dropped on purpose")
            for piece in pieces if reply.kind != "slow" else []:
                await emit(frame({"content": piece}))
            await emit(frame({}, "stop"))
            completion_tokens = _count_tokens(reply.text)
        if (payload.get("stream_options") or {}).get("include_usage"):
            usage = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
            await emit(f"data: {json.dumps(usage)}\n\n".encode())
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
