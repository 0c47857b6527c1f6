"""Chat route: POST /chat/{mode} answers as server-sent events, or as one JSON body with stream=false."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, StreamingResponse

from server.api.deps import ServicesDep
from server.api.transport import SSE_CONTENT, SSE_DONE, SSE_HEADERS, SSE_MEDIA_TYPE, located, sse, with_download_urls
from server.chat.events import ChatEvent
from server.chat.schemas import ChatMode, ChatOptions, ChatResult
from server.errors import AppError

logger = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])

CHAT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "With stream=true (the default), the chat events as server-sent events ending with "
        "`data: [DONE]`; with stream=false, the whole answer as one JSON ChatResult.",
        "content": SSE_CONTENT,
    },
}


async def _relay(first: ChatEvent, events: AsyncGenerator[ChatEvent, None]) -> AsyncGenerator[str, None]:
    async with contextlib.aclosing(events):
        yield sse(located(first))
        async for event in events:
            yield sse(located(event))
    yield SSE_DONE


@router.post("/chat/{mode}", response_model=ChatResult, responses=CHAT_RESPONSES)
async def chat(mode: ChatMode, body: ChatOptions, services: ServicesDep) -> Response | ChatResult:
    """Answer a question in the mode named by the path (SSE stream, or JSON with stream=false).

    The path names the mode, whatever the body says.
    """
    chat_request = body.in_mode(mode)
    failures: list[AppError] = []
    if not chat_request.stream:
        result: ChatResult = await services.chat.run_to_completion(chat_request, failures=failures)
        result.sources = with_download_urls(result.sources)
        if failures:
            # A failed answer is never a 200: the error's status, with whatever part was written.
            error = failures[0]
            if not result.answer and result.conversation_id is None:
                return JSONResponse({"error": error.to_dict()}, status_code=error.status)
            return JSONResponse(result.model_dump(mode="json"), status_code=error.status)
        return result
    events = services.chat.run(chat_request, failures)
    first = await anext(events, None)
    if first is None or (first["type"] == "error" and failures):
        # Nothing was stored or streamed yet: a plain HTTP error says it best.
        await events.aclose()
        error = failures[0] if failures else AppError("the chat service produced no events")
        return JSONResponse({"error": error.to_dict()}, status_code=error.status)
    return StreamingResponse(_relay(first, events), media_type=SSE_MEDIA_TYPE, headers=SSE_HEADERS)
