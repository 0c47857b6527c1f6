"""Conversions between the gRPC messages of chat.proto and kbchat's chat requests and events."""

from __future__ import annotations

import json
from typing import Any

from server.grpc import chat_pb2

# Optional proto fields copied as they are into the ChatRequest of the same name.
_OPTIONAL_FIELDS = (
    "model",
    "temperature",
    "max_tokens",
    "history_turns",
    "prompt_template",
    "top_k",
    "score_threshold",
    "search_mode",
    "engine",
    "result_count",
)


def _option_value(raw: str) -> Any:
    """An options value: JSON when it parses (numbers, booleans, lists), else the plain string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def request_fields(request: chat_pb2.AskRequest) -> dict[str, Any]:
    """The ChatRequest fields an AskRequest carries; proto3 empty strings and false mean unset."""
    fields: dict[str, Any] = {key: _option_value(raw) for key, raw in request.options.items()}
    fields["query"] = request.query
    for name, value in (("conversation_id", request.conversation_id), ("mode", request.mode),
                        ("kb_name", request.kb)):
        if value:
            fields[name] = value
    if request.bilingual:
        fields["bilingual"] = True
    for name in _OPTIONAL_FIELDS:
        if request.HasField(name):
            fields[name] = getattr(request, name)
    if request.history:
        fields["history"] = [{"role": m.role, "content": m.content} for m in request.history]
    return fields


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _source(item: dict[str, Any]) -> chat_pb2.Source:
    return chat_pb2.Source(
        index=int(item.get("index") or 0),
        file=_text(item.get("file")),
        location=_text(item.get("location")),
        score=float(item.get("score") or 0.0),
        text=_text(item.get("text")),
        url=_text(item.get("url")),
        kb=_text(item.get("kb")),
    )


def event_message(event: dict[str, Any]) -> chat_pb2.AskEvent:
    """One chat event as an AskEvent: its typed form when known, always its JSON."""
    kind = _text(event.get("type"))
    message = chat_pb2.AskEvent(type=kind, json=json.dumps(event, ensure_ascii=False, default=str))
    if kind == "start":
        message.start.conversation_id = _text(event.get("conversation_id"))
        message.start.message_id = _text(event.get("message_id"))
    elif kind == "delta":
        message.delta.text = _text(event.get("text"))
    elif kind == "sources":
        message.sources.SetInParent()
        message.sources.sources.extend(_source(s) for s in event.get("sources") or [])
    elif kind == "tool":
        message.tool.tool = _text(event.get("tool"))
        message.tool.input = _text(event.get("input"))
        message.tool.output = _text(event.get("output"))
        message.tool.error = bool(event.get("error"))
    elif kind == "error":
        message.error.code = _text(event.get("code"))
        message.error.message = _text(event.get("message"))
    elif kind == "done":
        usage = event.get("usage") or {}
        message.done.message_id = _text(event.get("message_id"))
        message.done.conversation_id = _text(event.get("conversation_id"))
        message.done.usage.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        message.done.usage.completion_tokens = int(usage.get("completion_tokens") or 0)
        message.done.latency_ms = float(event.get("latency_ms") or 0.0)
    return message
