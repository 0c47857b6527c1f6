"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from configs import Settings
from server.db.engine import Database
from server.knowledge_base.manager import KnowledgeBaseManager


@pytest.fixture
def manager(tmp_path, tmp_path_factory):
    """A KnowledgeBaseManager over a fresh database in tmp_path; embeddings cached across the session."""
    cache = tmp_path_factory.getbasetemp() / "kb-embedding-cache"
    settings = Settings(paths={"data_root": tmp_path, "cache_dir": cache})
    db = Database(settings.paths.database_url)
    db.create_tables()
    mgr = KnowledgeBaseManager(settings, db)
    yield mgr
    mgr.close()
    db.dispose()
