"""Plain chat with a model: system template, trimmed history, the question, streamed answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server.chat.context import ChatContext


async def run(ctx: ChatContext) -> AsyncIterator[dict[str, Any]]:
    """Stream the model's answer as ``delta`` events."""
    system = ctx.render(ctx.template(ctx.settings.chat.prompt_template))
    async for event in ctx.answer(ctx.messages(system)):
        yield event
