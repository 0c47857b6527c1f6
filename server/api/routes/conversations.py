"""Conversation routes: CRUD, export and feedback on answers; they only do HTTP."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Query, Request, Response

from server.api.deps import ServicesDep
from server.api.schemas_conversations import (
    ConversationCreate,
    ConversationList,
    ConversationPublic,
    ConversationUpdate,
    ConversationWithMessages,
    FeedbackCreate,
    FeedbackPublic,
    FileResults,
)
from server.api.uploads import multipart_openapi, read_settings_upload
from server.knowledge_base.ingestion import check_upload
from server.knowledge_base.manager import FileInfo

router = APIRouter(tags=["conversations"])

EXPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The conversation as a Markdown or JSON file download.",
        "model": ConversationWithMessages,
        "content": {"text/markdown": {"schema": {"type": "string"}}},
    },
}


def _content_disposition(file_name: str) -> str:
    ascii_name = file_name.encode("ascii", "ignore").decode() or "conversation"
    ascii_name = ascii_name.replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"


@router.post("/conversations", status_code=201, response_model=ConversationPublic)
def create_conversation(body: ConversationCreate, services: ServicesDep) -> ConversationPublic:
    """Start an empty conversation."""
    record = services.chat.conversations.create(title=body.title, mode=body.mode)
    return ConversationPublic.model_validate(record)


@router.get("/conversations", response_model=ConversationList)
def list_conversations(
    services: ServicesDep, page: int = Query(1, ge=1, le=1_000_000), size: int = Query(20, ge=1, le=200)
) -> ConversationList:
    """List conversations, most recently active first."""
    return ConversationList.model_validate(services.chat.conversations.list(page=page, size=size))


@router.get("/conversations/{conversation_id}", response_model=ConversationWithMessages)
def get_conversation(conversation_id: str, services: ServicesDep) -> ConversationWithMessages:
    """One conversation with its messages, their sources and feedback."""
    return ConversationWithMessages.model_validate(services.chat.conversations.get(conversation_id))


@router.patch("/conversations/{conversation_id}", response_model=ConversationPublic)
def rename_conversation(conversation_id: str, body: ConversationUpdate, services: ServicesDep) -> ConversationPublic:
    """Rename a conversation."""
    return ConversationPublic.model_validate(services.chat.conversations.rename(conversation_id, body.title))


@router.delete("/conversations/{conversation_id}", status_code=204, response_class=Response)
def delete_conversation(conversation_id: str, services: ServicesDep) -> None:
    """Delete a conversation, its messages and the files dropped into it."""
    services.chat.delete_conversation(conversation_id)


@router.post(
    "/conversations/{conversation_id}/files",
    response_model=FileResults,
    openapi_extra=multipart_openapi(),
)
async def add_conversation_files(conversation_id: str, request: Request, services: ServicesDep) -> FileResults:
    """Drop files (multipart 'files') into a conversation: knowledge-base chat in it searches them at once."""
    await anyio.to_thread.run_sync(services.chat.conversations.exists, conversation_id)
    upload = await read_settings_upload(request, services.settings)
    try:
        check_upload(upload.file_names)
        results = await anyio.to_thread.run_sync(services.chat.files.add, conversation_id, upload.files)
    finally:
        upload.cleanup()
    return FileResults(results=results)


@router.get("/conversations/{conversation_id}/files", response_model=list[FileInfo])
def list_conversation_files(conversation_id: str, services: ServicesDep) -> list[FileInfo]:
    """The files dropped into a conversation."""
    files: list[FileInfo] = services.chat.files.list(conversation_id)
    return files


@router.get("/conversations/{conversation_id}/export", response_class=Response, responses=EXPORT_RESPONSES)
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


@router.post("/messages/{message_id}/feedback", response_model=FeedbackPublic)
def give_feedback(message_id: str, body: FeedbackCreate, services: ServicesDep) -> FeedbackPublic:
    """Rate an answer up or down; a second call replaces the first."""
    return FeedbackPublic.model_validate(services.chat.feedback(message_id, body.score, body.reason))
