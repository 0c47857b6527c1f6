"""Offline token-count estimate used for budgeting prompts where the model's own tokenizer is out of reach.

It errs high on what tokenizers split finely, so a long pasted string cannot slip past history trimming
or the "question too long" check: CJK characters and digits count one each (Qwen and Llama tokenizers
split numbers into digits), ordinary words about 1.3, and an unbroken run longer than a word (a hash, a
URL, base64) one per two characters.
"""

from __future__ import annotations

import math
import re

# CJK ideographs, kana, hangul and full-width punctuation: roughly one token each.
_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"[^\W\d]+|[^\w\s]", re.UNICODE)
LONGEST_WORD = 12


def approx_token_count(text: str) -> int:
    """CJK characters and digits one each, words of up to 12 letters 1.3, longer runs one per 2 characters."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text)
    digits = len(_DIGIT.findall(rest))
    words = _WORD.findall(rest)
    short = sum(1 for w in words if len(w) <= LONGEST_WORD)
    long_runs = sum(math.ceil(len(w) / 2) for w in words if len(w) > LONGEST_WORD)
    return cjk + digits + long_runs + math.ceil(short * 1.3)
