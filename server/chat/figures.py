"""Figures in an answer that its passages do not hold.

A small model reading passages that are on topic but lack the number asked for writes one anyway
("13 people died", 「最少能赔25元」), and cites a passage for it. A figure is easy to check: every number
the answer states (Arabic digits, Chinese numerals before a unit, 百分之…) is compared by value with the
numbers of the passages the user sees and of the question. One found in neither is named to the user after
the answer (``chat.check_figures``), so a wrong figure is not taken on trust. Values, not spellings, are
compared: 「一千元」 holds 1000, 「5万」 50000, "46,293" 46293 and "15,50" 15.5. A figure with a unit counts
as held only where the same value comes with the same kind of unit (天 and 日, 元 and 块, 三倍 and 百分之三百
alike) or with none: 「判五年」 is not held by a passage that says 五日. Figures without a unit (most English
ones), and the number one (一周 is as often "a week" as a count), are compared by value alone. Digits the answer
scales by 万 or 亿 are held where a passage states them bare: a table "in 万元" holds 12138 for 「12138万元」.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from server.knowledge_base.sentences import BRACKETED_NUMBER, NUMBER_AND_STOP

_CITATION = re.compile(r"\[\d+\]")
# List markers are not figures: "1. ", "2、" at the start of a line, "(1)" and "（2）" anywhere.
_LIST_MARKER = re.compile(rf"^[ \t]*{NUMBER_AND_STOP}|{BRACKETED_NUMBER}", re.M)
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_MYRIADS = {"万": 10**4, "亿": 10**8}
_CN_CHARS = "".join(_CN_DIGITS) + "".join(_CN_UNITS) + "".join(_CN_MYRIADS)
# A run of Chinese numerals counts as a figure only where it is one: before a unit or measure word, after
# 百分之 or 第; otherwise 一 and 万 are parts of words (一般, 统一, 万一, 千万). The unit is kept in the spelling
# the user is shown.
_UNITS = "个月|个小时|个|天|日|年|月|周岁|周|倍|元|块|岁|次|人|小时|分钟|公里|米|件|台|名|份|成|折|%|项|条|款|级"
# Arabic numbers with thousands separators or a decimal part, a Chinese myriad after them, and a unit.
_ARABIC = re.compile(rf"(?P<n>\d+(?:[.,]\d+)*(?:\s*[万亿])?)(?P<u>{_UNITS})?")
_CN_NUMBER = re.compile(
    rf"(?:(?<=百分之)(?P<p>[{_CN_CHARS}]+))|(?:(?<=第)(?P<o>[{_CN_CHARS}]+))|(?P<m>(?!百分之)[{_CN_CHARS}]+)(?P<u>{_UNITS})")
# Units that name the same kind of quantity, and 倍 as a percentage (三倍 = 百分之三百).
_UNIT_KINDS = {"个月": "月", "个小时": "小时", "天": "日", "周岁": "岁", "块": "元", "名": "人", "倍": "%"}
_UNIT_SCALES = {"倍": 100}


class Figure(NamedTuple):
    """A number an answer or passage states: its value and the kind of its unit ("" for none; "第" for an
    ordinal such as 第十九条)."""

    value: Decimal
    unit: str


def _figure(value: Decimal, unit: str | None) -> Figure:
    unit = unit or ""
    return Figure((value * _UNIT_SCALES.get(unit, 1)).normalize(), _UNIT_KINDS.get(unit, unit))


def arabic_value(text: str) -> Decimal | None:
    """The value of a number written in digits ("12,553", "3.5", "1.2万"); None for a date or version (1.2.3) or
    anything else."""
    text = text.replace(" ", "")
    if not text:
        return None
    scale = _CN_MYRIADS.get(text[-1], 1)
    digits = text.rstrip("".join(_CN_MYRIADS))
    # A comma before exactly three digits separates thousands; another comma or point is a decimal mark.
    groups = re.split(r"[.,]", digits)
    marks = re.findall(r"[.,]", digits)
    whole = groups[0]
    fraction = ""
    for mark, group in zip(marks, groups[1:]):
        if mark == "," and len(group) == 3 and not fraction:
            whole += group
        elif not fraction:
            fraction = group
        else:
            return None  # a date or version (1.2.3): not one number
    try:
        return Decimal(f"{whole}.{fraction}" if fraction else whole) * scale
    except InvalidOperation:
        return None


def _chinese(text: str) -> int | None:
    if len(text) > 1 and all(c in _CN_DIGITS for c in text):
        return int("".join(str(_CN_DIGITS[c]) for c in text))  # 二〇一八
    total = section = number = 0
    for char in text:
        if char in _CN_DIGITS:
            number = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            section += (number or 1) * _CN_UNITS[char]
            number = 0
        else:
            if not (section or number or total):
                return None  # a bare 万 or 亿
            total = (total + section + number) * _CN_MYRIADS[char]
            section = number = 0
    return total + section + number


def figures(text: str) -> dict[Figure, str]:
    """The numbers ``text`` states, with the kinds of their units, in the order they first appear, each with
    its first spelling; [n] citations and list markers are not numbers."""
    text = _LIST_MARKER.sub(" ", _CITATION.sub(" ", text))
    found: list[tuple[int, Figure, str]] = []
    for match in _ARABIC.finditer(text):
        value = arabic_value(match.group("n"))
        if value is not None:
            found.append((match.start(), _figure(value, match.group("u")), match.group()))
    for match in _CN_NUMBER.finditer(text):
        number = _chinese(match.group("p") or match.group("o") or match.group("m"))
        if number is not None:
            unit = "%" if match.group("p") else "第" if match.group("o") else match.group("u")
            found.append((match.start(), _figure(Decimal(number), unit), match.group()))
    out: dict[Figure, str] = {}
    for _, figure, spelling in sorted(found, key=lambda f: f[0]):
        out.setdefault(figure, spelling)
    return out


# Arabic digits and a Chinese myriad after them ("12138万元"): the digits as written.
_WRITTEN_SCALED = re.compile(r"(\d+(?:[.,]\d+)*)\s*[万亿]")
# "300, 000": a thousands comma a model wrote with a space after it.
_SPACED_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3}), (\d{3})(?!\d|[.,]\d)")


def _closed_up(answer: str, values: set[Decimal]) -> str:
    """``answer`` with "a, bbb" written "a,bbb" where the grounds hold that number (else they stay two figures:
    "On May 5, 300 people ...")."""
    def close(match: re.Match[str]) -> str:
        joined = f"{match.group(1)},{match.group(2)}"
        return joined if arabic_value(joined) in values else match.group()

    return _SPACED_THOUSANDS.sub(close, answer)


class KnownFigures:
    """The figures some texts (passages, a question) state, to tell whether they hold a figure of an answer."""

    def __init__(self, grounds: Iterable[str]) -> None:
        known: set[Figure] = set()
        for text in grounds:
            known.update(figures(text))
        self._known = known
        self.values = {figure.value for figure in known}
        self._bare = {figure.value for figure in known if not figure.unit}

    def hold(self, figure: Figure, spelling: str) -> bool:
        """The same value with the same kind of unit, or with none on either side."""
        # A table "in 万元" (or "in millions") holds 12138 where the answer says 12138万元: the digits as written
        # are held bare, as "46,293 million" is held by 46293.
        written = _WRITTEN_SCALED.match(spelling)
        if written and arabic_value(written.group(1)) in self._bare:
            return True
        # 一周, 一次, 一个 are as often "per" or "a" as a count: one is compared by value alone.
        if figure.unit and figure.value != 1:
            return figure in self._known or figure.value in self._bare
        return figure.value in self.values


def unsupported(answer: str, grounds: Iterable[str]) -> dict[Figure, str]:
    """The figures of ``answer``, each with its spelling there, that none of ``grounds`` (passages, question)
    holds (KnownFigures.hold)."""
    known = KnownFigures(grounds)
    return {figure: spelling for figure, spelling in figures(_closed_up(answer, known.values)).items()
            if not known.hold(figure, spelling)}


def unsupported_figures(answer: str, grounds: Iterable[str]) -> list[str]:
    """The figures of ``answer``, as it spells them, that none of ``grounds`` (passages, question) holds."""
    return list(unsupported(answer, grounds).values())
