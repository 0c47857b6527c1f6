"""Knowledge-base chat: retrieve passages, answer from them with [n] citations, then list the sources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio

from server.chat import events
from server.chat.context import ChatContext
from server.chat.passages import answer_from, fit_passages
from server.chat.sources import field_of, kb_source
from server.errors import InvalidInput

NO_MATCH = (
    "No passage in knowledge base '{kb}' matched the question (threshold {threshold}). "
    "Try lowering the score threshold or rephrasing."
)


def effective_threshold(ctx: ChatContext, kb_name: str) -> float:
    """The score threshold the search applied: request, then settings, then the embed model's own."""
    if ctx.request.score_threshold is not None:
        return ctx.request.score_threshold
    if ctx.settings.kb.score_threshold is not None:
        return ctx.settings.kb.score_threshold
    info = ctx.kb.get_kb(kb_name)
    model = ctx.settings.kb.embed_models.get(field_of(info, "embed_model") or "")
    return model.score_threshold if model is not None else 0.0


async def run(ctx: ChatContext) -> AsyncIterator[dict[str, Any]]:
    """Answer from the passages of ``request.kb_name`` that pass the threshold; never invent sources."""
    request = ctx.request
    kb_name = request.kb_name
    if not kb_name:
        raise InvalidInput("knowledge-base chat needs kb_name")
    ctx.meta["kb_name"] = kb_name
    search = partial(
        ctx.kb.search,
        kb_name,
        ctx.question,
        top_k=request.top_k,
        score_threshold=request.score_threshold,
        mode=request.search_mode,
    )
    hits = await anyio.to_thread.run_sync(search)
    if not hits:
        threshold = await anyio.to_thread.run_sync(effective_threshold, ctx, kb_name)
        yield events.delta(NO_MATCH.format(kb=kb_name, threshold=f"{threshold:g}"))
        yield events.sources([])
        return
    items = [(kb_source(i, hit, kb_name), str(field_of(hit, "text") or "")) for i, hit in enumerate(hits, 1)]
    template = ctx.template(ctx.settings.chat.kb_prompt_template)
    system, sources = fit_passages(ctx, template, items, kb=kb_name)
    async for event in answer_from(ctx, system):
        yield event
    yield events.sources(sources)
