"""What one chat mode needs to answer one question, and the streaming helper every mode uses."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

from configs import Settings
from configs.prompts import LANG_SUFFIX, render
from server.chat import events
from server.chat.events import ChatEvent
from server.chat.history import build_messages, fit_history, message_tokens
from server.chat.schemas import ChatRequest
from server.chat.search_engines import EngineFactory
from server.errors import InvalidInput, ServiceUnavailable
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.rerank import Reranker
from server.llm.base import ChatModel

# Seconds between status events while an answer waits for its first text.
STATUS_EVERY = 2.0

T = TypeVar("T")

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def _stage(depth: int | None, own: int) -> tuple[str, int | None]:
    """(stage, generations ahead) from the model's queue depth, ``own`` of them being this answer."""
    if depth is None:
        return "reading", None
    ahead = max(0, depth - own)
    return ("waiting" if ahead else "reading"), ahead


class Pending(Generic[T]):
    """Work an answer waits for (a rewrite, a ranking), started at once; ``statuses`` says so until it is done."""

    def __init__(self, work: Awaitable[T]) -> None:
        self._task = asyncio.ensure_future(work)

    async def statuses(self, stage: str | None) -> AsyncGenerator[ChatEvent, None]:
        """A ``stage`` status now and every STATUS_EVERY seconds until the work is done (cancelled when the
        answer is abandoned), so the page's line keeps counting the seconds; none for a ``stage`` of None."""
        try:
            if stage is None:
                await asyncio.wait({self._task})
                return
            yield events.status(stage)
            while not (await asyncio.wait({self._task}, timeout=STATUS_EVERY))[0]:
                yield events.status(stage)
        finally:
            if not self._task.done():
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)

    def result(self) -> T:
        return self._task.result()


@dataclass(frozen=True)
class Exchange:
    """One call to the model: the messages it read and the reply it wrote, the answer's lead included.

    A later call that repeats ``messages`` and ``reply`` before its own words (a conversation's title, say)
    shares its prompt's start with this one, which the model server has computed already and reuses.
    """

    messages: list[dict[str, Any]]
    reply: str

    def followed_by(self, instruction: str) -> list[dict[str, Any]]:
        """The messages of this exchange, its reply as the assistant's turn, then ``instruction`` as the user's."""
        return [*self.messages, {"role": "assistant", "content": self.reply}, {"role": "user", "content": instruction}]


