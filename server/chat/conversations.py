"""Conversation service: create, list, read, rename, delete, export (Markdown / JSON) and feedback."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Literal

from server.db import Database
from server.db import chat_repository as repo
from server.db.chat_repository import ConversationRecord, FeedbackRecord
from server.errors import InvalidInput

TITLE_MAX = 200
REASON_MAX = 1000
_SCORES: dict[str | int, int] = {"up": 1, "down": -1, 1: 1, -1: -1, "1": 1, "-1": -1}
ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}


@dataclass
class ExportFile:
    """An exported conversation, ready to be sent as a download."""

    file_name: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class ConversationPage:
    """One page of the conversation list and the total count."""

    items: list[ConversationRecord]
    page: int
    size: int
    total: int


def parse_score(score: str | int) -> int:
    """Map "up"/"down"/1/-1 to 1/-1; anything else is invalid input."""
    if isinstance(score, bool):
        raise InvalidInput("feedback score must be 'up', 'down', 1 or -1")
    key = score.strip().lower() if isinstance(score, str) else score
    if key not in _SCORES:
        raise InvalidInput(f"feedback score must be 'up', 'down', 1 or -1, not {score!r}")
    return _SCORES[key]


def clean_title(title: str) -> str:
    title = " ".join(str(title).split())
    if not title:
        raise InvalidInput("title must not be empty")
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"title is longer than {TITLE_MAX} characters")
    return title


def _slug(title: str) -> str:
    """A file-name-safe version of a title; CJK letters are kept."""
    text = unicodedata.normalize("NFKC", title)
    text = re.sub(r"[^\w\- ]+", "", text, flags=re.UNICODE).strip()
    text = re.sub(r"\s+", "_", text)
    return text[:60] or "conversation"


class ConversationService:
    """Stored conversations and the feedback on their answers."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, title: str | None = None, mode: str = "llm") -> ConversationRecord:
        return self.db.run(repo.create_conversation, clean_title(title) if title else "", mode)

    def list(self, page: int = 1, size: int = 20) -> ConversationPage:
        if page < 1 or not 1 <= size <= 200:
            raise InvalidInput("page must be >= 1 and size between 1 and 200")
        items, total = self.db.run(repo.list_conversations, page, size)
        return ConversationPage(items=items, page=page, size=size, total=total)

    def get(self, conversation_id: str) -> ConversationRecord:
        """The conversation with its messages."""
        return self.db.run(repo.get_conversation, conversation_id)

    def exists(self, conversation_id: str) -> ConversationRecord:
        """The conversation without its messages; NotFound when there is none."""
        return self.db.run(repo.get_conversation, conversation_id, False)

    def rename(self, conversation_id: str, title: str) -> ConversationRecord:
        return self.db.run(repo.rename_conversation, conversation_id, clean_title(title))

    def delete(self, conversation_id: str) -> None:
        self.db.run(repo.delete_conversation, conversation_id)

    def feedback(self, message_id: str, score: str | int, reason: str | None = None) -> FeedbackRecord:
        """Rate an answer; a second call replaces the first."""
        reason = (reason or "").strip()
        if len(reason) > REASON_MAX:
            raise InvalidInput(f"feedback reason is longer than {REASON_MAX} characters")
        return self.db.run(repo.set_feedback, message_id, parse_score(score), reason)

    def export(self, conversation_id: str, fmt: Literal["md", "json"] = "md") -> ExportFile:
        if fmt not in ("md", "json"):
            raise InvalidInput(f"export format must be 'md' or 'json', not {fmt!r}")
        conversation = self.get(conversation_id)
        name = _slug(conversation.title or "conversation")
        if fmt == "json":
            data = json.dumps(asdict(conversation), ensure_ascii=False, indent=2)
            return ExportFile(f"{name}.json", "application/json", data.encode("utf-8"))
        return ExportFile(f"{name}.md", "text/markdown; charset=utf-8", to_markdown(conversation).encode("utf-8"))


def _source_line(source: dict[str, Any]) -> str:
    parts = [str(source.get("file") or source.get("url") or "source")]
    if source.get("location"):
        parts.append(str(source["location"]))
    if source.get("score") is not None:
        parts.append(f"score {float(source['score']):.3f}")
    line = f"{source.get('index', '?')}. " + " — ".join(parts)
    if source.get("url") and str(source["url"]).startswith(("http://", "https://")):
        line += f" <{source['url']}>"
    return line


def _section(heading: str, items: list[str]) -> list[str]:
    """A bold heading and its lines, or nothing when there are none."""
    return [f"**{heading}:**", "", *items, ""] if items else []


def _tool_line(step: dict[str, Any]) -> str:
    status = "error" if step.get("error") else "ok"
    return f"- `{step.get('tool')}`({step.get('input')}) → {step.get('output')} [{status}]"


def to_markdown(conversation: ConversationRecord) -> str:
    """The conversation as Markdown: title, each message, its sources, tool steps and feedback."""
    lines = [f"# {conversation.title or 'Conversation'}", ""]
    lines.append(f"- Conversation: `{conversation.id}`")
    lines.append(f"- Created: {conversation.created_at}")
    lines.append("")
    for message in conversation.messages or ():
        meta = message.meta
        label = ROLE_LABELS.get(message.role, message.role.title())
        details = [message.mode]
        if meta.get("model"):
            details.append(str(meta["model"]))
        lines.append(f"## {label} ({', '.join(d for d in details if d)})")
        lines.append("")
        lines.append(message.content or "_(empty)_")
        lines.append("")
        if meta.get("incomplete"):
            error = meta.get("error") or {}
            lines.append(f"> Incomplete answer: {error.get('message') or error.get('code') or 'interrupted'}")
            lines.append("")
        lines.extend(_section("Tool calls", [_tool_line(step) for step in meta.get("tools") or []]))
        lines.extend(_section("Sources", [_source_line(s) for s in meta.get("sources") or []]))
        feedback = message.feedback
        if feedback:
            reason = f": {feedback.reason}" if feedback.reason else ""
            lines.append(f"**Feedback:** {feedback.score}{reason}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
