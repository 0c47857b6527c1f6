"""DuckDuckGo: through the ddgs library, or straight from an HTML endpoint when one is configured.

``settings.chat.search.duckduckgo_url`` points at an endpoint speaking DuckDuckGo's HTML
results format (``https://html.duckduckgo.com/html/``, or a local stand-in); it may also
answer JSON in ddgs' shape (``title``/``href``/``body``).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlparse

import anyio
from bs4 import BeautifulSoup

from server.chat.search_engines.base import SearchEngine, SearchUnavailable, WebResult, clip


def _real_url(href: str, base: str) -> str:
    """DuckDuckGo wraps result links as /l/?uddg=<target>; unwrap them."""
    url = urljoin(base, href)
    parsed = urlparse(url)
    if parsed.path.rstrip("/").endswith("/l"):
        target = parse_qs(parsed.query).get("uddg")
        if target:
            return target[0]
    return url


def parse_html(html: str, base: str) -> list[WebResult]:
    """Results of a DuckDuckGo HTML page (``a.result__a`` links with ``.result__snippet`` text)."""
    soup = BeautifulSoup(html, "html.parser")
    results = []
    for link in soup.select("a.result__a"):
        container = link.find_parent(class_="result") or link.parent
        snippet = container.select_one(".result__snippet") if container else None
        results.append(
            WebResult(
                title=link.get_text(" ", strip=True),
                url=_real_url(str(link.get("href") or ""), base),
                snippet=snippet.get_text(" ", strip=True) if snippet else "",
            )
        )
    return results


def parse_items(items: object) -> list[WebResult]:
    """Results in ddgs' dict shape: title, href (or url), body (or snippet)."""
    if isinstance(items, dict):
        items = items.get("results")
    if not isinstance(items, list):
        raise SearchUnavailable("duckduckgo answered with unexpected JSON")
    return [
        WebResult(
            title=str(i.get("title") or ""),
            url=str(i.get("href") or i.get("url") or ""),
            snippet=str(i.get("body") or i.get("snippet") or ""),
        )
        for i in items
        if isinstance(i, dict)
    ]


class DuckDuckGoEngine(SearchEngine):
    """DuckDuckGo web search, no API key needed."""

    name = "duckduckgo"

    async def search(self, query: str, count: int) -> list[WebResult]:
        if self.settings.duckduckgo_url:
            return clip(await self._search_endpoint(self.settings.duckduckgo_url, query), count)
        return clip(await self._search_ddgs(query, count), count)

    async def _search_endpoint(self, url: str, query: str) -> list[WebResult]:
        response = await self._get(url, params={"q": query})
        if "json" in response.headers.get("content-type", ""):
            try:
                return parse_items(response.json())
            except ValueError as exc:
                raise SearchUnavailable(f"duckduckgo at {url} sent malformed JSON") from exc
        return parse_html(response.text, str(response.url))

    async def _search_ddgs(self, query: str, count: int) -> list[WebResult]:
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException

        def call() -> list[dict]:
            return DDGS(timeout=max(1, int(self.timeout))).text(query, max_results=count)

        try:
            # ddgs may try several backends in turn; the overall wait is bounded here too.
            with anyio.fail_after(self.timeout + 1):
                items = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except TimeoutError as exc:
            raise SearchUnavailable(
                f"duckduckgo did not answer within {self.timeout:g}s: is this machine online?"
            ) from exc
        except DDGSException as exc:
            message = str(exc)
            if "No results" in message:
                return []
            raise SearchUnavailable(f"duckduckgo search failed (is this machine online?): {message[:300]}") from exc
        return parse_items(items or [])
