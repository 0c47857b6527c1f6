"""The judgement whether a knowledge base can answer a question (server/chat/relevance.py)."""

from __future__ import annotations

import pytest

from server.chat.relevance import Bounds, declined, in_doubt, unsupported
from server.knowledge_base.bm25 import rare_word_weight
from server.knowledge_base.schemas import SearchHit

BOUNDS = Bounds(floor=0.835, doubt=0.865, keyword_score=0.6)


def hit(score: float, text: str = "Turn the compost heap every two weeks.") -> SearchHit:
    return SearchHit(doc_id="d", text=text, score=score, metadata={}, rank=1)


@pytest.mark.parametrize(("score", "keywords", "expected"), [
    (0.80, 5.0, True),   # below the floor, whatever it shares
    (0.85, 0.2, True),   # doubtfully close and sharing no distinctive word
    (0.85, 1.1, False),  # doubtfully close but naming what the documents name
    (0.85, None, False),  # keywords not looked up: the floor alone decides
    (0.87, 0.0, False),  # above the band, the cosine is enough
])
def test_a_question_in_the_doubt_band_needs_a_distinctive_word(score, keywords, expected):
    assert declined(score, BOUNDS, keywords) is expected
    assert unsupported(hit(score), "en", BOUNDS, keywords) is expected


def test_without_a_band_or_a_floor_only_the_floor_or_nothing_declines():
    assert not declined(0.85, Bounds(floor=0.835), 0.0)
    assert declined(0.80, Bounds(floor=0.835), None)
    assert not declined(0.10, Bounds(floor=None, doubt=0.9), 0.0)


def test_the_band_is_judged_only_for_a_chunk_in_the_questions_language():
    chinese = hit(0.85, "劳动合同期限一年以上不满三年的，试用期不得超过二个月。")
    assert not in_doubt(chinese, "en", BOUNDS) and not unsupported(chinese, "en", BOUNDS, 0.0)
    assert in_doubt(hit(0.85), "en", BOUNDS) and not in_doubt(hit(0.87), "en", BOUNDS)
    assert not in_doubt(None, "en", BOUNDS) and not unsupported(None, "en", BOUNDS, 0.0)


def test_the_keyword_unit_grows_with_the_knowledge_base():
    # A word one chunk in three holds weighs less than one chunk in two thousand holds; none weigh nothing.
    assert rare_word_weight(0) == 0.0
    assert 0.9 < rare_word_weight(3) < 1.0 < rare_word_weight(606) < rare_word_weight(2064) < 7.5
