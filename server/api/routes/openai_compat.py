"""OpenAI-compatible API under /v1: models, chat completions (plain models and kb/<name>), embeddings.

Any OpenAI client works unchanged: ``model`` is a configured chat model name, or ``kb/<name>``
for a knowledge-base answer whose sources come in an extra top-level ``sources`` field (and,
when streaming, in the last chunk before ``[DONE]``). /v1 chats are stored as conversations
only when the request carries the extra field ``conversation_id``; such requests, and all
``kb/`` requests, run through kbchat's chat service, which uses its own prompt templates in
place of the client's system messages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.background import BackgroundTask

from server.api.deps import ServicesDep
from server.api.schemas_openai import (
    ChatCompletion,
    ChatCompletionRequest,
    EmbeddingList,
    EmbeddingRequest,
    ModelEntry,
    ModelList,
    chunk_event,
    completion,
    completion_id,
    embedding_item,
    error_body,
    tool_calls_out,
    usage,
    usage_event,
)
from server.api.transport import (
    SSE_DONE,
    SSE_HEADERS,
    SSE_MEDIA_TYPE,
    EventPump,
    located,
    sse,
    sse_response_doc,
)
from server.chat import events
from server.chat.events import AnswerAccumulator, ChatEvent
from server.chat.schemas import ChatRequest
from server.errors import AppError, BadRequest, InvalidInput, NotFound, validation_message
from server.llm.base import ChatModel, ToolCall
from server.llm.tokens import approx_token_count
from server.services import Services

logger = logging.getLogger(__name__)

KB_PREFIX = "kb/"
# Model id suffixes choosing how texts are embedded: e5 models put "query: " or "passage: " before them.
ROLE_SUFFIXES = (":query", ":passage")
# OpenAI's own limit on inputs per embeddings request.
MAX_EMBEDDING_INPUTS = 2048
COMPLETION_RESPONSES = sse_response_doc(
    "A chat.completion, or with stream=true chat.completion.chunk server-sent events ending with `data: [DONE]`."
)


@dataclass(frozen=True)
class ToolCalls:
    """Tool calls a chat model asked for (``id``, ``name``, ``arguments`` each), for the client to run."""

    calls: list[ToolCall]


# What an answer streams: kbchat's chat events, plus a model's tool calls.
Part = ChatEvent | ToolCalls


@dataclass
class _Answer:
    """A /v1 answer folded up: the chat events' accumulation plus the tool calls."""

    events: AnswerAccumulator = field(default_factory=AnswerAccumulator)
    tool_calls: list[ToolCall] = field(default_factory=list)

    def add(self, part: Part) -> None:
        if isinstance(part, ToolCalls):
            self.tool_calls.extend(part.calls)
        else:
            self.events.add(part)

    def usage(self) -> dict[str, int]:
        counts = self.events.usage
        return usage(counts["prompt_tokens"], counts["completion_tokens"])

    def extra(self, with_sources: bool) -> dict[str, Any]:
        """kbchat's top-level fields: the sources of a kb/ answer, the ids of a stored one."""
        out: dict[str, Any] = {}
        if with_sources:
            out["sources"] = self.events.sources
        if self.events.conversation_id:
            out.update(conversation_id=self.events.conversation_id, message_id=self.events.message_id)
        return out


