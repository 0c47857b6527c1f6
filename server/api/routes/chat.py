"""Chat route: POST /chat/{mode} answers as server-sent events, or as one JSON body with stream=false."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from server.api.deps import ServicesDep
from server.chat.schemas import ChatRequest
from server.errors import AppError, InvalidInput

logger = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _sse(data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    return f"data: {text}\n\n"


async def _chat_request(request: Request, mode: str) -> ChatRequest:
    try:
        payload = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the request body must be a JSON object") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("the request body must be a JSON object")
    payload["mode"] = mode  # the path names the mode, whatever the body says
    try:
        return ChatRequest(**payload)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from exc


async def _relay(first: dict[str, Any], events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async with contextlib.aclosing(events):
        yield _sse(first)
        async for event in events:
            yield _sse(event)
    yield _sse("[DONE]")


@router.post("/chat/{mode}", response_model=None)
async def chat(mode: Literal["llm", "kb", "search", "agent"], request: Request, services: ServicesDep):
    """Answer a question in the mode named by the path (SSE stream, or JSON with stream=false)."""
    chat_request = await _chat_request(request, mode)
    if not chat_request.stream:
        failures: list[AppError] = []
        result = await services.chat.run_to_completion(chat_request, failures=failures)
        if failures:
            # A failed answer is never a 200: the error's status, with whatever part was written.
            error = failures[0]
            if not result["answer"] and result["conversation_id"] is None:
                return JSONResponse({"error": error.to_dict()}, status_code=error.status)
            return JSONResponse({**result, "error": error.to_dict()}, status_code=error.status)
        return result
    failures: list[AppError] = []
    events = services.chat.run(chat_request, failures)
    first = await anext(events, None)
    if first is None or (first["type"] == "error" and failures):
        # Nothing was stored or streamed yet: a plain HTTP error says it best.
        await events.aclose()
        error = failures[0] if failures else AppError("the chat service produced no events")
        return JSONResponse({"error": error.to_dict()}, status_code=error.status)
    return StreamingResponse(_relay(first, events), media_type="text/event-stream", headers=SSE_HEADERS)
