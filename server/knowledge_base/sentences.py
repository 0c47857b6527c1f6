"""Cutting a chunk into sentences: the unit that evidence is chosen in and that sentence vectors embed.

A sentence ends at a Chinese or English full stop, question or exclamation mark, or a line break.
An overlong sentence (a law article's list, a run-on line) is cut at semicolons; pieces too short to
mean anything alone (table cells, lines of a form) join the next piece.
"""

from __future__ import annotations

import re

# Sentence ends: Chinese full stops, question and exclamation marks, English ones followed by a space,
# and line breaks. Semicolons only end a sentence that is already long (see _split_long).
SENTENCE_END = re.compile(r"[。！？!?]+[”」』）)]*|\.(?=\s)|\n+")
_CLAUSE_END = re.compile(r"[；;]")
LONG_SENTENCE_CHARS = 220
# Pieces shorter than this (table cells, lines of a form or transcript) join the next piece, so a
# "sentence" carries enough words to be matched and to make sense alone.
SHORT_SENTENCE_CHARS = 40
# A numbered list item's marker: "(1)", "（2）", or "3.", "4、", "5)" (not the start of a decimal such as "3.5").
BRACKETED_NUMBER = r"[(（]\d{1,2}[)）]"
NUMBER_AND_STOP = r"\d{1,2}[.、)）](?!\d)"
NUMBERED_MARKER = f"{BRACKETED_NUMBER}|{NUMBER_AND_STOP}"
# A table row as the loaders write it: one line holding "header: value".
_ROW = re.compile(r"[^\n]*\S: \S[^\n]*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence of ``text``; overlong ones are cut at semicolons, short
    pieces are joined to the next one."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for match in SENTENCE_END.finditer(text):
        pieces.extend(_split_long(text, start, match.end()))
        start = match.end()
    pieces.extend(_split_long(text, start, len(text)))
    spans: list[tuple[int, int]] = []
    for s, e in pieces:
        if not text[s:e].strip():
            continue
        if spans and _joins(text, spans[-1], (s, e), spans[-1]):
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    if len(spans) > 1 and _joins(text, spans[-2], spans[-1], spans[-1]):
        spans[-2:] = [(spans[-2][0], spans[-1][1])]  # a short last piece joins the one before
    return spans


def _joins(text: str, before: tuple[int, int], after: tuple[int, int], short: tuple[int, int]) -> bool:
    """Whether two neighbouring pieces make one sentence: when ``short`` (one of them) is too short to stand alone,
    unless both are rows of a table (a 'header: value' line each, a paragraph apart), which always stand alone."""
    if len(text[short[0]:short[1]].strip()) >= SHORT_SENTENCE_CHARS:
        return False
    first = text[before[0]:after[0]]
    gap = first[len(first.rstrip()):]
    second = text[after[0]:after[1]].strip()
    return not (gap.count("\n") >= 2 and _ROW.fullmatch(first.strip()) and _ROW.fullmatch(second))


def _split_long(text: str, start: int, end: int) -> list[tuple[int, int]]:
    if end - start <= LONG_SENTENCE_CHARS:
        return [(start, end)]
    out, cut = [], start
    for match in _CLAUSE_END.finditer(text, start, end):
        if match.end() - cut >= LONG_SENTENCE_CHARS // 3:
            out.append((cut, match.end()))
            cut = match.end()
    out.append((cut, end))
    return out


def sentences(text: str) -> list[str]:
    """The stripped text of each sentence of ``text`` (see ``sentence_spans``)."""
    return [text[start:end].strip() for start, end in sentence_spans(text)]
