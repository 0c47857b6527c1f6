"""Adapter for any OpenAI-compatible chat API (the bundled llama.cpp server, vLLM, OpenAI, ...)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import openai
from openai.types.chat import ChatCompletion

from configs.settings import LLMModelConfig
from server.llm.base import (
    BAD_RESPONSE,
    OVERLOADED,
    TIMEOUT,
    UNREACHABLE,
    ChatModel,
    LLMError,
    Message,
    Sampling,
    ToolCall,
    ToolSpec,
    ToolTurn,
)
from server.llm.local.status import QUEUE_PATH, SPEED_PATH, auth_headers, queue_depth_of, status_url

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds to wait for the bundled model server to say how busy it is; a status line is not worth more.
QUEUE_TIMEOUT = 1.0
# Seconds a known prompt speed is kept before the model server is asked again (it follows recent prompts).
SPEED_REFRESH_S = 15.0


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        detail = body.get("message") or body.get("detail") or json.dumps(body, ensure_ascii=False)
    else:
        try:
            detail = exc.response.text
        except httpx.ResponseNotRead:
            detail = ""
    return str(detail or exc.message)[:500]


class OpenAICompatibleModel(ChatModel):
    """Chat model reached through the OpenAI wire protocol, streaming over SSE."""

    CALLS_TOOLS = True

    def __init__(self, name: str, config: LLMModelConfig, default_temperature: float = 0.7) -> None:
        super().__init__(name, config, default_temperature)
        if not config.base_url:
            raise LLMError(f"model {name!r} has no base_url configured", code=UNREACHABLE)
        key = config.api_key.get_secret_value() if config.api_key else ""
        self.base_url = config.base_url
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url, api_key=key or "not-needed", timeout=config.timeout, max_retries=0
        )
        self._http: httpx.AsyncClient | None = None  # for the bundled server's queue, made on first use
        self._prompt_speed: float | None = None
        self._prompt_speed_at: float | None = None

    # ---- error mapping -------------------------------------------------------------------------

    def _unreachable_hint(self) -> str:
        if self.config.builtin:
            return "is `kbchat llm serve` running?"
        return "check base_url and that the server is up"

    def _map_error(self, exc: Exception, started: bool) -> LLMError:
        url = self.base_url
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            return LLMError(f"model server at {url} timed out after {self.config.timeout:g}s", code=TIMEOUT)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = _status_message(exc)
            code = OVERLOADED if status in (429, 503) else BAD_RESPONSE
            return LLMError(f"model server at {url} returned HTTP {status}: {detail}", code=code)
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            if started:
                return LLMError(
                    f"model server at {url} closed the connection in the middle of the answer", code=BAD_RESPONSE
                )
            return LLMError(f"cannot reach model server at {url}: {self._unreachable_hint()}", code=UNREACHABLE)
        if isinstance(exc, ValueError | openai.APIError | httpx.HTTPError):
            return LLMError(f"model server at {url} sent a malformed response: {exc}", code=BAD_RESPONSE)
        return LLMError(f"model server at {url} failed: {exc}", code=BAD_RESPONSE)

    def _request(self, messages: list[Message], sampling: Sampling,
                 tools: list[ToolSpec] | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.config.model or self.name,
            "messages": messages,
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        if tools:
            kwargs["tools"] = tools
        if sampling.logit_bias:
            kwargs["logit_bias"] = {str(token): bias for token, bias in sampling.logit_bias}
        extra = self.config.options.get("extra_body")
        if isinstance(extra, dict):
            kwargs["extra_body"] = extra
        return kwargs

    # ---- ChatModel -----------------------------------------------------------------------------

    async def _stream(self, messages: list[Message], sampling: Sampling) -> AsyncIterator[str]:
        kwargs = self._request(messages, sampling)

        def text(chunk: Any) -> str | None:
            delta = chunk.choices[0].delta
            return delta.content if delta is not None else None

        async for piece in self._pieces(lambda: self._client.chat.completions.create(stream=True, **kwargs), text):
            yield piece

    @property
    def continues_answers(self) -> bool:
        return self.prompt_format is not None and self.prompt_format.get() is not None

    async def _continue(self, messages: list[Message], lead: str, sampling: Sampling) -> AsyncIterator[str]:
        """The chat prompt as the server renders it, the lead after it, completed as plain text."""
        prompt_format = self.prompt_format.get() if self.prompt_format is not None else None
        if prompt_format is None:
            raise LLMError(f"model {self.name!r} cannot continue an answer", code=BAD_RESPONSE)
        kwargs = self._request(messages, sampling)
        del kwargs["messages"]
        kwargs["prompt"] = prompt_format.render(messages) + lead
        kwargs["stop"] = [*sampling.stop, *prompt_format.stop]
        async for piece in self._pieces(lambda: self._client.completions.create(stream=True, **kwargs),
                                        lambda chunk: chunk.choices[0].text):
            yield piece

    async def _pieces(self, send: Callable[[], Awaitable[Any]], text: Callable[[Any], str | None]) -> AsyncIterator[str]:
        """The text of each streamed chunk of the response ``send()`` opens, with errors mapped to LLMError."""
        started = False
        try:
            response = await self._connect(send)
            async with response:
                async for chunk in response:
                    started = True
                    if not chunk.choices:
                        continue
                    piece = text(chunk)
                    if piece:
                        yield piece
        except LLMError:
            raise
        except (openai.OpenAIError, httpx.HTTPError, ValueError) as exc:
            raise self._map_error(exc, started) from exc

    async def _connect(self, send: Callable[[], Awaitable[T]]) -> T:
        """Send a request, once more if the connection failed before any answer came back.

        A kept-alive connection that the server closes just as a request goes out fails before the server
        has read the request (seen once in 30,973 answers of a 30-minute soak), so a second try is safe then.
        A timeout is not retried: the server may be working on the first request.
        """
        try:
            return await send()
        except openai.APITimeoutError:
            raise
        except openai.APIConnectionError as exc:
            logger.info("model server at %s: connection failed (%s), trying once more", self.base_url,
                        type(exc.__cause__ or exc).__name__)
            return await send()

    async def _complete(self, messages: list[Message], sampling: Sampling) -> str:
        result = await self._create(self._request(messages, sampling))
        return result.choices[0].message.content or ""

    async def _create(self, kwargs: dict[str, Any]) -> ChatCompletion:
        try:
            result: ChatCompletion = await self._connect(
                lambda: self._client.chat.completions.create(stream=False, **kwargs))
        except (openai.OpenAIError, httpx.HTTPError, ValueError) as exc:
            raise self._map_error(exc, False) from exc
        if not getattr(result, "choices", None):
            raise LLMError(f"model server at {self.base_url} returned no choices", code=BAD_RESPONSE)
        return result

    async def _complete_with_tools(self, messages: list[Message], tools: list[ToolSpec],
                                   sampling: Sampling) -> ToolTurn:
        result = await self._create(self._request(messages, sampling, tools))
        message = result.choices[0].message
        calls: list[ToolCall] = []
        for call in message.tool_calls or []:
            function = getattr(call, "function", None)
            if function is None:
                continue
            try:
                arguments = json.loads(function.arguments or "{}")
            except ValueError as exc:
                raise LLMError(
                    f"model {self.name!r} called tool {function.name!r} with arguments that are not JSON: "
                    f"{function.arguments[:200]!r}",
                    code=BAD_RESPONSE,
                ) from exc
            if not isinstance(arguments, dict):
                arguments = {"input": arguments}
            calls.append({"id": call.id, "name": function.name, "arguments": arguments})
        return {"content": message.content, "tool_calls": calls}

    async def _bundled_status(self, path: str) -> dict[str, Any] | None:
        """GET one of the bundled model server proxy's own endpoints; None for other servers or on failure."""
        if not self.config.builtin:
            return None
        try:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=QUEUE_TIMEOUT, trust_env=False)
            response = await self._http.get(status_url(self.base_url, path), headers=auth_headers(self.config.api_key))
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    async def queue_depth(self) -> int | None:
        """The bundled model server's proxy answers GET /queue; other servers are not asked."""
        return queue_depth_of(await self._bundled_status(QUEUE_PATH))

    async def prompt_speed(self) -> float | None:
        """The bundled model server's proxy answers GET /speed: tokens/s over the model's recent prompts, or as
        timed at start-up. Once known, it is asked again at most every ``SPEED_REFRESH_S`` seconds, and a server
        too busy to answer in time leaves the last figure in place."""
        now = time.monotonic()
        if self._prompt_speed_at is None or now - self._prompt_speed_at >= SPEED_REFRESH_S:
            body = await self._bundled_status(SPEED_PATH)
            value = body.get("prompt_tokens_per_s") if body else None
            if isinstance(value, int | float) and value > 0:
                self._prompt_speed = float(value)
            if self._prompt_speed is not None:
                self._prompt_speed_at = now
        return self._prompt_speed

    async def aclose(self) -> None:
        await self._client.close()
        if self._http is not None:
            await self._http.aclose()
