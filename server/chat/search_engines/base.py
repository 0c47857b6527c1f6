"""The web search interface: every engine returns ``WebResult``s and fails with ``SearchUnavailable``."""

from __future__ import annotations

from abc import ABC, abstractmethod

import httpx
from pydantic import BaseModel

from configs.settings import SearchSettings
from server.errors import UpstreamError


class WebResult(BaseModel):
    """One web search hit."""

    title: str
    url: str
    snippet: str = ""


class SearchUnavailable(UpstreamError):
    """A search engine could not be reached, refused the query or is not configured."""

    code = "search_unavailable"


class SearchEngine(ABC):
    """A web search engine queried with a timeout from settings."""

    name: str = ""

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings
        self.timeout = settings.timeout

    @abstractmethod
    async def search(self, query: str, count: int) -> list[WebResult]:
        """Up to ``count`` results for ``query``; failures raise SearchUnavailable."""

    async def _get_json(self, url: str, *, params: dict, headers: dict | None = None) -> object:
        """GET ``url`` and decode JSON, turning every network or format failure into SearchUnavailable."""
        response = await self._get(url, params=params, headers=headers)
        try:
            return response.json()
        except ValueError as exc:
            raise SearchUnavailable(f"{self.name} at {url} did not answer with JSON") from exc

    async def _get(self, url: str, *, params: dict, headers: dict | None = None) -> httpx.Response:
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client:
                response = await client.get(url, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise SearchUnavailable(f"{self.name} at {url} did not answer within {self.timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise SearchUnavailable(f"cannot reach {self.name} at {url}: {exc or type(exc).__name__}") from exc
        if response.status_code >= 400:
            detail = response.text[:200].strip()
            raise SearchUnavailable(f"{self.name} at {url} answered HTTP {response.status_code}: {detail}")
        return response


def clip(results: list[WebResult], count: int) -> list[WebResult]:
    """Drop results without a URL and duplicates, keep at most ``count``."""
    seen: set[str] = set()
    out = []
    for result in results:
        if result.url and result.url not in seen:
            seen.add(result.url)
            out.append(result)
        if len(out) >= count:
            break
    return out
