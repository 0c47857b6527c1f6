"""What one chat mode needs to answer one question, and the streaming helper every mode uses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from configs import Settings
from configs.prompts import render
from server.chat.history import build_messages, fit_history, message_tokens
from server.chat.schemas import ChatRequest
from server.errors import InvalidInput
from server.llm.base import ChatModel

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


@dataclass
class ChatContext:
    """One question in flight: the request, its model, templates, history and running token counts."""

    request: ChatRequest
    settings: Settings
    llm: ChatModel
    templates: dict[str, str]
    history: list[dict[str, str]]
    kb: Any  # KnowledgeBaseManager; typed loosely so tests may pass a stand-in
    engines: Any = None  # server.chat.search_engines.EngineFactory
    question: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Extra facts stored on the answer's meta (kb name, engine, bilingual texts, ...).
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.question:
            self.question = self.request.query

    @property
    def max_tokens(self) -> int:
        return self.request.max_tokens or self.llm.config.max_tokens

    @property
    def budget(self) -> int:
        """Prompt tokens the model's context window leaves after room for the answer."""
        return max(0, self.llm.config.context_window - self.max_tokens)

    def template(self, default_name: str) -> str:
        """The request's template if it names one, else ``default_name``."""
        name = self.request.prompt_template or default_name
        try:
            return self.templates[name]
        except KeyError:
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

    async def stream(self, messages: list[dict[str, Any]], **kwargs: Any) -> AsyncIterator[str]:
        """Stream the model's answer to ``messages``, counting tokens both ways."""
        self.prompt_tokens += self.prompt_size(messages)
        kwargs.setdefault("temperature", self.request.temperature)
        kwargs.setdefault("max_tokens", self.max_tokens)
        answer = []
        try:
            async for piece in self.llm.stream(messages, **kwargs):
                answer.append(piece)
                yield piece
        finally:
            # Counted once at the end: per-piece counts of an approximate counter add up too high.
            self.completion_tokens += self.count("".join(answer))

    async def complete(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """The model's whole answer to ``messages`` (streamed underneath, so timeouts behave alike)."""
        parts = [piece async for piece in self.stream(messages, **kwargs)]
        return "".join(parts)
