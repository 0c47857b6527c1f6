"""The typed events a chat stream yields; every transport relays them as plain dicts.

Order: ``start`` first, then any of ``status`` / ``tool`` / ``delta`` / ``sources``, then either
``done`` (success) or ``error`` (the stream ends without ``done``). Knowledge-base and search chat
send ``sources`` before the first ``delta``: the evidence is shown while the model reads it.
"""

from __future__ import annotations

from typing import Any

EVENT_TYPES = ("start", "status", "delta", "sources", "tool", "error", "done")


def start(conversation_id: str, message_id: str) -> dict[str, Any]:
    """The stream began; ``message_id`` is the stored user message."""
    return {"type": "start", "conversation_id": conversation_id, "message_id": message_id}


def status(stage: str, ahead: int | None = None, *, prompt_tokens: int | None = None) -> dict[str, Any]:
    """What the answer waits for before its first text: ``rewriting`` the question for retrieval,
    ``waiting`` behind ``ahead`` other generations of the same model, or ``reading`` (the model reads
    ``prompt_tokens`` tokens of prompt)."""
    return {"type": "status", "stage": stage, "ahead": ahead, "prompt_tokens": prompt_tokens}


def delta(text: str) -> dict[str, Any]:
    """A piece of the answer text."""
    return {"type": "delta", "text": text}


def sources(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The passages the answer cites, numbered from 1 as in the answer's [n] marks."""
    return {"type": "sources", "sources": items}


def source(
    index: int,
    file: str,
    location: str = "",
    score: float | None = None,
    text: str = "",
    url: str | None = None,
    kb: str | None = None,
) -> dict[str, Any]:
    """One entry of a ``sources`` event."""
    return {"index": index, "file": file, "location": location, "score": score, "text": text, "url": url, "kb": kb}


def tool(name: str, input: str, output: str, error: bool = False) -> dict[str, Any]:  # noqa: A002
    """One agent tool call and its result (or error, fed back to the model)."""
    return {"type": "tool", "tool": name, "input": input, "output": output, "error": error}


def error(code: str, message: str) -> dict[str, Any]:
    """The stream failed; no ``done`` follows."""
    return {"type": "error", "code": code, "message": message}


def done(
    message_id: str,
    conversation_id: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    latency_ms: float = 0.0,
) -> dict[str, Any]:
    """The answer is complete and stored as assistant message ``message_id``."""
    return {
        "type": "done",
        "message_id": message_id,
        "conversation_id": conversation_id,
        "usage": {"prompt_tokens": int(prompt_tokens), "completion_tokens": int(completion_tokens)},
        "latency_ms": round(float(latency_ms), 1),
    }