@dataclass
class ChatContext:
    """One question in flight: the request, its model, templates, history and running token counts."""

    request: ChatRequest
    settings: Settings
    llm: ChatModel
    templates: dict[str, str]
    history: list[dict[str, str]]
    # ChatServices always gives both; a context made for one model call alone (e.g. a rewrite) may not.
    kb: KnowledgeBaseManager | None = None
    engines: EngineFactory | None = None
    # The chat model scoring evidence sentences (chat.evidence_scoring), when on.
    evidence_scorer: Reranker | None = None
    question: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Extra facts stored on the answer's meta (kb name, engine, bilingual texts, ...).
    meta: dict[str, Any] = field(default_factory=dict)
    # The last call to the model that ran to its end, as the model read and wrote it (see Exchange).
    exchange: Exchange | None = None
    # The call that answered the conversation's last question, when this process made it: a follow-up's
    # rewrite continues it (rewrite.py).
    previous: Exchange | None = None

    def __post_init__(self) -> None:
        if not self.question:
            self.question = self.request.query

    def knowledge_bases(self) -> KnowledgeBaseManager:
        if self.kb is None:
            raise ServiceUnavailable("knowledge bases are not available to this answer")
        return self.kb

    def search_engines(self) -> EngineFactory:
        if self.engines is None:
            raise ServiceUnavailable("web search is not available to this answer")
        return self.engines

    @property
    def max_tokens(self) -> int:
        return self.request.max_tokens or self.llm.config.max_tokens

    @property
    def budget(self) -> int:
        """Prompt tokens the model's context window leaves after room for the answer."""
        return max(0, self.llm.config.context_window - self.max_tokens)

    def template(self, default_name: str) -> str:
        """The request's template if it names one, else ``default_name`` in the question's language."""
        return self.localized(default_name, explicit=self.request.prompt_template)

    @property
    def lang(self) -> str:
        """The question's language as far as templates care: "zh" when it has CJK characters, else "en"."""
        return "zh" if has_cjk(self.question) else "en"

    def localized(self, name: str, explicit: str | None = None, default: str | None = None) -> str:
        """Template ``explicit`` if given, else ``name`` in the question's language (``name_zh``) or as is.

        ``default`` stands in for a template that a prompts file of an older layout does not define.
        """
        if explicit:
            name = explicit
        else:
            variant = f"{name}{LANG_SUFFIX}{self.lang}"
            name = variant if variant in self.templates else name
        try:
            return self.templates[name]
        except KeyError:
            if default is not None and not explicit:
                return default
            raise InvalidInput(
                f"unknown prompt template {name!r}; known templates: {', '.join(sorted(self.templates))}"
            ) from None

    def render(self, template: str, **values: Any) -> str:
        return render(template, date=date.today().isoformat(), **values)

    def count(self, text: str) -> int:
        return self.llm.count_tokens(text)

    def messages(self, system: str, question: str | None = None) -> list[dict[str, str]]:
        """System prompt + as much history as fits + the question."""
        question = self.question if question is None else question
        history = fit_history(self.count, system, self.history, question, self.budget)
        return build_messages(system, history, question)

    def prompt_size(self, messages: list[dict[str, Any]]) -> int:
        return sum(message_tokens(self.count, {"content": str(m.get("content") or "")}) for m in messages)

    def _reads(self, messages: list[dict[str, Any]], lead: str) -> int:
        """The prompt tokens the model reads for ``messages``, with the lead it continues from where it can."""
        lead = lead if self.llm.continues_answers else ""
        return self.prompt_size(messages) + (self.count(lead) if lead else 0)

    async def stream(self, messages: list[dict[str, Any]], lead: str = "", **kwargs: Any) -> AsyncGenerator[str, None]:
        """Stream the model's answer to ``messages``, counting tokens both ways.

        ``lead``: words the answer begins with, handed to the model to continue where it can (see
        ``ChatModel.continues_answers``; elsewhere it is dropped). They come with the model's first piece.
        """
        if not self.llm.continues_answers:
            lead = ""
        self.prompt_tokens += self._reads(messages, lead)
        if lead:
            kwargs["lead"] = lead
        temperature = self.request.temperature
        if temperature is None and self.request.mode == "kb":
            temperature = self.settings.llm.kb_temperature
        kwargs.setdefault("temperature", temperature)
        kwargs.setdefault("max_tokens", self.max_tokens)
        answer: list[str] = []
        try:
            async for piece in self.llm.stream(messages, **kwargs):
                if lead and not answer:
                    piece = lead + piece
                answer.append(piece)
                yield piece
            if lead and not answer:
                # The model ended the answer at once: the lead is all of it.
                answer.append(lead)
                yield lead
            self.exchange = Exchange(list(messages), "".join(answer))
        finally:
            # Counted once at the end: per-piece counts of an approximate counter add up too high.
            self.completion_tokens += self.count("".join(answer))

    async def answer(self, messages: list[dict[str, Any]], **kwargs: Any) -> AsyncGenerator[ChatEvent, None]:
        """The model's answer as ``delta`` events, preceded by ``status`` events until its first text.

        A status says whether the answer waits behind other generations of the model (when the
        provider tells) or the model is reading the prompt; it is repeated every STATUS_EVERY seconds
        until the first text, so a slow or busy model never looks stuck.
        """
        prompt_tokens = self._reads(messages, kwargs.get("lead", ""))
        yield events.status(*_stage(await self.llm.queue_depth(), 0), prompt_tokens=prompt_tokens)
        pieces = self.stream(messages, **kwargs)
        try:
            first = asyncio.ensure_future(pieces.__anext__())
            try:
                while not (await asyncio.wait({first}, timeout=STATUS_EVERY))[0]:
                    depth = await self.llm.queue_depth()
                    # Our own request is counted by now.
                    yield events.status(*_stage(depth, 1), prompt_tokens=prompt_tokens)
            finally:
                if not first.done():
                    first.cancel()
                    await asyncio.gather(first, return_exceptions=True)
            try:
                yield events.delta(first.result())
            except StopAsyncIteration:
                return
            async for piece in pieces:
                yield events.delta(piece)
        finally:
            await pieces.aclose()

    async def complete(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """The model's whole answer to ``messages`` (streamed underneath, so timeouts behave alike)."""
        parts = [piece async for piece in self.stream(messages, **kwargs)]
        return "".join(parts)


# The function answering one chat mode (see server.chat.services.MODE_HANDLERS).
ModeHandler = Callable[[ChatContext], AsyncGenerator[ChatEvent, None]]
