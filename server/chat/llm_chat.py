"""Plain chat with a model: system template, trimmed history, the question, streamed answer."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from server.chat.context import ChatContext
from server.chat.events import ChatEvent


async def run(ctx: ChatContext) -> AsyncGenerator[ChatEvent, None]:
    """Stream the model's answer as ``delta`` events."""
    system = ctx.render(ctx.template(ctx.settings.chat.prompt_template))
    async for event in ctx.answer(ctx.messages(system)):
        yield event
