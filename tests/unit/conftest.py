"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from configs import Settings
from server.cli.init import open_manager
from server.knowledge_base.manager import KnowledgeBaseManager

# Vector stores that several processes may write in turn (milvus-lite serves one process at a time): FAISS with
# its metadata in SQLite, and pgvector with its metadata in the same PostgreSQL database, as replicas share it.
PROCESS_BACKENDS = ("faiss", "pgvector")


@pytest.fixture
def manager(tmp_path, tmp_path_factory):
    """A KnowledgeBaseManager over a fresh database in tmp_path; embeddings cached across the session."""
    cache = tmp_path_factory.getbasetemp() / "kb-embedding-cache"
    with open_manager(Settings(paths={"data_root": tmp_path, "cache_dir": cache})) as mgr:
        yield mgr


@pytest.fixture(params=PROCESS_BACKENDS)
def backend_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that points a process at one backend: nothing for FAISS (files and SQLite in the data
    folder), a fresh PostgreSQL database for pgvector (metadata and vectors)."""
    if request.param == "faiss":
        return {}
    return {"KBCHAT_PATHS__DATABASE_URL": str(request.getfixturevalue("pg_url")),
            "KBCHAT_KB__DEFAULT_VECTOR_STORE": "pgvector"}


@pytest.fixture
def backend_manager(tmp_path, tmp_path_factory, backend_env) -> Iterator[KnowledgeBaseManager]:
    """The ``manager`` fixture on each of PROCESS_BACKENDS in turn; new knowledge bases use that store. Other
    processes reach the same knowledge bases with ``backend_env`` in their environment."""
    cache = tmp_path_factory.getbasetemp() / "kb-embedding-cache"
    paths: dict[str, Any] = {"data_root": tmp_path, "cache_dir": cache}
    kb: dict[str, Any] = {}
    if backend_env:
        paths["database_url"] = backend_env["KBCHAT_PATHS__DATABASE_URL"]
        kb["default_vector_store"] = backend_env["KBCHAT_KB__DEFAULT_VECTOR_STORE"]
    with open_manager(Settings(paths=paths, kb=kb)) as mgr:
        yield mgr
