"""Fitting numbered passages into the prompt and answering from them (shared by kb and search chat)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from server.chat.context import ChatContext
from server.chat.events import ChatEvent
from server.chat.history import MESSAGE_OVERHEAD
from server.chat.schemas import Source
from server.chat.sources import passage

# Shortest passage text worth sending; below this a passage is dropped rather than cut.
MIN_PASSAGE_CHARS = 80


# Template that wraps the question sent after numbered passages; a prompts file without it sends the
# bare question. On the tuning halves a reminder placed after the question, where a small model reads it
# last, raised the share of answers citing a passage far more than the same rule in the system prompt.
QUESTION_TEMPLATE = "passages_question"


def passages_question(ctx: ChatContext) -> str:
    """The question as the model sees it after the passages (the stored question stays as asked)."""
    template = ctx.templates.get(QUESTION_TEMPLATE)
    return ctx.render(template, question=ctx.question) if template else ctx.question


def fit_passages(
    ctx: ChatContext, template: str, items: list[tuple[Source, str]], **values: Any
) -> tuple[str, list[Source]]:
    """The system prompt holding as many passages as fit the model's window, and their sources.

    Lowest-ranked passages go first; the last one left is shortened rather than dropped.
    """
    items = list(items)
    room = ctx.budget - ctx.count(passages_question(ctx)) - 2 * MESSAGE_OVERHEAD

    def build(chosen: list[tuple[Source, str]]) -> str:
        context = "\n\n".join(passage(source, text) for source, text in chosen)
        return ctx.render(template, context=context, **values)

    system = build(items)
    while len(items) > 1 and ctx.count(system) > room:
        items.pop()
        system = build(items)
    while items and ctx.count(system) > room:
        source, text = items[0]
        if len(text) <= MIN_PASSAGE_CHARS:
            break
        items[0] = (source, text[: len(text) * 2 // 3])
        system = build(items)
    return system, [source for source, _ in items]


async def answer_from(ctx: ChatContext, system: str) -> AsyncGenerator[ChatEvent, None]:
    async for event in ctx.answer(ctx.messages(system, passages_question(ctx))):
        yield event
