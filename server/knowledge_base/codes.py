"""Codes a question names: model and part numbers, grades, identifiers ("SS400", "SNB22-3", "X200", "Ki67").

A knowledge base that never mentions the code a question asks about cannot answer it, however close its passages
come: asked the yield strength of SS400 over a datasheet for SNB22-3, a small model gives SNB22-3's and calls it
SS400's. Unlike a word, a code has no synonym, so whether the knowledge base holds it is a plain lookup
(``VectorStore.mentions``), made on letters and digits alone so that "SS-400" and "ss400" are the same code.

A code is a run of letters and digits holding both, of three characters or more. Quantities with their unit
("10km", "5kg", "3pm"), ordinals ("2nd"), decades ("1990s") and period names ("Q3", "H1", "FY2023") are not
codes: documents write them in other words ("January to June 2023").
"""

from __future__ import annotations

import re
import unicodedata

# A run of letters and digits, with the separators a code may hold ("SNB22-3", "PC-12/47E").
_RUN = re.compile(r"[A-Za-z0-9]+(?:[-/.][A-Za-z0-9]+)*")
_SEPARATOR = re.compile(r"[-/.]")
# A part holding both letters and digits.
_MIXED = re.compile(r"(?=.*[A-Za-z])(?=.*\d)")
# Numbers with one letter or a unit, ordinals and period names.
_NOT_CODE = re.compile(
    r"\d+(?:[a-z]|st|nd|rd|th|km|kg|mg|ml|cm|mm|hr|hrs|min|am|pm|gb|mb|tb|kb|kw|kwh|hz|mhz|ghz)|q[1-4]|h[12]|fy\d{2,4}",
    re.IGNORECASE,
)
_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


def alphanumeric(text: str) -> str:
    """``text`` in lower case with everything but ASCII letters and digits taken out."""
    return _NON_ALPHANUMERIC.sub("", unicodedata.normalize("NFKC", text).lower())


def codes(question: str) -> list[str]:
    """The codes ``question`` names, as it spells them, each once."""
    found: list[str] = []
    for match in _RUN.finditer(unicodedata.normalize("NFKC", question)):
        parts = _SEPARATOR.split(match.group(0))
        if any(len(p) >= 3 and _MIXED.match(p) and not _NOT_CODE.fullmatch(p) for p in parts) and \
                match.group(0) not in found:
            found.append(match.group(0))
    return found
