"""Builds kbchat's long-lived services once, from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from configs import Settings
from server.chat.services import ChatServices
from server.db import Database
from server.knowledge_base.manager import KnowledgeBaseManager
from server.llm.local.status import local_model_busy
from server.llm.registry import LLMRegistry

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a request handler may need, built once per process."""

    settings: Settings
    db: Database
    kb: KnowledgeBaseManager
    llms: LLMRegistry
    chat: ChatServices

    def close(self) -> None:
        self.chat.close()
        self.kb.close()
        self.db.dispose()


def build_services(settings: Settings) -> Services:
    """Create the database schema if needed and wire the services together."""
    db = Database(settings.paths.database_url)
    db.create_tables()
    kb = KnowledgeBaseManager(settings, db)
    llms = LLMRegistry(settings)
    kb.foreground.add_probe(partial(local_model_busy, settings))
    chat = ChatServices(settings, db, kb, llms)
    return Services(settings=settings, db=db, kb=kb, llms=llms, chat=chat)
