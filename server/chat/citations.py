"""Figures an answer cites from the wrong passage.

The 1.5B model begins most answers "According to [1]", the first passage, and may then state a figure that
only another passage holds: "Iwan Roberts is 6 ft 3 in (1.91 m) tall" under [1], the article's opening, when
the height is in the infobox shown as [2]. Each sentence of the answer is read with the passages it cites (a
sentence citing none goes with those cited last, as 「因此，……」 after a quoted clause does); a figure of it that
neither they nor the question hold, but another passage shown does, is named with that passage, so the reader
is sent to the evidence that holds it (``chat.check_figures``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import NamedTuple

from server.chat.figures import Figure, KnownFigures, unsupported
from server.knowledge_base.sentences import SENTENCE_END

_CITED = re.compile(r"\[(\d+)\]")
# What the lead keeps when its own words are left out: its citations, as one sentence, so the conclusion the model
# begins after two quoted clauses goes with both.
_LEAD_KEPT = re.compile(r"\[\d*\]?|(.)", re.S)
# Bare whole numbers below this are too common (one, a list's second) to say which passage holds them.
_SMALLEST_BARE = Decimal(10)


class Misattributed(NamedTuple):
    """A figure of the answer (as spelled there), a passage that holds it, and the passages cited for it."""

    figure: str
    found: int
    cited: tuple[int, ...]


def _own_words(answer: str, lead: str) -> str:
    """``answer`` with the lead kbchat began it with blanked but for its citations: the lead's figures (the
    clauses it quotes, the articles it names) are their passages' own."""
    if not lead or not answer.startswith(lead):
        return answer
    return _LEAD_KEPT.sub(lambda m: " " if m.group(1) else m.group(), lead) + answer[len(lead):]


def _worth_placing(figure: Figure) -> bool:
    return bool(figure.unit) or figure.value >= _SMALLEST_BARE or figure.value != figure.value.to_integral_value()


def cited_elsewhere(answer: str, passages: Mapping[int, str], question: str, lead: str = "") -> list[Misattributed]:
    """The figures of ``answer`` that the passages each sentence cites (numbered as in ``passages``) do not hold,
    nor ``question``, but another of ``passages`` does; figures no passage holds are left to unsupported_figures."""
    found: list[Misattributed] = []
    placed: set[Figure] = set()
    cited: tuple[int, ...] = ()
    holders = {n: KnownFigures([text]) for n, text in passages.items()}
    for sentence in SENTENCE_END.split(_own_words(answer, lead)):
        numbers = tuple(dict.fromkeys(n for n in map(int, _CITED.findall(sentence)) if n in passages))
        cited = numbers or cited
        if not cited:
            continue
        for figure, spelling in unsupported(sentence, [question, *(passages[n] for n in cited)]).items():
            if figure in placed or not _worth_placing(figure):
                continue
            holder = next((n for n, known in holders.items() if n not in cited and known.hold(figure, spelling)), None)
            if holder is not None:
                placed.add(figure)
                # An ordinal is spelled without its 第: 第四十七条 is "四十七".
                found.append(Misattributed(f"第{spelling}" if figure.unit == "第" else spelling, holder, cited))
    return found
