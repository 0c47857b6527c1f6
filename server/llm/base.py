"""The chat-model interface every provider adapter implements, and its error type."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any

from configs.settings import LLMModelConfig
from server.errors import UpstreamError
from server.llm.tokens import approx_token_count


class LLMError(UpstreamError):
    """A chat model could not answer; ``code`` says why (unreachable, timeout, bad response, overloaded)."""

    code = "llm_error"


# Codes an LLMError may carry, so callers can react without parsing messages.
UNREACHABLE = "llm_unreachable"
TIMEOUT = "llm_timeout"
BAD_RESPONSE = "llm_bad_response"
OVERLOADED = "llm_overloaded"
UNAVAILABLE = "llm_unavailable"


class ToolsUnsupported(LLMError):
    """``complete_with_tools`` was called on a model that cannot call tools (``supports_tools`` is false)."""

    status = 400
    code = "llm_no_tools"


class ChatModel(ABC):
    """One chat model behind a provider; all calls are async and stream text deltas."""

    def __init__(self, name: str, config: LLMModelConfig, default_temperature: float = 0.7) -> None:
        self.name = name
        self.config = config
        self.default_temperature = default_temperature

    @abstractmethod
    def stream(
        self,
        messages: list[dict],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: list[str] | None = None,
        tools: list[dict] | None = None,
    ) -> AsyncIterator[str]:
        """Yield the answer's text deltas; failures raise LLMError."""

    async def complete(
        self,
        messages: list[dict],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: list[str] | None = None,
        tools: list[dict] | None = None,
    ) -> str:
        parts = [
            delta
            async for delta in self.stream(
                messages, temperature=temperature, max_tokens=max_tokens, stop=stop, tools=tools
            )
        ]
        return "".join(parts)

    async def complete_with_tools(
        self,
        messages: list[dict],
        tools: list[dict],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: list[str] | None = None,
    ) -> dict[str, Any]:
        """One non-streamed turn that may call tools: {"content", "tool_calls": [{"id","name","arguments"}]}.

        Only models whose ``supports_tools`` is true implement it.
        """
        raise ToolsUnsupported(f"model {self.name!r} does not support tool calling")

    def count_tokens(self, text: str) -> int:
        return approx_token_count(text)

    @property
    def supports_tools(self) -> bool:
        return self.config.supports_tools

    def _temperature(self, temperature: float | None) -> float:
        return self.default_temperature if temperature is None else temperature

    def _max_tokens(self, max_tokens: int | None) -> int:
        # Some providers reject 0; never ask for less than one token.
        return max(1, max_tokens if max_tokens is not None else self.config.max_tokens)

    async def queue_depth(self) -> int | None:
        """Generations of this model running or waiting right now, when the provider tells; else None."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release connections; the default adapter holds none."""
