"""Bilingual answering: a Chinese question is answered in English, then the answer is translated back.

Small local models reason better in English; the user still reads Chinese. The streamed
deltas are the back-translation; both English texts are kept on the stored answer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from server.chat import events
from server.chat.context import ChatContext, ModeHandler, has_cjk
from server.chat.events import ChatEvent


def applies(ctx: ChatContext) -> bool:
    return ctx.request.bilingual and has_cjk(ctx.request.query)


async def translate(ctx: ChatContext, template_name: str, text: str) -> str:
    messages = [{"role": "system", "content": ctx.templates[template_name]}, {"role": "user", "content": text}]
    return (await ctx.complete(messages, temperature=0.0)).strip()


async def run(ctx: ChatContext, mode: ModeHandler) -> AsyncGenerator[ChatEvent, None]:
    """Run ``mode`` on the English question; stream the Chinese translation of its answer."""
    question_en = await translate(ctx, "translate_to_en", ctx.request.query)
    ctx.question = question_en or ctx.request.query
    answer_en: list[str] = []
    async for event in mode(ctx):
        if event["type"] == "delta":
            answer_en.append(event["text"])
        else:
            # Sources pass at once: the evidence is shown while the answer is written and translated.
            yield event
    english = "".join(answer_en)
    ctx.meta["bilingual"] = {"question_en": ctx.question, "answer_en": english}
    if english.strip():
        messages = [
            {"role": "system", "content": ctx.templates["translate_to_zh"]},
            {"role": "user", "content": english},
        ]
        async for piece in ctx.stream(messages, temperature=0.0):
            yield events.delta(piece)
