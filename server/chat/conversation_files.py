"""File chat: files dropped into a conversation become its own knowledge base, searched at once.

The knowledge base of conversation ``<id>`` is ``_chat_<id>`` (``names.conversation_kb_name``). It is
made on the first drop with the default embedding model, is searched in knowledge-base chat of that
conversation together with any knowledge base chosen, is not listed among the knowledge bases, and is
deleted with the conversation.
"""

from __future__ import annotations

import logging
from pathlib import Path

from server.chat.conversations import ConversationService
from server.errors import NotFound
from server.knowledge_base.manager import FileInfo, FileResult, KnowledgeBaseManager
from server.knowledge_base.names import conversation_kb_name

logger = logging.getLogger(__name__)


class ConversationFiles:
    """The files of each conversation, kept in a knowledge base of its own."""

    def __init__(self, conversations: ConversationService, kb: KnowledgeBaseManager) -> None:
        self.conversations = conversations
        self.kb = kb

    def kb_name(self, conversation_id: str) -> str | None:
        """The conversation's knowledge base if files were dropped into it, else None."""
        name = conversation_kb_name(conversation_id)
        try:
            self.kb.get_kb(name)
        except NotFound:
            return None
        return name

    def add(self, conversation_id: str, files: list[tuple[str, bytes]] | list[Path]) -> list[FileResult]:
        """Index files into the conversation's knowledge base (made on first use)."""
        self.conversations.exists(conversation_id)
        name = conversation_kb_name(conversation_id)
        if self.kb_name(conversation_id) is None:
            self.kb.create_kb(name, f"files of conversation {conversation_id}", for_conversation=True)
        return self.kb.add_files(name, files)

    def list(self, conversation_id: str) -> list[FileInfo]:
        self.conversations.exists(conversation_id)
        name = self.kb_name(conversation_id)
        return self.kb.list_files(name) if name else []

    def delete(self, conversation_id: str) -> None:
        """Delete the conversation's files with their knowledge base (nothing when there are none)."""
        name = self.kb_name(conversation_id)
        if name is not None:
            self.kb.delete_kb(name)
            logger.info("deleted the files of conversation %s", conversation_id)
