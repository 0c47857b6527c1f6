"""Reranking the top candidates of a search with a model that reads query and passage together.

Two kinds, chosen by ``kb.rerank.kind``:

* ``cross_encoder``: a sentence-transformers ``CrossEncoder`` (a model id or a local folder), loaded
  once per process. Its raw scores become [0, 1] through a logistic function when they are not already.
* ``api``: any service speaking the common rerank wire format, ``POST {url}`` with
  ``{"model", "query", "documents", "top_n"}`` (Jina, Cohere, Xinference, vLLM) answered by
  ``{"results": [{"index", "relevance_score"}]}``, or Text Embeddings Inference's ``{"query", "texts"}``
  answered by ``[{"index", "score"}]``.
* ``chat_model``: the bundled model server's chat model, by query likelihood. Each candidate is shown to it
  short (its title and the two sentences closest to the question), followed by the question, and its score
  is how likely the model finds the question there: the mean log-probability of the question's tokens
  (``POST /kbchat/score``, server/llm/local/scoring.py), lowered by ``rank_prior`` per place the candidate
  stood lower in the first search. On the laws' everyday questions it lifts hit@1 the most of anything
  measured, at about 110 prompt tokens per candidate (benchmarks/query_likelihood.py).

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
from pydantic import SecretStr

from configs.settings import RerankSettings
from server.errors import UpstreamError
from server.knowledge_base.boundaries import has_cjk
from server.knowledge_base.sentences import sentence_spans
from server.llm.local.status import auth_headers

logger = logging.getLogger(__name__)


class RerankError(UpstreamError):
    """The reranker could not score the candidates."""

    code = "rerank_failed"


class Reranker(Protocol):
    # None: the reranker reads each candidate's whole text. A number: its title and this many of its sentences
    # closest to the query (``reading_text``), which the search prepares with its sentence vectors.
    passage_sentences: int | None

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score in [0, 1] per text, in the texts' order."""

    def close(self) -> None:
        """Release connections."""


def _squash(values: Sequence[float]) -> list[float]:
    if all(0.0 <= v <= 1.0 for v in values):
        return [float(v) for v in values]
    return [1.0 / (1.0 + math.exp(-float(v))) for v in values]


def reading_text(text: str, title: str, similarities: Sequence[float] | None, sentences: int) -> str:
    """``title`` and the ``sentences`` sentences of ``text`` closest to the query (by ``similarities``, one per
    sentence of ``sentence_spans``), in text order; the whole text after the title without similarities."""
    spans = sentence_spans(text)
    if similarities is not None and len(similarities) == len(spans):
        best = sorted(sorted(range(len(spans)), key=lambda i: -similarities[i])[:sentences])
        text = ("" if has_cjk(text) else " ").join(text[spans[i][0]:spans[i][1]].strip() for i in best)
    return f"{title} {text}".strip()


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder, loaded on first use."""

    passage_sentences: int | None = None

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

    passage_sentences: int | None = None

    def __init__(self, config: RerankSettings) -> None:
        self.config = config
        self._client = httpx.Client(timeout=config.seconds, headers=auth_headers(config.api_key), trust_env=False)

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


class ChatModelReranker:
    """The bundled model server's chat model, scoring the question's likelihood after each candidate."""

    passage_sentences: int | None = 2
    # The short passage the model reads: about 110 tokens of Chinese.
    passage_chars = 300
    frames = {
        "zh": "资料：{passage}\n\n根据上面的资料，一个人问了这样一个问题：",
        "en": "Passage: {passage}\n\nA question someone asked about this passage:",
    }

    def __init__(self, config: RerankSettings, score_url: str, api_key: SecretStr | None = None) -> None:
        self.config = config
        self.url = config.url or score_url
        self._client = httpx.Client(timeout=config.seconds, headers=auth_headers(config.api_key or api_key),
                                    trust_env=False)

    def prefixes(self, query: str, texts: Sequence[str]) -> list[str]:
        frame = self.frames["zh" if has_cjk(query) else "en"]
        return [frame.format(passage=text[:self.passage_chars]) for text in texts]

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        body = {"prefixes": self.prefixes(query, texts), "continuation": query}
        try:
            response = self._client.post(self.url, json=body)
            response.raise_for_status()
            logprobs = [float(v) for v in response.json()["logprobs"]]
        except httpx.HTTPStatusError as exc:
            raise RerankError(f"chat model at {self.url} answered HTTP {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise RerankError(f"chat model at {self.url} failed: {exc}") from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise RerankError(f"chat model at {self.url} sent an answer of unknown shape") from exc
        if len(logprobs) != len(texts):
            raise RerankError(f"chat model at {self.url} scored {len(logprobs)} of {len(texts)} passages")
        # The geometric mean of the question's token probabilities, discounted per place in the first ranking.
        return [math.exp(min(0.0, lp - self.config.rank_prior * i)) for i, lp in enumerate(logprobs)]

    def close(self) -> None:
        self._client.close()


def make_reranker(config: RerankSettings, score_url: str = "", api_key: SecretStr | None = None) -> Reranker | None:
    """The reranker ``config`` names; ``score_url`` and ``api_key`` reach the bundled model server (chat_model)."""
    if config.kind == "cross_encoder":
        return CrossEncoderReranker(config)
    if config.kind == "api":
        return ApiReranker(config)
    if config.kind == "chat_model":
        return ChatModelReranker(config, score_url, api_key)
    return None
