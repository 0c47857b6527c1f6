"""Rewriting a question before retrieval, with the chat model.

* Condensing: a follow-up ("and for a fixed-term one?") is rewritten into a standalone question from
  the conversation, so retrieval sees what is really asked. It runs whenever there is history. It is asked
  as the conversation's next turn: after the previous answer as the model read and wrote it where this
  process made that answer (``ChatContext.previous``), so the model server reads only the request; else
  after the stored history.
* Hypothetical answer (HyDE, setting ``chat.rewrite_query``): the model writes a short answer in the
  documents' register; retrieval searches with the question and that answer, whose words are closer
  to the documents' than an everyday question's.

Both cost model time, and both fall back to the question as asked when the model fails or says
nothing useful. Knowledge-base chat shows the question's own evidence before the hypothetical answer is
written (kb_chat.py).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from configs import Settings
from configs.prompts import load_prompts
from server.chat.context import ChatContext
from server.chat.schemas import ChatRequest
from server.errors import AppError, ServiceUnavailable
from server.knowledge_base.bm25 import tokenize
from server.llm.base import ChatModel

logger = logging.getLogger(__name__)

CONDENSE_TEMPLATE = "condense_question"
HYDE_TEMPLATE = "hypothetical_answer"
CONDENSE_TOKENS = 96
HYDE_TOKENS = 96
# History a condensed question is written from: the last exchanges, each cut to this many characters.
CONDENSE_TURNS = 2
CONDENSE_CHARS = 400


def rewrites_by_default(settings: Settings, model_builtin: str | None, prompt_speed: float | None) -> bool:
    """``chat.rewrite_query`` resolved: ``auto`` rewrites for a model behind an API, and for a built-in local model
    only where it reads prompts at ``chat.rewrite_min_prompt_speed`` (a GPU's speed).

    ``prompt_speed`` is what the model server measured at start-up (None: unknown, so no rewrite). With the
    built-in 1.5B model on CPUs reading about 200 prompt tokens/s, the rewrite lifted laws hit@5 from 0.82 to 0.87
    but not the answers (0.460 without it, 0.453 with it, 150 tuning questions), and put 2.4 s p50 before the
    first token; at 33–66 tokens/s it costs more than the answer itself.
    """
    setting = settings.chat.rewrite_query
    if setting != "auto":
        return bool(setting)
    if model_builtin is None:
        return True
    return prompt_speed is not None and prompt_speed >= settings.chat.rewrite_min_prompt_speed


async def _ask(ctx: ChatContext, messages: list[dict[str, Any]], max_tokens: int) -> str:
    try:
        return (await ctx.complete(messages, temperature=0.0, max_tokens=max_tokens)).strip()
    except AppError as exc:
        logger.info("query rewriting skipped: %s", exc.message)
        return ""


def condense_messages(ctx: ChatContext, template: str) -> list[dict[str, Any]]:
    """The conversation so far, then the request (``template``, naming the previous question and this one) to
    rewrite the question: the previous answer as the model read and wrote it when known, else the last exchanges
    of the history, each cut short."""
    if "{question}" not in template:
        # A prompts file written when the template was a system prompt.
        template += "\n\n{question}"
    request = ctx.render(template, question=ctx.question, previous=_previous_question(ctx)[:CONDENSE_CHARS])
    if ctx.previous is not None:
        return ctx.previous.followed_by(request)
    recent = [{"role": m["role"], "content": m["content"][:CONDENSE_CHARS]} for m in ctx.history[-2 * CONDENSE_TURNS:]]
    return [*recent, {"role": "user", "content": request}]


@dataclass(frozen=True)
class Standalone:
    """What a question is searched with, whether that text says all that is asked without the history, and the
    previous question it follows (``follows``), whose exchange the search looks in as well."""

    text: str
    complete: bool = True
    follows: str = ""


async def standalone_question(ctx: ChatContext) -> Standalone:
    """The question rewritten to stand on its own, given the conversation so far (as asked when no history)."""
    if not ctx.history:
        return Standalone(ctx.question)
    template = ctx.localized(CONDENSE_TEMPLATE, default="")
    if not template:
        return Standalone(ctx.question)
    rewritten = _after_frame(await _ask(ctx, condense_messages(ctx, template), CONDENSE_TOKENS), template)
    # A rewrite that grew into an answer is not trusted.
    if not rewritten or len(rewritten) > 4 * len(ctx.question) + 80:
        rewritten = ctx.question
    rewritten = rewritten.splitlines()[0].strip() or ctx.question
    previous = _previous_question(ctx)
    if not previous:
        return Standalone(rewritten)
    copied = _bare(rewritten) == _bare(previous) != _bare(ctx.question)
    if copied or (_adds_nothing(rewritten, ctx.question) and leans_on_history(ctx.question)):
        # The small model sometimes copies the previous question instead (「我签了三年的劳动合同，试用期最长能约定
        # 多久？」 for 「那要是只签了一年呢？」), or hands back a follow-up that plainly leans on it as it came
        # (「如果我已经转正了呢？」): the two together find what is asked, but answered as one question they get the
        # previous question's answer, so the follow-up is answered as asked, after its history.
        return Standalone(f"{previous} {ctx.question}", complete=False)
    return Standalone(rewritten, follows=previous)


# A follow-up that leans on the question before it: one opening with "and", "what about" (那 ...) or ending in 呢.
_LEANS_ON_HISTORY = re.compile(r"^\s*(?:(?:and|but|what about|how about|what if)\b|那)|呢\s*[?？]?\s*$", re.IGNORECASE)


def leans_on_history(question: str) -> bool:
    """Whether ``question`` reads as a follow-up that leaves out what it asks about (「那醉驾呢？」, "And the
    tomatoes?"): a question of that form is not searched alone even when the model's rewrite adds nothing to it."""
    return bool(_LEANS_ON_HISTORY.search(question))


def _adds_nothing(rewritten: str, question: str) -> bool:
    """Whether every search term of ``rewritten`` is in ``question`` already."""
    return set(tokenize(rewritten)) <= set(tokenize(question))


def _after_frame(rewritten: str, template: str) -> str:
    """The rewrite without the request's own framing, which the small model sometimes echoes
    (「我上一个问题是：住房公积金……？现在我接着问：网上买的衣服不喜欢，能否退？」, whose search then looked for both):
    what follows the words that introduce ``{question}`` in the template, when the rewrite holds them."""
    line = next((row for row in template.splitlines() if "{question}" in row), "")
    marker = line.split("{question}", 1)[0].strip().rstrip(":：").strip()
    if not marker or marker not in rewritten:
        return rewritten
    return rewritten.rsplit(marker, 1)[1].strip().lstrip(":：").strip()


def _previous_question(ctx: ChatContext) -> str:
    return next((m["content"] for m in reversed(ctx.history) if m["role"] == "user"), "")


def _bare(text: str) -> str:
    """``text`` without spaces and punctuation, for comparing questions."""
    return "".join(ch for ch in text if ch.isalnum()).lower()


async def with_hypothetical_answer(ctx: ChatContext, question: str) -> str:
    """The question followed by a short answer the model imagines, in the documents' words."""
    template = ctx.localized(HYDE_TEMPLATE, default="")
    if not template:
        return question
    messages = [{"role": "system", "content": ctx.render(template)}, {"role": "user", "content": question}]
    answer = await _ask(ctx, messages, HYDE_TOKENS)
    return f"{question}\n{answer}" if answer else question


async def search_texts(settings: Settings, llm: ChatModel, questions: list[str]) -> tuple[dict[str, str], list[float]]:
    """What KB chat with ``rewrite_query`` would search for each question (the question and the model's
    hypothetical answer; the question alone when the model fails), outside a chat, and the seconds each took:
    for ``kbchat eval --rewrite`` and the retrieval benchmark."""
    templates = load_prompts(settings.chat.prompts_file)
    texts: dict[str, str] = {}
    seconds: list[float] = []
    for question in dict.fromkeys(questions):
        ctx = ChatContext(request=ChatRequest(query=question), settings=settings, llm=llm, templates=templates,
                          history=[])
        started = time.perf_counter()
        texts[question] = await with_hypothetical_answer(ctx, question)
        seconds.append(time.perf_counter() - started)
    return texts, seconds


def require_rewrites(texts: dict[str, str], model: str) -> None:
    """ServiceUnavailable when the model rewrote none of the questions: it is down, or wrote nothing."""
    if all(text == question for question, text in texts.items()):
        raise ServiceUnavailable(f"the chat model {model!r} wrote no hypothetical answer (see the log); is it "
                                 "running? Start it with `kbchat llm serve` or `kbchat start`")
