"""Whether a knowledge base can answer a question at all, judged before any model time is spent.

The judgement is how close the knowledge base comes to the question: the question's cosine with its closest
chunk, by the chunk's own vector or by its closest sentence's (``KnowledgeBaseManager.closest_chunk``), against
the embedding model's ``relevance_floor`` for the question's language. Both kinds of vector count because noisy
text (OCR, transcripts with line numbers) embeds poorly sentence by sentence. The judgement is only made when
that chunk is written in the question's language: the floors were calibrated on Chinese questions over Chinese
documents and English over English, and a question scores lower against text in another language. Measured by
``benchmarks/unsupported.py``.
"""

from __future__ import annotations

from server.knowledge_base.boundaries import mostly_cjk
from server.knowledge_base.schemas import SearchHit


def judged_language(closest: SearchHit, lang: str) -> bool:
    """Whether the closest chunk is in the question's language (``lang``: "zh" or "en"), so a floor applies."""
    return mostly_cjk(closest.text) == (lang == "zh")


def unsupported(closest: SearchHit | None, lang: str, floor: float | None) -> bool:
    """Whether nothing in the knowledge base comes close enough to the question to answer it."""
    return closest is not None and floor is not None and judged_language(closest, lang) and closest.score < floor
