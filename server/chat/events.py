"""The typed events a chat stream yields; every transport relays them as plain dicts.

Order: ``start`` first, then any of ``status`` / ``tool`` / ``delta`` / ``sources``, then either
``done`` (success) or ``error`` (the stream ends without ``done``). Knowledge-base and search chat
send ``sources`` before the first ``delta``: the evidence is shown while the model reads it.
``AnswerAccumulator`` folds a stream into one ``ChatResult``.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from server.chat.schemas import ChatResult, ErrorInfo, Source, TokenUsage, ToolStep


class StartEvent(TypedDict):
    type: Literal["start"]
    conversation_id: str
    message_id: str


class StatusEvent(TypedDict):
    type: Literal["status"]
    stage: str
    ahead: int | None
    prompt_tokens: int | None


class DeltaEvent(TypedDict):
    type: Literal["delta"]
    text: str


class SourcesEvent(TypedDict):
    type: Literal["sources"]
    sources: list[Source]


class ToolEvent(ToolStep):
    type: Literal["tool"]


class ErrorEvent(ErrorInfo):
    type: Literal["error"]


class DoneEvent(TypedDict):
    type: Literal["done"]
    message_id: str
    conversation_id: str
    usage: TokenUsage
    latency_ms: float


ChatEvent = StartEvent | StatusEvent | DeltaEvent | SourcesEvent | ToolEvent | ErrorEvent | DoneEvent


def start(conversation_id: str, message_id: str) -> StartEvent:
    """The stream began; ``message_id`` is the stored user message."""
    return {"type": "start", "conversation_id": conversation_id, "message_id": message_id}


def status(stage: str, ahead: int | None = None, *, prompt_tokens: int | None = None) -> StatusEvent:
    """What the answer waits for before its first text: ``rewriting`` the question for retrieval,
    ``ranking`` the search's candidates with the reranker (``kb.rerank``), ``weighing`` the evidence sentences
    with the chat model (``chat.evidence_scoring``), ``waiting`` behind ``ahead``
    other generations of the same model, or ``reading`` (the model reads ``prompt_tokens`` tokens of prompt)."""
    return {"type": "status", "stage": stage, "ahead": ahead, "prompt_tokens": prompt_tokens}


def delta(text: str) -> DeltaEvent:
    """A piece of the answer text."""
    return {"type": "delta", "text": text}


def sources(items: list[Source]) -> SourcesEvent:
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
) -> Source:
    """One entry of a ``sources`` event."""
    return {"index": index, "file": file, "location": location, "score": score, "text": text, "url": url, "kb": kb}


def tool(name: str, input: str, output: str, error: bool = False) -> ToolEvent:  # noqa: A002
    """One agent tool call and its result (or error, fed back to the model)."""
    return {"type": "tool", "tool": name, "input": input, "output": output, "error": error}


def error(code: str, message: str) -> ErrorEvent:
    """The stream failed; no ``done`` follows."""
    return {"type": "error", "code": code, "message": message}


def done(
    message_id: str,
    conversation_id: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    latency_ms: float = 0.0,
) -> DoneEvent:
    """The answer is complete and stored as assistant message ``message_id``."""
    return {
        "type": "done",
        "message_id": message_id,
        "conversation_id": conversation_id,
        "usage": {"prompt_tokens": int(prompt_tokens), "completion_tokens": int(completion_tokens)},
        "latency_ms": round(float(latency_ms), 1),
    }


class AnswerAccumulator:
    """Folds the events of one answer into its text, last sources, tool steps, ids, usage and error."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.sources: list[Source] = []
        self.tools: list[ToolStep] = []
        self.conversation_id: str | None = None
        self.message_id: str | None = None
        self.usage: TokenUsage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.latency_ms: float | None = None
        self.error: ErrorInfo | None = None

    def add(self, event: ChatEvent) -> None:
        if event["type"] == "delta":
            self._parts.append(event["text"])
        elif event["type"] == "sources":
            # A later sources event replaces the earlier one (see kb_chat).
            self.sources = event["sources"]
        elif event["type"] == "tool":
            self.tools.append(
                {"tool": event["tool"], "input": event["input"], "output": event["output"], "error": event["error"]}
            )
        elif event["type"] == "start":
            self.conversation_id = event["conversation_id"] or None
        elif event["type"] == "error":
            self.error = {"code": event["code"], "message": event["message"]}
        elif event["type"] == "done":
            self.message_id = event["message_id"] or None
            self.conversation_id = event["conversation_id"] or None
            self.usage = event["usage"]
            self.latency_ms = event["latency_ms"]

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def result(self) -> ChatResult:
        return ChatResult(
            answer=self.text, sources=self.sources, tools=self.tools, message_id=self.message_id,
            conversation_id=self.conversation_id, usage=self.usage, latency_ms=self.latency_ms, error=self.error,
        )
