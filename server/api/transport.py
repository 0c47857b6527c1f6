"""Helpers shared by the chat transports: server-sent events, download links of sources, and a pump
that runs an answer in a task of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Iterable
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from server.chat.events import ChatEvent
from server.chat.schemas import Source

T = TypeVar("T")

# Items queued between a pump's task and its reader; bounded so a slow client slows the producer.
_PUMP_QUEUE_SIZE = 64
SSE_MEDIA_TYPE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_DONE_DATA = "[DONE]"


def sse(data: object) -> str:
    """One server-sent event: JSON data, or a string as it is (the closing ``[DONE]``)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    return f"data: {text}\n\n"


SSE_DONE = sse(SSE_DONE_DATA)


# One server-sent event as OpenAPI 3.2 describes a stream's items: its ``data`` line holds a JSON object,
# or ``[DONE]`` last.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}},
}


# The ``content`` of a response that streams server-sent events.
SSE_CONTENT: dict[str, Any] = {SSE_MEDIA_TYPE: {"itemSchema": SSE_EVENT_SCHEMA}}


def sse_response_doc(description: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route answering with server-sent events, so the API docs show their media type."""
    return {200: {"description": description, "content": SSE_CONTENT}}


def download_url(kb: str, file_name: str) -> str:
    """The API path that downloads a knowledge-base file."""
    return f"/kbs/{quote(kb, safe='')}/files/{quote(file_name, safe='')}/download"


def with_download_urls(sources: Iterable[Source]) -> list[Source]:
    """Sources with a knowledge-base file given their download link (a PDF's opens at the passage's page:
    '#page=N', which browsers' PDF viewers follow); web results keep their own URL."""
    out = []
    for source in sources:
        if not source.get("url") and source.get("kb") and source.get("file"):
            source = source.copy()
            page = source.get("page")
            source["url"] = download_url(str(source["kb"]), source["file"]) + (f"#page={page}" if page else "")
        out.append(source)
    return out


def event_dict(event: ChatEvent) -> dict[str, Any]:
    """A chat event as a plain JSON-ready dict of its own (safe to add fields to)."""
    return dict(event)


def located(event: ChatEvent) -> ChatEvent:
    """The event with download links on its knowledge-base sources (other events as they are)."""
    if event["type"] != "sources":
        return event
    return {"type": "sources", "sources": with_download_urls(event["sources"])}


class EventPump(Generic[T]):
    """Runs an async generator in a task of its own, so a caller may await its first items before replying.

    The source is iterated and closed in one task (the streams of model clients
    must not hop between tasks); ``close()`` cancels it, e.g. when the client left.
    """

    def __init__(self, source: AsyncGenerator[T, None]) -> None:
        # (item,) for each item, then None at the end or the exception that ended the source.
        self._queue: asyncio.Queue[tuple[T] | BaseException | None] = asyncio.Queue(_PUMP_QUEUE_SIZE)
        self._finished = False
        self._task = asyncio.create_task(self._run(source))

    async def _run(self, source: AsyncGenerator[T, None]) -> None:
        try:
            async with contextlib.aclosing(source):
                async for item in source:
                    await self._queue.put((item,))
        except Exception as exc:  # handed to the reader, which decides what the client sees
            await self._queue.put(exc)
            return
        await self._queue.put(None)

    def __aiter__(self) -> EventPump[T]:
        return self

    async def __anext__(self) -> T:
        if self._finished:
            raise StopAsyncIteration
        got = await self._queue.get()
        if isinstance(got, tuple):
            return got[0]
        self._finished = True
        if got is None:
            raise StopAsyncIteration
        raise got

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
