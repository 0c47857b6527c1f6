"""Web search engines behind one interface, chosen by name."""

from __future__ import annotations

from configs.settings import SearchSettings
from server.chat.search_engines.base import SearchEngine, SearchUnavailable, WebResult
from server.chat.search_engines.bing import BingEngine
from server.chat.search_engines.duckduckgo import DuckDuckGoEngine
from server.chat.search_engines.searxng import SearxngEngine
from server.errors import InvalidInput

ENGINES: dict[str, type[SearchEngine]] = {
    "duckduckgo": DuckDuckGoEngine,
    "searxng": SearxngEngine,
    "bing": BingEngine,
}

__all__ = ["ENGINES", "EngineFactory", "SearchEngine", "SearchUnavailable", "WebResult"]


class EngineFactory:
    """Builds the engine a request names (or the default one) from the search settings."""

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings

    @property
    def names(self) -> list[str]:
        return list(ENGINES)

    @property
    def default_name(self) -> str:
        return self.settings.default_engine

    def get(self, name: str | None = None) -> SearchEngine:
        name = (name or self.default_name).strip().lower()
        try:
            return ENGINES[name](self.settings)
        except KeyError:
            raise InvalidInput(
                f"unknown search engine {name!r}; known engines: {', '.join(ENGINES)}"
            ) from None
