"""A real local rerank service speaking the common wire formats (Jina/Cohere and Text Embeddings Inference).

``POST /v1/rerank`` with ``{"model", "query", "documents", "top_n"}`` answers
``{"results": [{"index", "relevance_score", "document"}], "usage"}``, best first, top_n of them;
``POST /rerank`` with ``{"query", "texts"}`` answers TEI's ``[{"index", "score"}]``. A passage scores by
the share of the query's words it holds, so tests can predict the order.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from tests.fakes.loopback import LoopbackServer, read_body

_WORD = re.compile(r"\w+")


def overlap(query: str, text: str) -> float:
    words = set(_WORD.findall(query.lower()))
    return len(words & set(_WORD.findall(text.lower()))) / max(1, len(words))


class FakeRerank(LoopbackServer):
    """Context manager running the fake rerank service; ``requests`` keeps each JSON body received."""

    api_key = "test-rerank-key"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.fail_status: int | None = None
        self.delay = 0.0  # seconds before each answer, as a slow reranker takes

    async def _app(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = json.loads(raw or b"{}")
        self.requests.append(body)
        await asyncio.sleep(self.delay)
        if self.fail_status is not None:
            await self._send(send, self.fail_status, b'{"error": "down"}', "application/json")
            return
        if headers.get("authorization") != f"Bearer {self.api_key}":
            await self._send(send, 401, b'{"error": "invalid api key"}', "application/json")
            return
        if scope["path"] == "/v1/rerank":
            docs = body["documents"]
            ranked = sorted(range(len(docs)), key=lambda i: -overlap(body["query"], docs[i]))
            results = [{"index": i, "relevance_score": overlap(body["query"], docs[i]), "document": {"text": docs[i]}}
                       for i in ranked[: body.get("top_n") or len(docs)]]
            answer: Any = {"model": body.get("model"), "results": results, "usage": {"total_tokens": 1}}
        elif scope["path"] == "/rerank":
            texts = body["texts"]
            answer = sorted(({"index": i, "score": overlap(body["query"], t)} for i, t in enumerate(texts)),
                            key=lambda r: -r["score"])
        else:
            await self._send(send, 404, b"not found", "text/plain")
            return
        await self._send(send, 200, json.dumps(answer).encode(), "application/json")
