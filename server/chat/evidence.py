"""Choosing the sentences of retrieved passages that bear on a question.

A small model answers best, and a CPU answers fastest, from a short prompt holding only what
matters. Each passage is cut into sentences; a sentence scores by the question's terms it holds
(BM25 tokens, so Chinese bigrams and English stems alike), each term weighted by how rare it is
among the passages' sentences. Sentences are then taken, best first, within a token budget; a
passage's first sentence gets a small bonus because it names what the passage is about (a law
article's number, a section's opening). Room left then goes to the sentence after each chosen one,
where the answer to a matching sentence often stands. The chosen sentences are what the model reads
and what the user sees highlighted in the sources.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from server.knowledge_base.bm25 import query_tokens, tokenize

# Sentence ends: Chinese full stops, question and exclamation marks, English ones followed by a space,
# and line breaks. Semicolons only end a sentence that is already long (see _split_long).
_SENTENCE_END = re.compile(r"[。！？!?]+[”」』）)]*|\.(?=\s)|\n+")
_CLAUSE_END = re.compile(r"[；;]")
LONG_SENTENCE_CHARS = 220
# Pieces shorter than this (table cells, lines of a form or transcript) join the next piece, so a
# "sentence" carries enough words to be matched and to make sense alone.
SHORT_SENTENCE_CHARS = 40
FIRST_SENTENCE_BONUS = 0.15
GAP = " … "


@dataclass
class Passage:
    """One retrieved passage and the sentences chosen from it, as (start, end) offsets into ``text``."""

    text: str
    rank: int
    spans: list[tuple[int, int]] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)  # indexes into spans, in text order

    @property
    def highlights(self) -> list[tuple[int, int]]:
        return [self.spans[i] for i in self.chosen]

    def excerpt(self) -> str:
        """The chosen sentences in text order; runs of neighbours keep their text, gaps get a mark."""
        runs: list[tuple[int, int]] = []
        for i in self.chosen:
            start, end = self.spans[i]
            if runs and i - 1 in self.chosen:
                runs[-1] = (runs[-1][0], end)
            else:
                runs.append((start, end))
        return GAP.join(self.text[s:e].strip() for s, e in runs)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence of ``text``; overlong ones are cut at semicolons, short
    pieces are joined to the next one."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        pieces.extend(_split_long(text, start, match.end()))
        start = match.end()
    pieces.extend(_split_long(text, start, len(text)))
    spans: list[tuple[int, int]] = []
    for s, e in pieces:
        if not text[s:e].strip():
            continue
        if spans and len(text[spans[-1][0]:spans[-1][1]].strip()) < SHORT_SENTENCE_CHARS:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    if len(spans) > 1 and len(text[spans[-1][0]:spans[-1][1]].strip()) < SHORT_SENTENCE_CHARS:
        spans[-2:] = [(spans[-2][0], spans[-1][1])]  # a short last piece joins the one before
    return spans


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


def choose(
    question: str,
    texts: Sequence[str],
    budget: int,
    count: Callable[[str], int],
) -> list[Passage]:
    """The passages (best first) with the sentences that fit ``budget`` tokens chosen in each.

    Sentences are taken by score; a passage none of whose sentences scores above zero keeps its
    first sentence when room remains, so every passage still says what it is. A budget of 0 or less
    chooses every sentence (whole passages).
    """
    passages = [Passage(text=t, rank=r, spans=sentence_spans(t)) for r, t in enumerate(texts)]
    if budget <= 0:
        for p in passages:
            p.chosen = list(range(len(p.spans)))
        return passages
    query = set(query_tokens(question))
    sentence_tokens = [[set(tokenize(p.text[s:e])) for s, e in p.spans] for p in passages]
    df: Counter[str] = Counter()
    for per_passage in sentence_tokens:
        for tokens in per_passage:
            df.update(tokens & query)
    n = sum(len(x) for x in sentence_tokens) or 1
    idf = {t: math.log(1 + n / df[t]) for t in df}
    candidates: list[tuple[float, int, int]] = []
    for p, per_passage in zip(passages, sentence_tokens):
        for i, tokens in enumerate(per_passage):
            score = sum(idf.get(t, 0.0) for t in tokens & query)
            if score <= 0:
                continue
            # Better-ranked passages win ties; a passage's opening sentence names its subject.
            score *= 1.0 - 0.1 * p.rank
            if i == 0:
                score += FIRST_SENTENCE_BONUS * score
            candidates.append((score, p.rank, i))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used = 0
    for _, rank, i in candidates:
        p = passages[rank]
        s, e = p.spans[i]
        cost = count(p.text[s:e])
        if used + cost > budget and (used or cost > budget * 2):
            continue
        p.chosen.append(i)
        used += cost
    # The sentence after a matching one often holds the answer ("... is represented by:" then the name).
    for _, rank, i in candidates:
        p = passages[rank]
        if i not in p.chosen or i + 1 >= len(p.spans) or i + 1 in p.chosen:
            continue
        s, e = p.spans[i + 1]
        cost = count(p.text[s:e])
        if used + cost <= budget:
            p.chosen.append(i + 1)
            used += cost
    for p in passages:
        if not p.chosen and p.spans:
            s, e = p.spans[0]
            cost = count(p.text[s:e])
            if used + cost <= budget:
                p.chosen.append(0)
                used += cost
        p.chosen.sort()
    return passages
