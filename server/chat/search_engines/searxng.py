"""SearXNG through its JSON API: GET {searxng_url}/search?q=..&format=json."""

from __future__ import annotations

from server.chat.search_engines.base import SearchEngine, SearchUnavailable, WebResult, clip


class SearxngEngine(SearchEngine):
    """A SearXNG instance (JSON output must be enabled in its settings)."""

    name = "searxng"

    async def search(self, query: str, count: int) -> list[WebResult]:
        url = self.settings.searxng_url.rstrip("/") + "/search"
        data = await self._get_json(url, params={"q": query, "format": "json"})
        items = data.get("results") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise SearchUnavailable(f"searxng at {url} answered without a 'results' list")
        results = [
            WebResult(title=str(i.get("title") or i.get("url") or ""), url=str(i.get("url") or ""),
                      snippet=str(i.get("content") or ""))
            for i in items
            if isinstance(i, dict)
        ]
        return clip(results, count)
