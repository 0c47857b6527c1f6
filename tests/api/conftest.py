"""Fixtures shared by the API tests: one fake OpenAI-compatible model per module, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_fake(request: pytest.FixtureRequest) -> None:
    """Each test scripts its own replies: one left queued by an earlier test must not answer it."""
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").reset()
