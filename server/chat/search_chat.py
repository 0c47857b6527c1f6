"""Search-engine chat: query the web, list the numbered results as sources, then answer from them."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from server.chat import events
from server.chat.context import ChatContext
from server.chat.events import ChatEvent
from server.chat.passages import answer_from, fit_passages
from server.chat.sources import web_source

NO_RESULTS = "The web search ({engine}) returned no results for this question. Try rephrasing it."


async def run(ctx: ChatContext) -> AsyncGenerator[ChatEvent, None]:
    """Search with the request's engine (or the default), then answer citing the results."""
    request = ctx.request
    engine = ctx.search_engines().get(request.engine)
    ctx.meta["engine"] = engine.name
    count = request.result_count or ctx.settings.chat.search.result_count
    results = await engine.search(ctx.question, count)
    if not results:
        yield events.sources([])
        yield events.delta(NO_RESULTS.format(engine=engine.name))
        return
    items = [(web_source(i, result), result.snippet or result.title) for i, result in enumerate(results, 1)]
    template = ctx.template(ctx.settings.chat.search_prompt_template)
    system, sources = fit_passages(ctx, template, items)
    # Evidence first: the results are shown while the model reads them.
    yield events.sources(sources)
    async for event in answer_from(ctx, system):
        yield event
