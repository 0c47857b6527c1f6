"""Fixtures shared by the API tests: one fake OpenAI-compatible model per module, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_search import FakeSearch


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_fake(request: pytest.FixtureRequest) -> None:
    """Each test scripts its own replies: one left queued by an earlier test must not answer it."""
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").reset()


@pytest.fixture(scope="module")
def search() -> Iterator[FakeSearch]:
    with FakeSearch() as server:
        yield server


@pytest.fixture(scope="module")
def search_engines(search: FakeSearch) -> dict[str, object]:
    """``chat.search`` settings that send web searches to the module's fake SearXNG."""
    return {"default_engine": "searxng", "searxng_url": search.searxng_url, "timeout": 2}
