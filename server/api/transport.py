"""Helpers shared by the chat transports (OpenAI-compatible /v1, WebSocket, gRPC); no HTTP in here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

# Items queued between a pump's task and its reader; bounded so a slow client slows the producer.
_PUMP_QUEUE_SIZE = 64


def event_dict(event: Any) -> dict:
    """A chat event as a plain JSON-ready dict, whether the service yielded a dict or a pydantic model."""
    if hasattr(event, "model_dump"):
        return event.model_dump(mode="json")
    return dict(event)


def validation_message(exc: ValidationError) -> str:
    """One readable line naming each invalid field and why."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ())) or 'request'}: {err.get('msg')}" for err in exc.errors()
    )


class EventPump:
    """Runs an async iterator in a task of its own, so a caller may await its first items before replying.

    The source is iterated and closed in one task (the streams of model clients
    must not hop between tasks); ``close()`` cancels it, e.g. when the client left.
    """

    _END = object()

    def __init__(self, source: AsyncIterator[Any]) -> None:
        self._queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue(_PUMP_QUEUE_SIZE)
        self._finished = False
        self._task = asyncio.create_task(self._run(source))

    async def _run(self, source: AsyncIterator[Any]) -> None:
        try:
            closer = contextlib.aclosing(source) if hasattr(source, "aclose") else contextlib.nullcontext(source)
            async with closer:
                async for item in source:
                    await self._queue.put((item, None))
        except Exception as exc:  # handed to the reader, which decides what the client sees
            await self._queue.put((None, exc))
            return
        await self._queue.put((self._END, None))

    def __aiter__(self) -> "EventPump":
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        item, exc = await self._queue.get()
        if exc is not None or item is self._END:
            self._finished = True
        if exc is not None:
            raise exc
        if item is self._END:
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
