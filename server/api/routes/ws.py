"""WebSocket chat: several questions over one socket, each answered by its own tagged event stream.

Protocol (JSON text frames):
- client -> server: ``{"id"?: str, "query": str, "mode"?: ..., other ChatRequest fields}`` asks a
  question; ``{"type": "cancel", "id": str}`` stops the answer to request ``id``.
- server -> client: ``{"type": "accepted", "request_id"}`` first, then the chat events of that
  question (``start``, ``delta``, ``sources``, ``tool``, ``done`` or ``error``), each frame carrying
  ``request_id`` (the client's ``id``, or one the server generated). Frames of concurrent questions
  interleave. Each answer ends with its ``done`` or ``error`` frame; a bad frame gets an ``error``
  frame with code ``invalid_input`` and the socket stays open.

Authentication: the ``Authorization: Bearer <key>`` header or, for browsers that cannot set
headers, ``?api_key=<key>``. A refused socket gets an ``error`` frame, then close code 4401.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from configs import Settings
from server.api.transport import EventPump, event_dict, located
from server.auth import check_access, check_browser
from server.chat.schemas import ChatRequest
from server.chat.services import ChatServices
from server.errors import AppError, validation_message
from server.services import Services

logger = logging.getLogger(__name__)

router = APIRouter(tags=["chat"])

# Close code sent to a socket whose credentials were refused (4000-4999 are for applications).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
_TERMINAL_TYPES = {"done", "error"}
# Longest accepted client request id.
_MAX_ID_CHARS = 200


class _ChatSocket:
    """One connected socket: reads frames, runs each question in its own task, writes tagged frames."""

    def __init__(self, websocket: WebSocket, chat: ChatServices, max_requests: int) -> None:
        self._ws = websocket
        self._chat = chat
        self._max_requests = max_requests
        self._send_lock = asyncio.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def send(self, frame: dict[str, Any]) -> None:
        # Concurrent answers share the socket; one frame at a time keeps frames whole.
        async with self._send_lock:
            if self._ws.application_state == WebSocketState.CONNECTED:
                await self._ws.send_text(json.dumps(frame, ensure_ascii=False, default=str))

    async def send_error(self, request_id: str | None, code: str, message: str) -> None:
        await self.send({"type": "error", "code": code, "message": message, "request_id": request_id})

    async def serve(self) -> None:
        try:
            while True:
                message = await self._ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    raw = (message.get("bytes") or b"").decode("utf-8", "replace")
                await self._handle(raw)
        except WebSocketDisconnect:
            pass
        finally:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)

    async def _handle(self, raw: str) -> None:
        try:
            payload = json.loads(raw)
        except ValueError:
            await self.send_error(None, "invalid_input", "frame is not valid JSON")
            return
        if not isinstance(payload, dict):
            await self.send_error(None, "invalid_input", "frame must be a JSON object")
            return
        raw_id = payload.pop("id", None)
        if raw_id is not None and (not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool)
                                   or not str(raw_id) or len(str(raw_id)) > _MAX_ID_CHARS):
            await self.send_error(None, "invalid_input", f"id must be a string of 1..{_MAX_ID_CHARS} characters")
            return
        request_id = str(raw_id) if raw_id is not None else None
        kind = payload.pop("type", None)
        if kind == "cancel":
            await self._cancel(request_id)
            return
        if kind not in (None, "chat"):
            await self.send_error(request_id, "invalid_input", f"unknown frame type {kind!r}: use 'chat' or 'cancel'")
            return
        await self._start(request_id or uuid.uuid4().hex, payload)

    async def _start(self, request_id: str, payload: dict[str, Any]) -> None:
        if request_id in self._tasks:
            await self.send_error(request_id, "invalid_input", f"request {request_id!r} is still running")
            return
        if len(self._tasks) >= self._max_requests:
            await self.send_error(
                request_id, "too_many_requests",
                f"{self._max_requests} questions are already running on this socket; wait for one to finish",
            )
            return
        try:
            request = ChatRequest(**payload)
        except ValidationError as exc:
            await self.send_error(request_id, "invalid_input", validation_message(exc))
            return
        await self.send({"type": "accepted", "request_id": request_id})
        task = asyncio.create_task(self._answer(request_id, request))
        self._tasks[request_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(request_id, None))

    async def _answer(self, request_id: str, request: ChatRequest) -> None:
        finished = False
        pump = EventPump(self._chat.run(request))
        try:
            async for event in pump:
                frame = event_dict(located(event))
                frame["request_id"] = request_id
                await self.send(frame)
                finished = event["type"] in _TERMINAL_TYPES
            if not finished:
                await self.send_error(request_id, "internal_error", "the answer ended without a result")
        except AppError as exc:
            await self.send_error(request_id, exc.code, exc.message)
        except (WebSocketDisconnect, OSError, RuntimeError):
            # The socket went away while we wrote; serve() cancels the other answers.
            logger.info("WebSocket closed during answer %s", request_id)
        except Exception:
            logger.exception("WebSocket answer %s failed", request_id)
            await self.send_error(request_id, "internal_error", "the answer failed; see the server log")
        finally:
            await pump.close()

    async def _cancel(self, request_id: str | None) -> None:
        task = self._tasks.get(request_id) if request_id else None
        if task is None:
            await self.send_error(request_id, "not_found", f"no running request with id {request_id!r}")
            return
        task.cancel()
        await asyncio.wait([task])
        await self.send_error(request_id, "cancelled", "the answer was cancelled at the client's request")


@router.websocket("/ws/chat")
async def chat_socket(websocket: WebSocket) -> None:
    """Chat over a WebSocket: JSON questions in, tagged event frames out."""
    services: Services = websocket.app.state.services
    settings: Settings = websocket.app.state.settings
    authorization = websocket.headers.get("authorization")
    token = websocket.query_params.get("api_key")
    if not authorization and token:
        authorization = f"Bearer {token}"
    await websocket.accept()
    try:
        check_access(settings, authorization, websocket.client.host if websocket.client else None)
        check_browser(settings, websocket.headers.get("origin"), websocket.headers.get("host"))
    except AppError as exc:
        logger.warning("WebSocket from %s refused: %s", websocket.client, exc.message)
        await websocket.send_json({"type": "error", "code": exc.code, "message": exc.message, "request_id": None})
        close_code, reason = (CLOSE_UNAUTHORIZED, "unauthorized") if exc.status == 401 else (CLOSE_FORBIDDEN, "forbidden")
        await websocket.close(code=close_code, reason=reason)
        return
    await _ChatSocket(websocket, services.chat, settings.server.ws_max_requests).serve()