class OpenAIErrorRoute(APIRoute):
    """A route whose errors carry OpenAI's `type` beside our code and message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as exc:
                return JSONResponse(error_body(exc.status, exc.code, exc.message), status_code=exc.status)
            except RequestValidationError as exc:
                return JSONResponse(error_body(422, "invalid_input", validation_message(exc)), status_code=422)

        return route_handler


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIErrorRoute)


async def _all_models(services: Services) -> list[ModelEntry]:
    # Chat models have no creation date of their own; OpenAI clients accept 0.
    models = [ModelEntry(id=name) for name in services.llms.names()]
    kbs = await anyio.to_thread.run_sync(services.kb.list_kbs)
    models += [
        ModelEntry(id=f"{KB_PREFIX}{kb.name}", created=int(kb.created_at.timestamp()) if kb.created_at else 0)
        for kb in kbs
    ]
    return models


@router.get("/models", response_model=ModelList)
async def list_models(services: ServicesDep) -> ModelList:
    """List every chat model and one kb/<name> model per knowledge base."""
    return ModelList(data=await _all_models(services))


@router.get("/models/{model_id:path}", response_model=ModelEntry)
async def retrieve_model(model_id: str, services: ServicesDep) -> ModelEntry:
    """Describe one model of /v1/models."""
    for entry in await _all_models(services):
        if entry.id == model_id:
            return entry
    raise NotFound(f"model {model_id!r} not found: GET /v1/models lists the available ones")


async def _model_parts(llm: ChatModel, body: ChatCompletionRequest, messages: list[dict[str, Any]]
                       ) -> AsyncGenerator[Part, None]:
    """Answer straight from a chat model, as the client's messages ask."""
    temperature, max_tokens, stop = body.temperature, body.token_limit(), body.stop_list()
    prompt_tokens = sum(llm.count_tokens(str(m.get("content") or "")) for m in messages)
    answer = ""
    if body.tools:
        # A model that cannot call tools refuses with 400 (ToolsUnsupported).
        result = await llm.complete_with_tools(
            messages, body.tools, temperature=temperature, max_tokens=max_tokens, stop=stop
        )
        answer = result.get("content") or ""
        if answer:
            yield events.delta(answer)
        if result.get("tool_calls"):
            yield ToolCalls(result["tool_calls"])
    else:
        async for piece in llm.stream(messages, temperature=temperature, max_tokens=max_tokens, stop=stop):
            answer += piece
            yield events.delta(piece)
    yield events.done("", "", prompt_tokens, llm.count_tokens(answer) if answer else 0)


async def _chat_parts(services: Services, request: ChatRequest) -> AsyncGenerator[Part, None]:
    """Answer through kbchat's chat service (knowledge-base chat, stored conversations)."""
    failures: list[AppError] = []
    async with contextlib.aclosing(services.chat.run(request, failures)) as stream:
        async for event in stream:
            if event["type"] == "error":
                # The service hands over the error behind the event, so the client gets its status.
                raise failures[-1] if failures else AppError(event["message"], code=event["code"])
            yield located(event)


