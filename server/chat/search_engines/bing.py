"""Bing Web Search API: GET bing_url with the Ocp-Apim-Subscription-Key header."""

from __future__ import annotations

from server.chat.search_engines.base import SearchEngine, SearchUnavailable, WebResult, clip


class BingEngine(SearchEngine):
    """Bing Web Search v7; needs an API key in settings.chat.search.bing_key."""

    name = "bing"

    async def search(self, query: str, count: int) -> list[WebResult]:
        key = self.settings.bing_key.get_secret_value() if self.settings.bing_key else ""
        if not key:
            raise SearchUnavailable(
                "Bing search needs an API key: set KBCHAT_CHAT__SEARCH__BING_KEY, or pick another engine",
                code="search_not_configured",
            )
        url = self.settings.bing_url
        data = await self._get_json(
            url,
            params={"q": query, "count": count, "textDecorations": "false"},
            headers={"Ocp-Apim-Subscription-Key": key},
        )
        if not isinstance(data, dict):
            raise SearchUnavailable(f"bing at {url} answered with unexpected JSON")
        pages = data.get("webPages") or {}
        items = pages.get("value") if isinstance(pages, dict) else None
        results = [
            WebResult(title=str(i.get("name") or ""), url=str(i.get("url") or ""), snippet=str(i.get("snippet") or ""))
            for i in items or []
            if isinstance(i, dict)
        ]
        return clip(results, count)
