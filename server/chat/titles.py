"""Conversation titles: a truncated question at once, replaced by a model-written title later.

The model writes the title as the next turn of the conversation it has just answered, so that the model server
reuses what it computed for the answer (see ``model_title``).
"""

from __future__ import annotations

import re

from server.chat.context import Exchange
from server.llm.base import ChatModel

TITLE_MAX_TOKENS = 24
_QUOTES = "\"'“”‘’「」『』《》`*#"
_SENTENCE_BREAK = re.compile(r"[.!?]\s+\S|[。！？]\s*\S")
# Citation marks a knowledge-base conversation's model adds out of habit: "Compost basics [1]".
_CITATIONS = re.compile(r"(\s*\[\d{1,3}\])+")


def fallback_title(question: str, max_chars: int) -> str:
    """The question's first line, shortened to ``max_chars`` with an ellipsis."""
    text = " ".join(question.split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def clean_title(raw: str, max_chars: int) -> str:
    """The model's title without quotes, labels, citation marks, trailing punctuation or extra lines."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = re.sub(r"^(title|标题)\s*[:：]\s*", "", text, flags=re.I)
    text = _CITATIONS.sub("", text)
    text = text.strip(_QUOTES + " ").rstrip("。.!！?？,，;；:：").strip(_QUOTES + " ")
    # Small models often answer the question instead; several sentences or a long line are no title,
    # and the fallback (the question itself) is then the better one.
    if not text or _SENTENCE_BREAK.search(text) or len(text) > 2 * max_chars:
        return ""
    return fallback_title(text, max_chars)


async def model_title(llm: ChatModel, instruction: str, exchange: Exchange, max_chars: int) -> str:
    """Ask the model for a title of the conversation that ``exchange`` began, in the same conversation: the
    exchange, then ``instruction``. The model server has just read and written the exchange, so it reads only
    the instruction, and the answer's system prompt stays computed for the next question. Empty if its reply
    had nothing usable."""
    raw = await llm.complete(exchange.followed_by(instruction), temperature=0.2, max_tokens=TITLE_MAX_TOKENS)
    return clean_title(raw, max_chars)
