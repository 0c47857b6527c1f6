"""Conversation routes: CRUD, export and feedback on answers; they only do HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, StrictInt, StrictStr

from server.api.deps import ServicesDep
from server.api.uploads import read_upload
from server.knowledge_base.ingestion import check_upload
from server.chat.schemas import ChatMode

router = APIRouter(tags=["conversations"])


class CreateConversation(BaseModel):
    """Body of POST /conversations."""

    title: str | None = Field(None, max_length=200)
    mode: ChatMode = "llm"


class RenameConversation(BaseModel):
    """Body of PATCH /conversations/{id}."""

    title: str = Field(min_length=1, max_length=200)


class FeedbackBody(BaseModel):
    """Body of POST /messages/{id}/feedback."""

    score: StrictStr | StrictInt = Field(description='"up", "down", 1 or -1')
    reason: str | None = Field(None, max_length=1000)


def _content_disposition(file_name: str) -> str:
    ascii_name = file_name.encode("ascii", "ignore").decode() or "conversation"
    ascii_name = ascii_name.replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"


@router.post("/conversations", status_code=201)
def create_conversation(body: CreateConversation, services: ServicesDep) -> dict[str, Any]:
    """Start an empty conversation."""
    return services.chat.conversations.create(title=body.title, mode=body.mode)


@router.get("/conversations")
def list_conversations(
    services: ServicesDep, page: int = Query(1, ge=1, le=1_000_000), size: int = Query(20, ge=1, le=200)
) -> dict[str, Any]:
    """List conversations, most recently active first."""
    return services.chat.conversations.list(page=page, size=size)


@router.get("/conversations/{conversation_id}")
def get_conversation(conversation_id: str, services: ServicesDep) -> dict[str, Any]:
    """One conversation with its messages, their sources and feedback."""
    return services.chat.conversations.get(conversation_id)


@router.patch("/conversations/{conversation_id}")
def rename_conversation(conversation_id: str, body: RenameConversation, services: ServicesDep) -> dict[str, Any]:
    """Rename a conversation."""
    return services.chat.conversations.rename(conversation_id, body.title)


@router.delete("/conversations/{conversation_id}", status_code=204)
def delete_conversation(conversation_id: str, services: ServicesDep) -> Response:
    """Delete a conversation, its messages and the files dropped into it."""
    services.chat.delete_conversation(conversation_id)
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/files")
async def add_conversation_files(conversation_id: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    """Drop files (multipart 'files') into a conversation: knowledge-base chat in it searches them at once."""
    await anyio.to_thread.run_sync(services.chat.conversations.exists, conversation_id)
    max_bytes = services.settings.kb.max_upload_mb * 1024 * 1024
    upload = await read_upload(request, Path(services.settings.paths.cache_dir) / "uploads", max_bytes)
    try:
        check_upload(upload.file_names)
        results = await anyio.to_thread.run_sync(services.chat.files.add, conversation_id, upload.files)
    finally:
        upload.cleanup()
    return {"results": [r.model_dump() for r in results]}


@router.get("/conversations/{conversation_id}/files")
def list_conversation_files(conversation_id: str, services: ServicesDep) -> list[dict[str, Any]]:
    """The files dropped into a conversation."""
    return [f.model_dump(mode="json") for f in services.chat.files.list(conversation_id)]


@router.get("/conversations/{conversation_id}/export")
def export_conversation(
    conversation_id: str, services: ServicesDep, format: Literal["md", "json"] = "md"  # noqa: A002
) -> Response:
    """Download a conversation as Markdown or JSON."""
    exported = services.chat.conversations.export(conversation_id, format)
    return Response(
        exported.content,
        media_type=exported.media_type,
        headers={"Content-Disposition": _content_disposition(exported.file_name)},
    )


@router.post("/messages/{message_id}/feedback")
def give_feedback(message_id: str, body: FeedbackBody, services: ServicesDep) -> dict[str, Any]:
    """Rate an answer up or down; a second call replaces the first."""
    return services.chat.feedback(message_id, body.score, body.reason)
