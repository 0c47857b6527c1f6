"""A real websocket server on 127.0.0.1 speaking iFlytek Spark's chat protocol, for tests.

It checks the signed URL the way the real service does (HMAC-SHA256 over host, date and
request line, recomputed here independently of the client code) and rejects bad
signatures with HTTP 401 during the handshake. Replies are scripted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from collections import deque
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


class FakeSpark:
    """Context manager running a scripted Spark websocket server in a background thread."""

    chunk_size: int = 4
    default_reply: str = "星火的假回答。"

    def __init__(self, api_key: str = "test-key", api_secret: str = "test-secret", app_id: str = "test-app") -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.app_id = app_id
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.rejected: list[str] = []  # reasons of refused handshakes
        self._replies: deque[tuple] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0
        self.base_url = ""

    # ---- scripting -------------------------------------------------------------------------

    def queue(self, *replies: str) -> None:
        with self._lock:
            self._replies.extend(("text", r) for r in replies)

    def queue_error(self, code: int, message: str) -> None:
        with self._lock:
            self._replies.append(("error", code, message))

    def queue_close_after(self, text: str, n_chunks: int) -> None:
        with self._lock:
            self._replies.append(("close", text, n_chunks))

    def queue_bad_frame(self) -> None:
        with self._lock:
            self._replies.append(("bad",))

    def queue_hang(self, seconds: float) -> None:
        with self._lock:
            self._replies.append(("hang", seconds))

    def _next(self) -> tuple:
        with self._lock:
            return self._replies.popleft() if self._replies else ("text", self.default_reply)

    # ---- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "FakeSpark":
        self._thread = threading.Thread(target=self._run, name="fake-spark", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Spark server did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, process_request=self._check_auth) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.base_url = f"ws://127.0.0.1:{self.port}"
            self._ready.set()
            await self._stop.wait()

    # ---- protocol ----------------------------------------------------------------------------

    def _reject(self, connection, reason: str):
        self.rejected.append(reason)
        return connection.respond(HTTPStatus.UNAUTHORIZED, json.dumps({"message": reason}) + "\n")

    def _check_auth(self, connection, request):
        parsed = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        if not {"authorization", "date", "host"} <= query.keys():
            return self._reject(connection, "missing authorization, date or host")
        try:
            auth = base64.b64decode(query["authorization"]).decode()
        except ValueError:
            return self._reject(connection, "authorization is not base64")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        if fields.get("api_key") != self.api_key:
            return self._reject(connection, "invalid api_key")
        if fields.get("algorithm") != "hmac-sha256" or fields.get("headers") != "host date request-line":
            return self._reject(connection, "unsupported algorithm or headers")
        origin = f"host: {query['host']}\ndate: {query['date']}\nGET {parsed.path} HTTP/1.1"
        expected = base64.b64encode(
            hmac.new(self.api_secret.encode(), origin.encode(), hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(fields.get("signature", ""), expected):
            return self._reject(connection, "HMAC signature does not match")
        try:
            skew = abs((datetime.now(timezone.utc) - parsedate_to_datetime(query["date"])).total_seconds())
        except (TypeError, ValueError):
            return self._reject(connection, "date is not RFC 1123")
        if skew > 300:
            return self._reject(connection, "HMAC signature cannot be verified: request date out of range")
        self.paths.append(parsed.path)
        return None

    async def _handler(self, ws) -> None:
        try:
            raw = await ws.recv()
        except ConnectionClosed:
            return
        sid = f"cht{uuid.uuid4().hex[:12]}"
        try:
            request = json.loads(raw)
        except ValueError:
            await self._send_error(ws, sid, 10003, "request is not JSON")
            return
        self.requests.append(request)
        header = request.get("header") or {}
        chat = (request.get("parameter") or {}).get("chat") or {}
        if header.get("app_id") != self.app_id:
            await self._send_error(ws, sid, 10313, "app_id and api_key do not match")
            return
        max_tokens = chat.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            await self._send_error(ws, sid, 10005, "max_tokens must be an integer in [1, 8192]")
            return
        reply = self._next()
        if reply[0] == "hang":
            await asyncio.sleep(reply[1])
            reply = self._next()
        kind = reply[0]
        if kind == "error":
            await self._send_error(ws, sid, reply[1], reply[2])
            return
        if kind == "bad":
            await ws.send("this is not json")
            return
        text = reply[1]
        pieces = [text[i : i + self.chunk_size] for i in range(0, len(text), self.chunk_size)] or [""]
        if kind == "close":
            for seq, piece in enumerate(pieces[: reply[2]]):
                await ws.send(self._frame(sid, 0 if seq == 0 else 1, seq, piece))
            return  # closing without a status-2 frame
        for seq, piece in enumerate(pieces):
            last = seq == len(pieces) - 1
            status = 2 if last else (0 if seq == 0 else 1)
            await ws.send(self._frame(sid, status, seq, piece, usage=len(text) if last else None))

    @staticmethod
    def _frame(sid: str, status: int, seq: int, content: str, usage: int | None = None) -> str:
        payload: dict = {
            "choices": {"status": status, "seq": seq, "text": [{"content": content, "role": "assistant", "index": 0}]}
        }
        if usage is not None:
            tokens = {"question_tokens": 4, "prompt_tokens": 5, "completion_tokens": usage, "total_tokens": 5 + usage}
            payload["usage"] = {"text": tokens}
        header = {"code": 0, "message": "Success", "sid": sid, "status": status}
        return json.dumps({"header": header, "payload": payload}, ensure_ascii=False)

    @staticmethod
    async def _send_error(ws, sid: str, code: int, message: str) -> None:
        await ws.send(json.dumps({"header": {"code": code, "message": message, "sid": sid, "status": 2}}))
        await ws.close()
