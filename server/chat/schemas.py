"""Request and reply shapes shared by every chat transport (HTTP, OpenAI /v1, WebSocket, gRPC).

``Source``, ``ToolStep``, ``TokenUsage`` and ``ErrorInfo`` are typed dicts: chat events carry them as
plain JSON-ready dicts (see ``server.chat.events``), and ``ChatResult`` validates and documents them.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import NotRequired, TypedDict

from configs.settings import SearchMode
from server.limits import MAX_QUERY_CHARS, without_control_chars

ChatMode = Literal["llm", "kb", "search", "agent"]
CHAT_MODES: tuple[ChatMode, ...] = get_args(ChatMode)


class HistoryMessage(BaseModel):
    """One earlier turn given by the caller instead of the stored conversation."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class ChatOptions(BaseModel):
    """A question and how to answer it; the mode is chosen elsewhere (``POST /chat/{mode}`` names it)."""

    model_config = ConfigDict(strict=True)

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="The user's question.")
    conversation_id: str | None = Field(None, max_length=64, description="Conversation to continue; new if None.")
    model: str | None = Field(None, max_length=200, description="Chat model name; default model if None.")
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int | None = Field(None, ge=1, le=100_000, description="Largest answer, in tokens.")
    history_turns: int | None = Field(None, ge=0, le=50, description="Past turns sent to the model.")
    history: list[HistoryMessage] | None = Field(
        None, max_length=200, description="Earlier messages to use instead of the stored conversation."
    )
    prompt_template: str | None = Field(None, max_length=100, description="Name of the system prompt template.")
    kb_name: str | None = Field(None, max_length=200, description="Knowledge base searched in kb mode.")
    top_k: int | None = Field(None, ge=1, le=100, description="Passages retrieved.")
    score_threshold: float | None = Field(None, ge=0.0, le=1.0, description="Minimum passage score.")
    search_mode: SearchMode | None = Field(None, description="Retrieval mode.")
    rewrite_query: bool | None = Field(
        None, description="Search with a hypothetical answer written by the model too (HyDE); None uses the setting."
    )
    refuse_unsupported: bool | None = Field(
        None, description="In kb mode, say the knowledge base does not say when nothing in it comes close to the "
        "question, without asking the model; None uses the setting chat.refuse_unsupported."
    )
    engine: str | None = Field(None, max_length=50, description="Web search engine in search mode.")
    result_count: int | None = Field(None, ge=1, le=20, description="Web results fetched.")
    bilingual: bool = Field(False, description="Answer Chinese questions by way of English.")
    stream: bool = Field(True, description="Stream events (SSE) or return one JSON body.")
    store: bool = Field(True, description="Keep the exchange in a conversation; False answers without storing.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = without_control_chars(value)
        if not value.strip():
            raise ValueError("the question must not be blank")
        return value

    def in_mode(self, mode: ChatMode) -> ChatRequest:
        """These options as a request in ``mode``."""
        return ChatRequest.model_validate({**self.model_dump(exclude={"mode"}), "mode": mode})


class ChatRequest(ChatOptions):
    """One question to answer in one of the four chat modes."""

    mode: ChatMode = Field("llm", description="llm, kb (knowledge base), search (web) or agent.")


class Source(TypedDict):
    """One cited passage: a knowledge-base chunk (``kb`` and ``file`` say where) or a web result (``url``).

    The chat layer leaves ``url`` None for knowledge-base passages; an HTTP transport fills in its
    download link. ``highlights`` are the [start, end) offsets in ``text`` of the sentences the model read.
    """

    index: int
    file: str
    location: str
    score: float | None
    text: str
    url: str | None
    kb: str | None
    highlights: NotRequired[list[list[int]]]
    page: NotRequired[int]  # the PDF page of a knowledge-base passage: its download link opens there


class ToolStep(TypedDict):
    """One agent tool call and what it returned."""

    tool: str
    input: str
    output: str
    error: bool


class TokenUsage(TypedDict):
    prompt_tokens: int
    completion_tokens: int


class ErrorInfo(TypedDict):
    """Why an answer failed: a stable code and a readable message."""

    code: str
    message: str


class ChatResult(BaseModel):
    """The whole answer of one question, for non-streaming callers."""

    answer: str = ""
    sources: list[Source] = Field(default_factory=list)
    tools: list[ToolStep] = Field(default_factory=list)
    message_id: str | None = None
    conversation_id: str | None = None
    usage: TokenUsage = Field(default_factory=lambda: TokenUsage(prompt_tokens=0, completion_tokens=0))
    latency_ms: float | None = None
    error: ErrorInfo | None = None
