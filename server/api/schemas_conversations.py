"""Request and response bodies of the conversation, message-feedback and conversation-file routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from server.api.transport import with_download_urls
from server.chat.schemas import ChatMode
from server.knowledge_base.manager import FileResult


class ConversationCreate(BaseModel):
    """Body of POST /conversations."""

    model_config = ConfigDict(strict=True)

    title: str | None = Field(None, max_length=200)
    mode: ChatMode = "llm"


class ConversationUpdate(BaseModel):
    """Body of PATCH /conversations/{id}."""

    model_config = ConfigDict(strict=True)

    title: str = Field(min_length=1, max_length=200)


class FeedbackCreate(BaseModel):
    """Body of POST /messages/{id}/feedback."""

    model_config = ConfigDict(strict=True)

    score: StrictStr | StrictInt = Field(description='"up", "down", 1 or -1')
    reason: str | None = Field(None, max_length=1000)


class _Record(BaseModel):
    """Read from the chat repository's records."""

    model_config = ConfigDict(from_attributes=True)


class MessageFeedback(_Record):
    """The rating an answer has."""

    score: str = Field(description='"up" or "down"')
    reason: str = ""
    updated_at: str | None = None


class FeedbackPublic(MessageFeedback):
    """The rating just given, and the answer it is for."""

    message_id: str


class MessagePublic(_Record):
    """A stored question or answer; an answer's ``meta`` holds its model, sources, tool steps, usage and latency."""

    id: str
    conversation_id: str
    role: str
    content: str
    mode: str
    meta: dict[str, Any]
    created_at: str | None = None
    feedback: MessageFeedback | None = None

    @field_validator("meta")
    @classmethod
    def _source_links(cls, meta: dict[str, Any]) -> dict[str, Any]:
        """Knowledge-base sources get their download link, as in the chat stream."""
        sources = meta.get("sources")
        if isinstance(sources, list) and all(isinstance(s, dict) for s in sources):
            return {**meta, "sources": with_download_urls(sources)}
        return meta


class ConversationPublic(_Record):
    id: str
    title: str
    mode: str
    created_at: str | None = None
    updated_at: str | None = None
    message_count: int


class ConversationWithMessages(ConversationPublic):
    messages: list[MessagePublic]


class ConversationList(_Record):
    """One page of conversations, most recently active first."""

    items: list[ConversationPublic]
    page: int
    size: int
    total: int


class FileResults(BaseModel):
    """What became of each file of an upload."""

    results: list[FileResult]
