"""Whether the passages found for a question can answer it at all, judged before any model time is spent.

The judgement is how close the closest text of the knowledge base comes to the question: the question's cosine
with the closest sentence of the passages found (their sentence vectors) or with the nearest chunk of the whole
knowledge base (its chunk vector), whichever is higher, against the embedding model's ``relevance_floor`` for
the question's language. The chunk vector keeps noisy text (OCR, transcripts with line numbers), whose
sentences embed poorly, from being judged too far. The judgement is only made when that closest text is
written in the question's language: the floors were calibrated on Chinese questions over Chinese documents and
English over English, and a question scores lower against passages in another language. Measured by
``benchmarks/unsupported.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.knowledge_base.boundaries import mostly_cjk
from server.knowledge_base.schemas import SearchHit


def closest_text(hits: Sequence[SearchHit], similarities: Sequence[list[float] | None] | None,
                 nearest: SearchHit | None = None) -> tuple[float, SearchHit] | None:
    """The question's cosine with the closest sentence of the hits (``similarities``, from
    ``KnowledgeBaseManager.sentence_similarities``) or with the ``nearest`` chunk (a vector search hit, whose
    score is its cosine), whichever is closer, and the hit it belongs to; None when there is neither."""
    scored = [(max(s), hit) for s, hit in zip(similarities or [], hits) if s]
    if nearest is not None:
        scored.append((nearest.score, nearest))
    return max(scored, key=lambda pair: pair[0]) if scored else None


def judged_language(closest: tuple[float, SearchHit], lang: str) -> bool:
    """Whether the closest passage is in the question's language (``lang``: "zh" or "en"), so a floor applies."""
    return mostly_cjk(closest[1].text) == (lang == "zh")


def unsupported(closest: tuple[float, SearchHit] | None, lang: str, floor: float | None) -> bool:
    """Whether no passage comes close enough to the question to answer it."""
    return closest is not None and floor is not None and judged_language(closest, lang) and closest[0] < floor
