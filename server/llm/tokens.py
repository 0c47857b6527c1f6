"""Offline token-count approximation used for budgeting prompts."""

from __future__ import annotations

import math
import re

# CJK ideographs, kana, hangul and full-width punctuation: roughly one token each.
_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def approx_token_count(text: str) -> int:
    """CJK characters count one each; other words and symbols about 1.3 tokens each."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text)
    words = len(_WORD.findall(rest))
    return cjk + math.ceil(words * 1.3)
