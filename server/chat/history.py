"""Conversation history for the model: the last N turns, trimmed to the model's context window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.db import Database
from server.db import chat_repository as repo
from server.errors import InvalidInput

# Tokens a chat template spends on each message's role markers, on top of its text.
MESSAGE_OVERHEAD = 4
# A stored answer's meta key for the note kbchat added after the model's text (kb_chat: figures and names no
# passage holds); the model is not shown it again, or it writes such notes itself.
NOTE_META = "note"


def load_history(db: Database, conversation_id: str, turns: int) -> list[dict[str, str]]:
    """The last ``turns`` user/assistant exchanges stored in the conversation, oldest first, as the model wrote
    them (without kbchat's notes)."""
    if turns <= 0:
        return []
    rows = db.run(repo.recent_messages, conversation_id, turns * 2)
    return clean_history([{"role": m.role, "content": _without_note(m.content, m.meta.get(NOTE_META))} for m in rows])


def _without_note(content: str, note: Any) -> str:
    return content[:-len(note)] if isinstance(note, str) and note and content.endswith(note) else content


def clean_history(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Only non-empty user and assistant messages, as ``{"role", "content"}``."""
    out = []
    for message in messages:
        role, content = message.get("role"), (message.get("content") or "").strip()
        if role in ("user", "assistant") and content:
            out.append({"role": role, "content": content})
    return out


def without_repeated(history: list[dict[str, str]], question: str) -> list[dict[str, str]]:
    """The history without its last exchange when ``question`` asks that exchange's question again word for word
    (after a declined answer, with the decline turned off, say): it is asked anew, as it was then, not as a
    follow-up of itself."""
    if (len(history) >= 2 and history[-2]["role"] == "user" and history[-1]["role"] == "assistant"
            and history[-2]["content"].strip() == question.strip()):
        return history[:-2]
    return history


def last_turns(messages: list[dict[str, str]], turns: int) -> list[dict[str, str]]:
    """The tail of ``messages`` holding at most ``turns`` user questions (and their answers)."""
    if turns <= 0:
        return []
    users = 0
    for start in range(len(messages) - 1, -1, -1):
        if messages[start]["role"] == "user":
            users += 1
            if users == turns:
                return messages[start:]
    return list(messages)


def message_tokens(count: Callable[[str], int], message: dict[str, str]) -> int:
    return count(message.get("content") or "") + MESSAGE_OVERHEAD


def fit_history(
    count: Callable[[str], int],
    system: str,
    history: list[dict[str, str]],
    question: str,
    budget: int,
) -> list[dict[str, str]]:
    """Drop the oldest history until system prompt + history + question fit ``budget`` tokens.

    The system prompt and the question are never dropped; if they alone do not fit,
    the question is refused rather than sent to a model that would reject it.
    """
    fixed = message_tokens(count, {"content": question}) + (message_tokens(count, {"content": system}) if system else 0)
    if fixed > budget:
        raise InvalidInput(
            f"the question and system prompt need about {fixed} tokens, more than the {budget} the model's "
            "context window leaves after room for the answer; shorten the question or lower max_tokens",
            code="context_overflow",
        )
    kept = list(history)
    used = fixed + sum(message_tokens(count, m) for m in kept)
    while kept and used > budget:
        used -= message_tokens(count, kept.pop(0))
    # A history starting with an answer whose question was dropped confuses the model.
    while kept and kept[0]["role"] == "assistant":
        kept.pop(0)
    return kept


def build_messages(system: str, history: list[dict[str, str]], question: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.extend({"role": m["role"], "content": m["content"]} for m in history)
    messages.append({"role": "user", "content": question})
    return messages
