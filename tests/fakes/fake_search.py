"""Real local HTTP servers standing in for web search engines, speaking their wire formats.

One ``FakeSearch`` serves, on a free port of 127.0.0.1:

- ``GET /search?q=..&format=json``: SearXNG's JSON API (``results[].title/url/content``);
- ``GET /html/?q=..``: DuckDuckGo's HTML results page (``a.result__a`` links wrapped as
  ``//duckduckgo.com/l/?uddg=<url>``, ``.result__snippet``);
- ``GET /v7.0/search?q=..&count=..``: Bing Web Search (``webPages.value[].name/url/snippet``),
  answering 401 unless the ``Ocp-Apim-Subscription-Key`` header matches ``bing_key``.
"""

from __future__ import annotations

import asyncio
import html
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from tests.fakes.loopback import LoopbackServer


@dataclass
class FakeResult:
    title: str
    url: str
    snippet: str


DEFAULT_RESULTS = [
    FakeResult("Compost basics", "https://garden.example/compost", "Turn a compost heap every two weeks."),
    FakeResult("Tomato care", "https://garden.example/tomatoes", "Water tomatoes deeply twice a week."),
    FakeResult("Soil pH", "https://soil.example/ph", "Most vegetables like a pH between 6 and 7."),
]


class FakeSearch(LoopbackServer):
    """Context manager running the fake engines in a background thread."""

    bing_key = "test-bing-key"

    def __init__(self, results: list[FakeResult] | None = None) -> None:
        self.results = list(DEFAULT_RESULTS if results is None else results)
        self.requests: list[dict[str, Any]] = []  # {"path", "query", "headers"} per request
        self.fail_status: int | None = None  # answer every request with this status when set
        self.delay = 0.0  # seconds each request waits before answering
        super().__init__()

    @property
    def searxng_url(self) -> str:
        return self.url

    @property
    def duckduckgo_url(self) -> str:
        return f"{self.url}/html/"

    @property
    def bing_url(self) -> str:
        return f"{self.url}/v7.0/search"

    def _matching(self, query: str) -> list[FakeResult]:
        # Every result is returned for any query except the one that asks for nothing.
        return [] if query == "nothing at all" else self.results

    async def _app(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        self.requests.append({"path": path, "query": query, "headers": headers})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_status is not None:
            await self._send(send, self.fail_status, b"engine is down", "text/plain")
            return
        found = self._matching(query.get("q", ""))
        if path == "/search":
            if query.get("format") != "json":
                await self._send(send, 403, b"format not allowed", "text/plain")
                return
            body = {"query": query.get("q"), "results": [
                {"title": r.title, "url": r.url, "content": r.snippet, "engine": "fake"} for r in found
            ]}
            await self._send(send, 200, json.dumps(body).encode(), "application/json")
        elif path.rstrip("/") == "/html":
            await self._send(send, 200, self._ddg_html(found).encode(), "text/html; charset=utf-8")
        elif path == "/v7.0/search":
            if headers.get("ocp-apim-subscription-key") != self.bing_key:
                error = {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}}
                await self._send(send, 401, json.dumps(error).encode(), "application/json")
                return
            count = int(query.get("count", "10"))
            values = [{"name": r.title, "url": r.url, "snippet": r.snippet} for r in found[:count]]
            body = {"_type": "SearchResponse", "webPages": {"value": values}} if values else {"_type": "SearchResponse"}
            await self._send(send, 200, json.dumps(body).encode(), "application/json")
        else:
            await self._send(send, 404, b"not found", "text/plain")

    @staticmethod
    def _ddg_html(found: list[FakeResult]) -> str:
        blocks = []
        for r in found:
            href = "//duckduckgo.com/l/?uddg=" + quote(r.url, safe="") + "&rut=abc"
            blocks.append(
                '<div class="result results_links web-result"><div class="links_main result__body">'
                f'<h2 class="result__title"><a rel="nofollow" class="result__a" href="{html.escape(href)}">'
                f"{html.escape(r.title)}</a></h2>"
                f'<a class="result__snippet" href="{html.escape(href)}">{html.escape(r.snippet)}</a>'
                "</div></div>"
            )
        if not blocks:
            blocks.append('<div class="no-results">No results.</div>')
        return f"<html><body><div id=\"links\">{''.join(blocks)}</div></body></html>"
