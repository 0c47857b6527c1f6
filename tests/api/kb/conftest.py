"""Fixtures of the knowledge-base API tests: the API without a chat model, and a KB of two small files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.kb_support import add_docs_kb, kb_client


@pytest.fixture
def client(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with kb_client(tmp_path, tmp_path_factory) as test_client:
        yield test_client


@pytest.fixture
def kb(client: TestClient) -> str:
    return add_docs_kb(client)
