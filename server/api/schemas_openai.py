"""Request models and response shapes of the OpenAI-compatible /v1 routes."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from configs.settings import SearchMode
from server.api.transport import sse
from server.errors import InvalidInput
from server.llm.base import ToolCall


class ChatMessage(BaseModel):
    """One message of an OpenAI chat request; tool-calling fields pass through untouched."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The content as plain text; content parts other than text are refused."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        pieces = []
        for part in self.content:
            if part.get("type") != "text":
                raise InvalidInput(f"content part type {part.get('type')!r} is not supported: send text parts only")
            pieces.append(str(part.get("text") or ""))
        return "".join(pieces)

    def for_model(self) -> dict[str, Any]:
        """The message as sent on to a chat model (content flattened to text, extra fields kept)."""
        message = {k: v for k, v in (self.model_extra or {}).items() if v is not None}
        # Local servers know no "developer" role; it means the same as "system".
        message["role"] = "system" if self.role == "developer" else self.role
        message["content"] = self.text() if self.content is not None or self.role != "assistant" else None
        return message


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions. OpenAI fields kbchat has no use for (top_p, seed, user...) are ignored.

    kbchat extensions (send them as extra body fields): ``conversation_id`` stores the exchange in
    that conversation (otherwise /v1 chats are not stored); ``top_k``, ``score_threshold`` and
    ``search_mode`` tune retrieval for ``kb/<name>`` models, and ``refuse_unsupported: false`` has the model answer
    even when nothing in the knowledge base comes close to the question.
    """

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, description="A chat model name, or kb/<name> for knowledge-base chat.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1, description="Only one choice is supported.")
    tools: list[dict[str, Any]] | None = None
    conversation_id: str | None = None
    top_k: int | None = Field(None, ge=1, le=100)
    score_threshold: float | None = Field(None, ge=0.0, le=1.0)
    search_mode: SearchMode | None = None
    refuse_unsupported: bool | None = None

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def stop_list(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings."""

    model_config = ConfigDict(extra="allow")

    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = Field(None, description="An embedding model name, or kb/<name> for that KB's model.")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    input_type: Literal["query", "passage"] = Field(
        "passage", description="kbchat extension: embed as search queries or as passages (e5 models differ)."
    )

    def texts(self) -> list[str]:
        """The input texts; token-id input and empty strings are refused, as OpenAI does."""
        items: list[object] = [self.input] if isinstance(self.input, str) else list(self.input)
        if not items:
            raise InvalidInput("input must not be empty")
        texts = [item for item in items if isinstance(item, str)]
        if len(texts) < len(items):
            raise InvalidInput("token-id input is not supported: send the text itself")
        if any(not text.strip() for text in texts):
            raise InvalidInput("input texts must not be empty")
        return texts


class ModelEntry(BaseModel):
    """One model of GET /v1/models."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "kbchat"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelEntry]


class CompletionChoice(BaseModel):
    index: int
    message: dict[str, Any]
    finish_reason: str
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """A chat.completion; kbchat adds ``sources`` (kb/ models) and ``conversation_id``/``message_id``
    (stored conversations) at the top level."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="The vector, or its little-endian float32 bytes in base64.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(cid: str, model: str, message: dict[str, Any], finish_reason: str, usage_: dict[str, int],
               **extra: Any) -> dict[str, Any]:
    """A chat.completion object; ``extra`` adds kbchat's top-level fields (sources, conversation_id)."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage_,
        **extra,
    }


def chunk_event(cid: str, model: str, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
    """One SSE line carrying a chat.completion.chunk."""
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        **extra,
    }
    return sse(body)


def usage_event(cid: str, model: str, usage_: dict[str, int]) -> str:
    """The final chunk OpenAI sends when stream_options.include_usage is set: no choices, only usage."""
    return sse({"id": cid, "object": "chat.completion.chunk", "created": now(), "model": model,
                "choices": [], "usage": usage_})


def tool_calls_out(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Tool calls of a ChatModel (id, name, arguments dict) in OpenAI's message format."""
    out = []
    for call in calls:
        arguments = json.dumps(call.get("arguments") or {}, ensure_ascii=False)
        out.append({
            "id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": arguments},
        })
    return out


def embedding_item(index: int, vector: list[float], encoding_format: str) -> EmbeddingItem:
    encoded: list[float] | str
    if encoding_format == "base64":
        # OpenAI's base64 format: the little-endian float32 bytes of the vector.
        encoded = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    else:
        encoded = [float(v) for v in vector]
    return EmbeddingItem(index=index, embedding=encoded)


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """Our error shape plus OpenAI's `type`, so OpenAI clients raise the matching exception."""
    if status == 401:
        kind = "authentication_error"
    elif status < 500:
        kind = "invalid_request_error"
    else:
        kind = "server_error"
    return {"error": {"code": code, "message": message, "type": kind, "param": None}}
