"""Whether a knowledge base can answer a question at all, judged before any model time is spent.

The judgement is how close the knowledge base comes to the question: the question's cosine with its closest
chunk, by the chunk's own vector or by its closest sentence's (``KnowledgeBaseManager.closest_chunk``), against
the embedding model's ``relevance_floor`` for the question's language. Both kinds of vector count because noisy
text (OCR, transcripts with line numbers) embeds poorly sentence by sentence. The judgement is only made when
that chunk is written in the question's language: the floors were calibrated on Chinese questions over Chinese
documents and English over English, and a question scores lower against text in another language.

Questions the documents do not answer mostly sit just above the floor, among a few answerable ones. Up to the
model's ``relevance_doubt`` a question must therefore also share a distinctive word with the knowledge base: its
keyword score (its best BM25 score, in units of the weight of a word only one chunk holds) must reach
``kb.relevance_keyword_score``. "How many people live in Norwich?" over documents that mention Norwich only in
passing, or a banana-bread recipe over aviation manuals, share few distinctive words with them; an answerable
question nearly always names something the documents name. The Chinese band is narrow: everyday Chinese questions
seldom use the laws' words, so a low keyword score says less there. Measured by ``benchmarks/unsupported.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.knowledge_base.boundaries import mostly_cjk
from server.knowledge_base.schemas import SearchHit


@dataclass(frozen=True)
class Bounds:
    """What a question's closeness is judged against: the cosine floor, the doubt band's top (None: no band)
    and the keyword score a question in the band must reach."""

    floor: float | None
    doubt: float | None = None
    keyword_score: float = 0.0


def judged_language(closest: SearchHit, lang: str) -> bool:
    """Whether the closest chunk is in the question's language (``lang``: "zh" or "en"), so a floor applies."""
    return mostly_cjk(closest.text) == (lang == "zh")


def in_doubt(closest: SearchHit | None, lang: str, bounds: Bounds) -> bool:
    """Whether the closest chunk, in the question's language, is above the floor but within the doubt band, so
    the question's keywords decide."""
    return (closest is not None and judged_language(closest, lang) and bounds.floor is not None
            and bounds.doubt is not None and bounds.floor <= closest.score < bounds.doubt)


def declined(score: float, bounds: Bounds, keyword_score: float | None = None) -> bool:
    """Whether a question whose closest chunk scores ``score`` is taken as one the knowledge base does not
    answer: below the floor, or within the doubt band while its ``keyword_score`` (``KnowledgeBaseManager.
    keyword_score``; None: not looked up) is under ``bounds.keyword_score``."""
    if bounds.floor is None:
        return False
    if score < bounds.floor:
        return True
    return (bounds.doubt is not None and keyword_score is not None and score < bounds.doubt
            and keyword_score < bounds.keyword_score)


def unsupported(closest: SearchHit | None, lang: str, bounds: Bounds, keyword_score: float | None = None) -> bool:
    """Whether nothing in the knowledge base comes close enough to the question to answer it (``declined``,
    judged only when the closest chunk is in the question's language)."""
    return closest is not None and judged_language(closest, lang) and declined(closest.score, bounds, keyword_score)
