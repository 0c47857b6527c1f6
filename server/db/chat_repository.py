"""Repository functions for conversations, messages and feedback; each takes a session first.

They return frozen records, so callers never touch ORM objects outside a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server.db.models import Conversation, Feedback, Message, utcnow
from server.errors import BadRequest, NotFound

SCORE_NAMES = {1: "up", -1: "down"}


@dataclass(frozen=True)
class FeedbackRecord:
    """The rating of an answer: "up" or "down", why, and when it was last given."""

    message_id: str
    score: str
    reason: str
    updated_at: str | None


@dataclass(frozen=True)
class MessageRecord:
    """A stored message; ``meta`` holds mode, model, sources, tool steps, latency and usage."""

    id: str
    conversation_id: str
    role: str
    content: str
    mode: str
    meta: dict[str, Any]
    created_at: str | None
    feedback: FeedbackRecord | None


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation and how many messages it holds; ``messages`` when they were asked for."""

    id: str
    title: str
    mode: str
    created_at: str | None
    updated_at: str | None
    message_count: int
    messages: tuple[MessageRecord, ...] | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _feedback(row: Feedback) -> FeedbackRecord:
    return FeedbackRecord(
        message_id=row.message_id,
        score=SCORE_NAMES.get(row.score, str(row.score)),
        reason=row.reason or "",
        updated_at=_iso(row.created_at),
    )


def _message(row: Message, feedback: Feedback | None) -> MessageRecord:
    return MessageRecord(
        id=row.id, conversation_id=row.conversation_id, role=row.role, content=row.content, mode=row.mode,
        meta=dict(row.meta or {}), created_at=_iso(row.created_at),
        feedback=_feedback(feedback) if feedback is not None else None,
    )


def _conversation_record(
    row: Conversation, message_count: int, messages: tuple[MessageRecord, ...] | None = None
) -> ConversationRecord:
    return ConversationRecord(
        id=row.id, title=row.title, mode=row.mode, created_at=_iso(row.created_at), updated_at=_iso(row.updated_at),
        message_count=message_count, messages=messages,
    )


def _conversation(session: Session, conversation_id: str) -> Conversation:
    row = session.get(Conversation, conversation_id)
    if row is None:
        raise NotFound(f"conversation {conversation_id!r} not found")
    return row


def create_conversation(session: Session, title: str = "", mode: str = "llm") -> ConversationRecord:
    row = Conversation(title=title, mode=mode)
    session.add(row)
    session.flush()
    return _conversation_record(row, 0)


def list_conversations(session: Session, page: int, size: int) -> tuple[list[ConversationRecord], int]:
    """One page of conversations, most recently active first, and the total count."""
    total = session.scalar(select(func.count()).select_from(Conversation)) or 0
    counts = (
        select(Message.conversation_id, func.count(Message.id).label("n"))
        .group_by(Message.conversation_id)
        .subquery()
    )
    rows = session.execute(
        select(Conversation, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.conversation_id == Conversation.id)
        .order_by(Conversation.updated_at.desc(), Conversation.created_at.desc(), Conversation.id)
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return [_conversation_record(conv, int(n)) for conv, n in rows], int(total)


def get_conversation(session: Session, conversation_id: str, with_messages: bool = True) -> ConversationRecord:
    row = _conversation(session, conversation_id)
    if not with_messages:
        return _conversation_record(row, len(row.messages))
    messages = tuple(_message(m, m.feedback) for m in row.messages)
    return _conversation_record(row, len(messages), messages)


def rename_conversation(session: Session, conversation_id: str, title: str) -> ConversationRecord:
    row = _conversation(session, conversation_id)
    row.title = title
    row.updated_at = utcnow()
    session.flush()
    return _conversation_record(row, len(row.messages))


def set_title_if(session: Session, conversation_id: str, title: str, expected: str) -> bool:
    """Replace the title only if it is still ``expected`` (so a user's rename is never overwritten)."""
    row = session.get(Conversation, conversation_id)
    if row is None or row.title != expected:
        return False
    row.title = title
    return True


def delete_conversation(session: Session, conversation_id: str) -> None:
    session.delete(_conversation(session, conversation_id))


def recent_messages(session: Session, conversation_id: str, limit: int) -> list[MessageRecord]:
    """The last ``limit`` messages of a conversation, oldest first."""
    if limit <= 0:
        return []
    rows = session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .options(selectinload(Message.feedback))
        .order_by(Message.seq.desc())
        .limit(limit)
    ).all()
    return [_message(m, m.feedback) for m in reversed(rows)]


def add_message(
    session: Session, conversation_id: str, role: str, content: str, mode: str, meta: dict[str, Any]
) -> MessageRecord:
    conv = _conversation(session, conversation_id)
    last = session.scalar(select(func.max(Message.seq)).where(Message.conversation_id == conversation_id))
    row = Message(
        conversation_id=conversation_id, seq=(last or 0) + 1, role=role, content=content, mode=mode, meta=meta
    )
    session.add(row)
    conv.updated_at = utcnow()
    conv.mode = mode
    session.flush()
    return _message(row, None)


def set_feedback(session: Session, message_id: str, score: int, reason: str) -> FeedbackRecord:
    """Record (or replace) the thumbs up/down of an assistant message."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"message {message_id!r} not found")
    if message.role != "assistant":
        raise BadRequest(f"message {message_id!r} is a {message.role} message; only answers can be rated")
    row = message.feedback
    if row is None:
        row = Feedback(message_id=message_id, score=score, reason=reason)
        session.add(row)
    else:
        row.score = score
        row.reason = reason
        row.created_at = utcnow()
    session.flush()
    return _feedback(row)
