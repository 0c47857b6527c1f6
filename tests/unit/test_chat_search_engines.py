"""Web search engines against local fake SearXNG, DuckDuckGo-HTML and Bing servers."""

from __future__ import annotations

import asyncio
import time

import pytest

from configs.settings import SearchSettings
from server.chat.search_engines import EngineFactory, SearchUnavailable
from server.errors import InvalidInput
from tests.fakes.fake_search import FakeSearch
from tests.fakes.fixtures import free_port


@pytest.fixture(scope="module")
def fake():
    with FakeSearch() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake):
    fake.fail_status, fake.delay = None, 0.0
    yield


def settings_for(fake: FakeSearch, **overrides) -> SearchSettings:
    values = {
        "searxng_url": fake.searxng_url,
        "duckduckgo_url": fake.duckduckgo_url,
        "bing_url": fake.bing_url,
        "bing_key": fake.bing_key,
        "timeout": 2.0,
    }
    return SearchSettings(**{**values, **overrides})


def search(settings: SearchSettings, engine: str, query: str = "compost", count: int = 5):
    return asyncio.run(EngineFactory(settings).get(engine).search(query, count))


@pytest.mark.parametrize("engine", ["searxng", "duckduckgo", "bing"])
def test_each_engine_returns_titles_urls_and_snippets(fake, engine):
    results = search(settings_for(fake), engine, "how to compost", 2)
    assert [(r.title, r.url) for r in results] == [
        ("Compost basics", "https://garden.example/compost"),
        ("Tomato care", "https://garden.example/tomatoes"),
    ]
    assert results[0].snippet == "Turn a compost heap every two weeks."
    assert fake.requests[-1]["query"]["q"] == "how to compost"


def test_searxng_asks_for_json_and_bing_sends_its_key(fake):
    search(settings_for(fake), "searxng")
    assert fake.requests[-1]["path"] == "/search" and fake.requests[-1]["query"]["format"] == "json"
    search(settings_for(fake), "bing", count=3)
    request = fake.requests[-1]
    assert request["headers"]["ocp-apim-subscription-key"] == fake.bing_key and request["query"]["count"] == "3"


@pytest.mark.parametrize("engine", ["searxng", "duckduckgo", "bing"])
def test_no_results_is_an_empty_list(fake, engine):
    assert search(settings_for(fake), engine, "nothing at all") == []


def test_bing_without_a_key_says_how_to_configure_it(fake):
    with pytest.raises(SearchUnavailable) as err:
        search(settings_for(fake, bing_key=None), "bing")
    assert err.value.code == "search_not_configured" and "BING_KEY" in err.value.message


def test_bing_with_a_wrong_key_reports_the_refusal(fake):
    with pytest.raises(SearchUnavailable) as err:
        search(settings_for(fake, bing_key="wrong"), "bing")
    assert "401" in err.value.message and err.value.code == "search_unavailable"


@pytest.mark.parametrize("engine", ["searxng", "duckduckgo", "bing"])
def test_engine_errors_become_search_unavailable(fake, engine):
    fake.fail_status = 500
    with pytest.raises(SearchUnavailable) as err:
        search(settings_for(fake), engine)
    assert "500" in err.value.message and err.value.status == 502


@pytest.mark.parametrize("engine", ["searxng", "duckduckgo", "bing"])
def test_unreachable_engines_fail_fast_with_a_clear_error(engine):
    dead = f"http://127.0.0.1:{free_port()}"
    settings = SearchSettings(
        searxng_url=dead, duckduckgo_url=f"{dead}/html/", bing_url=f"{dead}/v7.0/search", bing_key="k", timeout=2
    )
    started = time.monotonic()
    with pytest.raises(SearchUnavailable) as err:
        search(settings, engine)
    assert time.monotonic() - started < 2
    assert "cannot reach" in err.value.message and dead in err.value.message


def test_a_hanging_engine_times_out(fake):
    fake.delay = 3
    started = time.monotonic()
    with pytest.raises(SearchUnavailable) as err:
        search(settings_for(fake, timeout=0.5), "searxng")
    assert time.monotonic() - started < 2.5
    assert "did not answer within 0.5s" in err.value.message


def test_ddgs_library_path_fails_quickly_when_offline(monkeypatch):
    # ddgs honours DDGS_PROXY; a closed local port makes every backend fail at once, online or not.
    monkeypatch.setenv("DDGS_PROXY", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(SearchUnavailable) as err:
        search(SearchSettings(timeout=3), "duckduckgo")
    assert time.monotonic() - started < 6
    assert err.value.code == "search_unavailable" and "duckduckgo" in err.value.message


def test_unknown_engine_names_the_known_ones():
    with pytest.raises(InvalidInput) as err:
        EngineFactory(SearchSettings()).get("altavista")
    assert "altavista" in err.value.message and "searxng" in err.value.message
