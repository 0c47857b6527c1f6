"""Names in an answer that its passages do not hold.

Asked where a club plays its home games, over a file that never names its ground, a small model names a
ground of its own and cites a passage for it. Like a figure (figures.py), a name is cheap to check: every run
of capitalised words in the answer ("Carrow Road", "Federal Aviation Administration") is looked up word by
word in the passages the user sees and in the question; a run with a word found in neither is named after the
answer (``chat.check_figures``). Words are compared without case, so a name the passages write in lower case
or in another order still counts as held. A sentence's first word is part of a name only when more capitalised
words follow it and the passages and the question never use it in lower case ("Carrow Road is ..." yes, "Their
club ..." and "Streamed from ..." no).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from server.knowledge_base.bm25 import word_parts

_CITATION = re.compile(r"\[\d+\]")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['’][A-Za-z]+)?")
_WORD = re.compile(r"[A-Za-z0-9]+")
_LOWER_CASE_WORD = re.compile(r"(?<![A-Za-z])[a-z][a-z0-9]*")
# Lower-case words that may join the capitalised words of one name.
_JOINERS = frozenset({"of", "the", "and", "de", "for", "upon", "on"})
# Characters after which a word begins a sentence (or a list item, or a quotation).
_SENTENCE_END = frozenset(".!?:;\n\"“(。！？：；")
# Capitalised at a sentence's start, never names; held in case a short passage lacks them in lower case.
_COMMON = frozenset(
    "a an the this that these those it its he she they we you i their his her our your according based yes no "
    "in on at by for from to as if when while since after before so but and or therefore thus also both each "
    "every some many most there here what which who where how why however not all none one two".split())


def _words(text: str) -> set[str]:
    """The lower-case words of ``text`` and the parts of those run together ("SpearmanCorrelationCoefficient" in a
    CSV header), and each without a plural or possessive s, and without the digits of a footnote or affiliation
    mark a PDF runs into a word ("Shen1" under a paper's title)."""
    written = _WORD.findall(re.sub(r"['’][sS]\b", "", text))
    words = {w.lower() for word in written for w in (word, *word_parts(word))}
    words |= {w.rstrip("0123456789") for w in words if w[0].isalpha()}
    return words | {w[:-1] for w in words if len(w) > 3 and w.endswith("s")}


def _runs(answer: str) -> list[list[tuple[str, bool]]]:
    """The answer's runs of capitalised words (joiners between them kept), each word with whether it begins a
    sentence."""
    text = _CITATION.sub("", answer)
    runs: list[list[tuple[str, bool]]] = []
    current: list[tuple[str, bool]] = []
    pending: list[tuple[str, bool]] = []  # joiners waiting for the next capitalised word
    end = 0
    for match in _TOKEN.finditer(text):
        word = match.group()
        gap = text[end:match.start()].rstrip()  # what stands between this word and the previous one
        starts = gap[-1] in _SENTENCE_END if gap else end == 0
        adjacent = not gap.strip()
        end = match.end()
        if word[0].isupper():
            if current and adjacent and not starts:
                current.extend(pending)
            elif current:
                runs.append(current)
                current = []
            current.append((word, starts))
            pending = []
        elif current and adjacent and word in _JOINERS and not pending:
            pending = [(word, False)]
        else:
            if current:
                runs.append(current)
            current, pending = [], []
    if current:
        runs.append(current)
    return runs


def unsupported_names(answer: str, grounds: Iterable[str]) -> list[str]:
    """The names the answer states that none of ``grounds`` (the passages shown, the question) holds, in the
    answer's spelling and order, each once."""
    grounds = list(grounds)
    held = set().union(*(_words(g) for g in grounds)) if grounds else set()
    lower = set().union(*(set(_LOWER_CASE_WORD.findall(g)) for g in grounds)) if grounds else set()
    missing: list[str] = []
    for run in _runs(answer):
        word, starts = run[0]
        if starts and (len(run) == 1 or word.lower() in _COMMON or word.lower() in lower):
            # A sentence's first word alone is taken for an ordinary word ("Streamed from ...").
            run = run[1:]
        while run and run[0][0] in _JOINERS:
            run = run[1:]
        while run and run[-1][0] in _JOINERS:
            run = run[:-1]
        words = [w for w, _ in run if len(w) > 1 and w.lower() not in _JOINERS]
        if not words or all(_words(w) & held for w in words):
            continue
        name = " ".join(w for w, _ in run)
        if name not in missing:
            missing.append(name)
    return missing
