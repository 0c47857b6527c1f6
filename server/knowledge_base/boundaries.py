"""Where Chinese and English text may be cut: paragraph, sentence, line, clause and word boundaries.

Every function returns the positions where a new piece starts (whitespace after a boundary is
skipped), within text[start:end].
"""

from __future__ import annotations

import re

_PARAGRAPH = re.compile(r"\n[ \t\u3000]*\n\s*")
_LINE = re.compile(r"\n\s*")
_CLOSERS = "”’\"'」』）)】》〉]"
# Chinese terminators end a sentence wherever they are; ASCII ones only before whitespace.
_SENTENCE = re.compile(rf"(?:[。！？]+|…{{2,}})[{re.escape(_CLOSERS)}]*\s*|[.!?…]+[{re.escape(_CLOSERS)}]*(?:\s+|$)")
_CLAUSE = re.compile(r"[；，：、]\s*|[;,:](?:\s+|$)")
_WORD = re.compile(r"\s+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc no nos vol fig figs eq al inc ltd co corp dept est approx "
    "jan feb mar apr jun jul aug sep sept oct nov dec mt ft gen gov sen rep rev op pp ch art sec".split()
)
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z]")


def _starts(pattern: re.Pattern[str], text: str, start: int, end: int) -> list[int]:
    return [m.end() for m in pattern.finditer(text, start, end) if start < m.end() < end]


def paragraph_starts(text: str, start: int, end: int) -> list[int]:
    """Starts of paragraphs after the first (paragraphs are separated by blank lines)."""
    return _starts(_PARAGRAPH, text, start, end)


def line_starts(text: str, start: int, end: int) -> list[int]:
    """Starts of lines after the first."""
    return _starts(_LINE, text, start, end)


def sentence_starts(text: str, start: int, end: int) -> list[int]:
    """Starts of sentences after the first; '3.14', 'Mr. Smith', 'e.g. this' and 'U.S. law' are not cut."""
    result = []
    for match in _SENTENCE.finditer(text, start, end):
        pos = match.end()
        if not start < pos < end:
            continue
        token = match.group()
        if token.startswith(".") and not token.startswith("..") and not _ends_sentence(text, match.start(), pos):
            continue
        result.append(pos)
    return result


def _ends_sentence(text: str, dot: int, next_start: int) -> bool:
    """Whether the period at text[dot] ends a sentence (not an abbreviation or an initial)."""
    if next_start < len(text) and text[next_start].islower():
        return False
    word = _WORD_BEFORE.search(text, max(0, dot - 20), dot)
    if word is None:
        return True
    token = word.group(1)
    return not (len(token) == 1 or "." in token or token.lower() in _ABBREVIATIONS)


def clause_starts(text: str, start: int, end: int) -> list[int]:
    """Starts of clauses after the first: after ；，：、 and after ASCII ;,: followed by a space."""
    return _starts(_CLAUSE, text, start, end)


def word_starts(text: str, start: int, end: int) -> list[int]:
    """Starts of whitespace-separated words after the first."""
    return _starts(_WORD, text, start, end)


def has_cjk(text: str) -> bool:
    """Whether the text holds Chinese, Japanese or Korean characters (cut anywhere when needed)."""
    return _CJK.search(text) is not None


def mostly_cjk(text: str) -> bool:
    """Whether a text is written in Chinese, Japanese or Korean rather than a Latin script: it has at least one
    such character for every three Latin letters."""
    cjk = len(_CJK.findall(text))
    return cjk > 0 and 3 * cjk >= len(_LATIN.findall(text))


def pieces(text: str, starts: list[int], start: int, end: int) -> list[tuple[int, int]]:
    """Spans between consecutive piece starts, whitespace trimmed, empty ones dropped."""
    bounds = [start, *starts, end]
    spans = (trim(text, a, b) for a, b in zip(bounds, bounds[1:]))
    return [span for span in spans if span is not None]


def trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span without surrounding whitespace, or None when it holds only whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None

