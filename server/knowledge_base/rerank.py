"""Reranking the top candidates of a search with a model that reads query and passage together.

Two kinds, chosen by ``kb.rerank.kind``:

* ``cross_encoder``: a sentence-transformers ``CrossEncoder`` (a model id or a local folder), loaded
  once per process. Its raw scores become [0, 1] through a logistic function when they are not already.
* ``api``: any service speaking the common rerank wire format, ``POST {url}`` with
  ``{"model", "query", "documents", "top_n"}`` (Jina, Cohere, Xinference, vLLM) answered by
  ``{"results": [{"index", "relevance_score"}]}``, or Text Embeddings Inference's ``{"query", "texts"}``
  answered by ``[{"index", "score"}]``.

A reranker that fails (unreachable, timeout, bad answer) raises ``RerankError``: the search then keeps
its first ranking and logs why, because a worse order beats no answer.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from configs.settings import RerankSettings
from server.errors import UpstreamError

logger = logging.getLogger(__name__)


class RerankError(UpstreamError):
    """The reranker could not score the candidates."""

    code = "rerank_failed"


class Reranker(Protocol):
    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score in [0, 1] per text, in the texts' order."""

    def close(self) -> None:
        """Release connections."""


def _squash(values: Sequence[float]) -> list[float]:
    if all(0.0 <= v <= 1.0 for v in values):
        return [float(v) for v in values]
    return [1.0 / (1.0 + math.exp(-float(v))) for v in values]


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder, loaded on first use."""

    def __init__(self, config: RerankSettings) -> None:
        self.config = config
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                logger.info("loading reranker %s", self.config.model)
                try:
                    self._model = CrossEncoder(self.config.model, device="cpu")
                except Exception as exc:  # noqa: BLE001 - any loading failure means the same to the user
                    raise RerankError(f"cannot load reranker {self.config.model!r}: {exc}") from exc
            return self._model

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        model = self._load()
        raw = model.predict([(query, t) for t in texts], batch_size=self.config.batch_size, show_progress_bar=False)
        return _squash([float(v) for v in raw])

    def close(self) -> None:
        self._model = None


class ApiReranker:
    """A rerank service over HTTP (Jina/Cohere or TEI wire format)."""

    def __init__(self, config: RerankSettings) -> None:
        self.config = config
        key = config.api_key.get_secret_value() if config.api_key else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=config.timeout, headers=headers, trust_env=False)

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        body: dict[str, Any] = {"model": self.config.model, "query": query, "documents": list(texts),
                                "top_n": len(texts), "texts": list(texts)}
        try:
            response = self._client.post(self.config.url, json=body)
            response.raise_for_status()
            data = response.json()
        except httpx.HTTPStatusError as exc:
            raise RerankError(f"reranker at {self.config.url} answered HTTP {exc.response.status_code}") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise RerankError(f"reranker at {self.config.url} failed: {exc}") from exc
        results = data.get("results") if isinstance(data, dict) else data
        if not isinstance(results, list):
            raise RerankError(f"reranker at {self.config.url} sent an answer of unknown shape")
        out: list[float | None] = [None] * len(texts)
        try:
            for item in results:
                value = item.get("relevance_score", item.get("score"))
                out[int(item["index"])] = float(value)
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            raise RerankError(f"reranker at {self.config.url} sent an answer of unknown shape") from exc
        if any(v is None for v in out):
            raise RerankError(f"reranker at {self.config.url} scored {sum(v is not None for v in out)} of "
                              f"{len(texts)} passages")
        return _squash([v for v in out if v is not None])

    def close(self) -> None:
        self._client.close()


def make_reranker(config: RerankSettings) -> Reranker | None:
    if config.kind == "cross_encoder":
        return CrossEncoderReranker(config)
    if config.kind == "api":
        return ApiReranker(config)
    return None
