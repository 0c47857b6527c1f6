"""A small reverse proxy in front of llama_cpp.server that queues generations with a bound.

llama_cpp.server runs one generation at a time; by default a new request even interrupts
the one streaming. The proxy lets one generation through at a time, makes the others wait
in arrival order, and answers 503 once ``max_queue`` requests are already waiting. Bytes
(SSE included) are forwarded unchanged. A client that goes away stops its generation.
``GET /queue`` tells how many generations are running and waiting, ``GET /speed`` how fast the
model read a prompt when it started.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import AppError
from server.llm.local.prompt_timing import read_prompt_speed
from server.llm.local.speed import PromptSpeed
from server.llm.local.status import QUEUE_PATH, SCORE_PATH, SPEED_PATH

logger = logging.getLogger(__name__)

# Endpoints that run the model and therefore wait their turn.
GATED_PATHS = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", SCORE_PATH}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


class QueueProxy:
    """ASGI app forwarding to ``upstream`` with one generation at a time and a bounded wait queue."""

    def __init__(
        self,
        upstream: str,
        max_queue: int,
        timeout: float = 600.0,
        access_check: Callable[[str | None, str | None], None] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.max_queue = max_queue
        self.timeout = timeout
        # Called with (Authorization header, client host); raises AppError to refuse the caller.
        self.access_check = access_check
        self.waiting = 0
        self.active = 0
        self.prompt_speed: PromptSpeed | None = None
        # Where the model process writes how fast it read its recent prompts (prompt_timing.py).
        self.timing_file: Path | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        handler = asyncio.ensure_future(self._handle(scope, body, send))
        watcher = asyncio.ensure_future(self._wait_disconnect(receive))
        done, _ = await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
        for task in (handler, watcher):
            if task not in done:
                task.cancel()
        await asyncio.gather(handler, watcher, return_exceptions=True)
        if handler in done and not handler.cancelled() and (failure := handler.exception()) is not None:
            raise failure

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _wait_disconnect(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    def _client_for_loop(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=self.max_queue + 8, max_keepalive_connections=4)
            timeout = httpx.Timeout(self.timeout, connect=10.0)
            self._client = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)
        return self._client

    async def _json(self, send: Send, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def _refusal(self, scope: Scope) -> AppError | None:
        if self.access_check is None:
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        try:
            self.access_check(headers.get("authorization"), client[0] if client else None)
        except AppError as exc:
            return exc
        return None

    def speed_report(self) -> dict[str, Any]:
        """``GET /speed``: prompt tokens/s over the model's recent prompts, else as timed at start-up."""
        start_up = self.prompt_speed
        recent = read_prompt_speed(self.timing_file)
        speed = recent if recent is not None else (start_up.tokens_per_s if start_up else None)
        return {
            "prompt_tokens_per_s": round(speed, 1) if speed is not None else None,
            "measured_on": "recent prompts" if recent is not None else "start-up" if start_up else None,
            "start_up_tokens_per_s": round(start_up.tokens_per_s, 1) if start_up else None,
            "prompt_tokens": start_up.prompt_tokens if start_up else None,
        }

    async def _handle(self, scope: Scope, body: bytes, send: Send) -> None:
        path = scope["path"]
        refusal = self._refusal(scope)
        if refusal is not None:
            error = {"message": refusal.message, "type": refusal.code, "code": refusal.status}
            await self._json(send, refusal.status, {"error": error})
            return
        if scope["method"] == "GET" and path == QUEUE_PATH:
            await self._json(send, 200, {"active": self.active, "waiting": self.waiting, "max_queue": self.max_queue})
            return
        if scope["method"] == "GET" and path == SPEED_PATH:
            await self._json(send, 200, self.speed_report())
            return
        if scope["method"] != "POST" or path not in GATED_PATHS:
            await self._forward(scope, body, send)
            return
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(1)
        if self._semaphore.locked() and self.waiting >= self.max_queue:
            logger.warning("model busy: %d requests waiting; refusing %s", self.waiting, path)
            message = f"model busy: {self.waiting} requests waiting"
            await self._json(send, 503, {"error": {"message": message, "type": "server_busy", "code": 503}})
            return
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            await self._forward(scope, body, send)
        finally:
            self.active -= 1
            self._semaphore.release()

    async def _forward(self, scope: Scope, body: bytes, send: Send) -> None:
        client = self._client_for_loop()
        url = self.upstream + scope["path"]
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        request = client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            logger.error("model process unreachable at %s: %s", self.upstream, exc)
            await self._json(
                send,
                502,
                {"error": {"message": f"model process unreachable: {exc}", "type": "upstream_error", "code": 502}},
            )
            return
        try:
            out_headers = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.multi_items()
                if k.lower() not in HOP_BY_HOP
            ]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out_headers})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


def serve_in_thread(app: ASGIApp, sock: socket.socket, name: str = "llm-proxy") -> tuple[uvicorn.Server, threading.Thread]:
    """Serve an ASGI app on an already bound socket from a daemon thread; returns once it accepts."""
    sock.listen(128)
    config = uvicorn.Config(app, interface="asgi3", log_level="warning", access_log=False, timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.02)
    return server, thread
