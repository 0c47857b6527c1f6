"""Test support for the knowledge-base API: an app without a chat model, a KB of two small files, error checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from configs import Settings
from server.app import create_app
from server.chat.services import ChatServices
from server.db import Database
from server.knowledge_base.manager import KnowledgeBaseManager
from server.llm.registry import LLMRegistry
from server.services import Services

NOTE = "第十九条 试用期最长不得超过六个月。".encode()
LEASE = b"The tenant must pay the rent on the first day of every month."


@contextmanager
def kb_client(data_root: Path, factory: pytest.TempPathFactory, **kb: Any) -> Iterator[TestClient]:
    """The API on a fresh data root, with 1 MiB per file and 2 MiB per request unless ``kb`` says otherwise."""
    cache = factory.getbasetemp() / "kb-embedding-cache"
    settings = Settings(paths={"data_root": data_root, "cache_dir": cache},
                        kb={"max_upload_mb": 1, "max_request_mb": 2, **kb})
    db = Database(settings.paths.database_url)
    db.create_tables()
    manager = KnowledgeBaseManager(settings, db)
    # The KB routes need no chat model: the default (the built-in Qwen) is only prepared, never called.
    llms = LLMRegistry(settings)
    chat = ChatServices(settings, db, manager, llms)
    services = Services(settings=settings, db=db, kb=manager, llms=llms, chat=chat)
    try:
        with TestClient(create_app(services=services)) as test_client:
            yield test_client
    finally:
        manager.close()
        db.dispose()


def add_docs_kb(client: TestClient) -> str:
    """Knowledge base 'docs' holding note.txt (Chinese) and lease.txt (English)."""
    assert client.post("/kbs", json={"name": "docs", "description": "d"}).status_code == 201
    response = client.post("/kbs/docs/files", files=[("files", ("note.txt", NOTE)), ("files", ("lease.txt", LEASE))])
    assert response.status_code == 200, response.text
    return "docs"


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response has the status and a JSON error body with a message (and the code, when given)."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error
