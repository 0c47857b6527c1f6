"""The chat-model interface every provider adapter implements, and its error type.

An adapter implements ``_stream`` (and, where the provider offers more, ``_complete`` and
``_complete_with_tools``); callers use ``stream``, ``complete`` and ``complete_with_tools``, which
resolve the sampling options once for every adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from configs.settings import LLMModelConfig
from server.errors import UpstreamError
from server.llm.tokens import approx_token_count

if TYPE_CHECKING:
    from server.llm.chat_template import PromptFormat
    from server.llm.tokenizers import Lazy, Tokenizer

# One chat message as the OpenAI wire format has it: role, content and, for tool turns, more keys.
Message = dict[str, Any]
# One tool in OpenAI's function-calling format.
ToolSpec = dict[str, Any]


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
    """``complete_with_tools`` was called on a model that cannot call tools."""

    status = 400
    code = "llm_no_tools"


class ToolCall(TypedDict):
    """A tool the model asked for, with its parsed JSON arguments."""

    id: str
    name: str
    arguments: dict[str, Any]


class ToolTurn(TypedDict):
    """One non-streamed turn of a model that may call tools."""

    content: str | None
    tool_calls: list[ToolCall]


@dataclass(frozen=True)
class Sampling:
    """The options of one generation, with the model's defaults filled in."""

    temperature: float
    max_tokens: int
    stop: tuple[str, ...] = ()
    # (token id, logit bias) pairs in the model's own vocabulary; adapters whose model takes none ignore them.
    logit_bias: tuple[tuple[int, float], ...] = ()


class ChatModel(ABC):
    """One chat model behind a provider; all calls are async and stream text deltas."""

    # Whether the adapter can pass OpenAI tool calls through; a model uses them only when its
    # configuration also says ``supports_tools`` (checked against this at start-up).
    CALLS_TOOLS: ClassVar[bool] = False

    def __init__(self, name: str, config: LLMModelConfig, default_temperature: float = 0.7) -> None:
        self.name = name
        self.config = config
        self.default_temperature = default_temperature
        # How prompts are measured; the registry gives each model the best counter it can reach.
        self.token_counter: Callable[[str], int] = approx_token_count
        # The chat template the model's server applies, where kbchat can render it (built-in models); an
        # adapter that can complete plain text then ``continues_answers``.
        self.prompt_format: Lazy[PromptFormat] | None = None
        # The model's own tokenizer, where kbchat has it (built-in models): token ids for ``logit_bias``.
        self.tokenizer: Lazy[Tokenizer] | None = None

    def sampling(self, temperature: float | None = None, max_tokens: int | None = None,
                 stop: list[str] | None = None, logit_bias: dict[int, float] | None = None) -> Sampling:
        """The request's options over the model's defaults; never fewer than one token (some providers reject 0)."""
        return Sampling(
            temperature=self.default_temperature if temperature is None else temperature,
            max_tokens=max(1, max_tokens if max_tokens is not None else self.config.max_tokens),
            stop=tuple(stop or ()),
            logit_bias=tuple(sorted((logit_bias or {}).items())),
        )

    def stream(self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None,
               stop: list[str] | None = None, lead: str = "", logit_bias: dict[int, float] | None = None
               ) -> AsyncIterator[str]:
        """Yield the answer's text deltas; failures raise LLMError.

        ``lead``: the first words of the answer, given to the model to continue from when it
        ``continues_answers`` (and ignored otherwise). The deltas are what follows the lead.
        ``logit_bias``: added to the logits of these token ids (of ``tokenizer``) at every step.
        """
        sampling = self.sampling(temperature, max_tokens, stop, logit_bias)
        if lead and self.continues_answers:
            return self._continue(messages, lead, sampling)
        return self._stream(messages, sampling)

    @property
    def continues_answers(self) -> bool:
        """Whether the model can be handed the beginning of its answer to continue (see ``stream``)."""
        return False

    async def complete(self, messages: list[Message], *, temperature: float | None = None,
                       max_tokens: int | None = None, stop: list[str] | None = None) -> str:
        """The whole answer at once."""
        return await self._complete(messages, self.sampling(temperature, max_tokens, stop))

    async def complete_with_tools(self, messages: list[Message], tools: list[ToolSpec], *,
                                  temperature: float | None = None, max_tokens: int | None = None,
                                  stop: list[str] | None = None) -> ToolTurn:
        """One non-streamed turn that may call tools; LLMError ``llm_no_tools`` where the model can't."""
        if not self.supports_tools:
            raise ToolsUnsupported(f"model {self.name!r} does not support tool calling")
        return await self._complete_with_tools(messages, tools, self.sampling(temperature, max_tokens, stop))

    @property
    def supports_tools(self) -> bool:
        return self.CALLS_TOOLS and self.config.supports_tools

    def count_tokens(self, text: str) -> int:
        return self.token_counter(text)

    async def queue_depth(self) -> int | None:
        """Generations of this model running or waiting right now, when the provider tells; else None."""
        return None

    async def prompt_speed(self) -> float | None:
        """Prompt tokens the model reads per second on this machine, when its server tells; else None."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release connections; the default adapter holds none."""

    # ---- what adapters implement ------------------------------------------------------------------

    @abstractmethod
    def _stream(self, messages: list[Message], sampling: Sampling) -> AsyncIterator[str]:
        """Yield the answer's text deltas; failures raise LLMError."""

    async def _complete(self, messages: list[Message], sampling: Sampling) -> str:
        return "".join([delta async for delta in self._stream(messages, sampling)])

    def _continue(self, messages: list[Message], lead: str, sampling: Sampling) -> AsyncIterator[str]:
        """Yield what follows ``lead`` in the answer; adapters whose ``continues_answers`` is true implement it."""
        raise NotImplementedError(f"model {self.name!r} cannot continue an answer")

    async def _complete_with_tools(self, messages: list[Message], tools: list[ToolSpec],
                                   sampling: Sampling) -> ToolTurn:
        raise ToolsUnsupported(f"model {self.name!r} does not support tool calling")