def _chat_request(body: ChatCompletionRequest, model_name: str) -> ChatRequest:
    """The ChatRequest for a kb/<name> model or a stored conversation: last user message + history."""
    if body.tools:
        raise BadRequest("tools work with plain chat models only, not with kb/ models or stored conversations")
    *earlier, last = body.messages
    if last.role != "user":
        raise InvalidInput("the last message must be the user's question (role 'user')")
    history = [{"role": m.role, "content": m.text()} for m in earlier if m.role in ("user", "assistant")]
    is_kb = model_name.startswith(KB_PREFIX)
    fields: dict[str, Any] = {
        "query": last.text(),
        "mode": "kb" if is_kb else "llm",
        "kb_name": model_name[len(KB_PREFIX):] if is_kb else None,
        "model": None if is_kb else model_name,
        "history": history,
        "conversation_id": body.conversation_id,
        "temperature": body.temperature,
        "max_tokens": body.token_limit(),
        "top_k": body.top_k,
        "score_threshold": body.score_threshold,
        "search_mode": body.search_mode,
        "refuse_unsupported": body.refuse_unsupported,
        "stream": body.stream,
        # Without a conversation id, /v1 chats leave no trace in the conversation list.
        "store": bool(body.conversation_id),
    }
    try:
        return ChatRequest(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from exc


def _starts_answer(part: Part) -> bool:
    return isinstance(part, ToolCalls) or part["type"] == "delta"


async def _first_answer_parts(pump: EventPump[Part]) -> list[Part]:
    """Read until the answer starts, so a failure before it gets its own HTTP status."""
    parts: list[Part] = []
    try:
        async for part in pump:
            parts.append(part)
            if _starts_answer(part):
                break
    except BaseException:
        await pump.close()
        raise
    return parts


async def _chain(first: list[Part], rest: EventPump[Part]) -> AsyncGenerator[Part, None]:
    for part in first:
        yield part
    async for part in rest:
        yield part


def _stream_body(pump: EventPump[Part], first: list[Part], cid: str, model: str, include_usage: bool,
                 with_sources: bool) -> AsyncGenerator[str, None]:
    async def body() -> AsyncGenerator[str, None]:
        answer = _Answer()
        finish = "stop"
        try:
            yield chunk_event(cid, model, {"role": "assistant", "content": ""})
            async for part in _chain(first, pump):
                answer.add(part)
                if isinstance(part, ToolCalls):
                    calls = [{"index": i, **call} for i, call in enumerate(tool_calls_out(part.calls))]
                    finish = "tool_calls"
                    yield chunk_event(cid, model, {"tool_calls": calls})
                elif part["type"] == "delta" and part["text"]:
                    yield chunk_event(cid, model, {"content": part["text"]})
            yield chunk_event(cid, model, {}, finish, **answer.extra(with_sources))
            if include_usage:
                yield usage_event(cid, model, answer.usage())
        except AppError as exc:
            # Headers are sent already: the error travels as an SSE event, which OpenAI clients raise.
            yield sse(error_body(exc.status, exc.code, exc.message))
        except Exception:
            logger.exception("streamed chat completion failed")
            yield sse(error_body(500, "internal_error", "the answer failed; see the server log"))
        finally:
            await pump.close()
        yield SSE_DONE

    return body()


async def _collect(pump: EventPump[Part], cid: str, model: str, with_sources: bool) -> dict[str, Any]:
    answer = _Answer()
    try:
        async for part in pump:
            answer.add(part)
    finally:
        await pump.close()
    text, calls = answer.events.text, answer.tool_calls
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = tool_calls_out(calls)
    finish = "tool_calls" if calls else "stop"
    return completion(cid, model, message, finish, answer.usage(), **answer.extra(with_sources))


@router.post("/chat/completions", response_model=ChatCompletion, responses=COMPLETION_RESPONSES)
async def chat_completions(body: ChatCompletionRequest, services: ServicesDep) -> Response:
    """Chat completion from a chat model, or a knowledge-base answer with sources for kb/<name>."""
    model_name = body.model or services.llms.default_name
    is_kb = model_name.startswith(KB_PREFIX)
    source: AsyncGenerator[Part, None]
    if is_kb or body.conversation_id:
        source = _chat_parts(services, _chat_request(body, model_name))
    else:
        llm = services.llms.get(model_name)
        source = _model_parts(llm, body, [m.for_model() for m in body.messages])
    cid = completion_id()
    pump = EventPump(source)
    if not body.stream:
        return JSONResponse(await _collect(pump, cid, model_name, is_kb))
    first = await _first_answer_parts(pump)
    return StreamingResponse(
        _stream_body(pump, first, cid, model_name, body.include_usage(), is_kb),
        media_type=SSE_MEDIA_TYPE,
        headers=SSE_HEADERS,
        # Also stops the answer when the client leaves before the body starts.
        background=BackgroundTask(pump.close),
    )


async def _embed_model_name(services: Services, requested: str | None) -> tuple[str, str | None]:
    """The embedding model a request names, and the role its id asks for (``:query``/``:passage``) or None."""
    known = services.settings.kb.embed_models
    if not requested:
        return services.settings.kb.default_embed_model, None
    base, _, role = requested.rpartition(":") if requested.endswith(ROLE_SUFFIXES) else (requested, "", None)
    if base in known:
        return base, role
    if base.startswith(KB_PREFIX):
        kb = await anyio.to_thread.run_sync(services.kb.get_kb, base[len(KB_PREFIX):])
        return kb.embed_model, role
    raise NotFound(f"embedding model {requested!r} not found; known: {', '.join(sorted(known))} or kb/<name>, "
                   f"each optionally with :query or :passage")


@router.post("/embeddings", response_model=EmbeddingList)
async def create_embeddings(body: EmbeddingRequest, services: ServicesDep) -> EmbeddingList:
    """Embed texts with a knowledge-base embedding model (float or base64 vectors).

    Texts are embedded as passages unless ``input_type`` is "query" or the model id ends in ``:query``
    (e.g. ``multilingual-e5-small:query``): embed search queries that way, or they match worse.
    """
    texts = body.texts()
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidInput(f"at most {MAX_EMBEDDING_INPUTS} inputs per request, got {len(texts)}")
    model, role = await _embed_model_name(services, body.model)
    # OpenAI clients cannot say a text is a query; a model id ending in :query says it for them.
    is_query = (role or body.input_type) == "query"
    vectors = await anyio.to_thread.run_sync(lambda: services.kb.embed(texts, model, is_query=is_query))
    if body.dimensions is not None and vectors and body.dimensions != len(vectors[0]):
        raise InvalidInput(f"model {model!r} makes {len(vectors[0])}-dimensional vectors; "
                           f"dimensions={body.dimensions} is not supported")
    tokens = sum(approx_token_count(text) for text in texts)
    return EmbeddingList(
        data=[embedding_item(i, vector, body.encoding_format) for i, vector in enumerate(vectors)],
        model=model,
        usage={"prompt_tokens": tokens, "total_tokens": tokens},
    )
