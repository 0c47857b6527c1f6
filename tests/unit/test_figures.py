"""Figures of an answer checked against its passages by value (server/chat/figures.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.chat.figures import figures, unsupported_figures


@pytest.mark.parametrize(("text", "values"), [
    ("最少赔一千元，或者百分之三百", {1000: "一千元", 300: "三百"}),
    ("5万块 and 1.5万元", {50000: "5万块", 15000: "1.5万元"}),
    ("第四十四条：十五日内，一百五十米以外", {44: "四十四", 15: "十五日", 150: "一百五十米"}),
    ("二〇一八年，两个月，十八周岁", {2018: "二〇一八年", 2: "两个月", 18: "十八周岁"}),
    ("46,293 CHF, 15,50 EUR and 2103.15348", {46293: "46,293", Decimal("15.5"): "15,50",
                                               Decimal("2103.15348"): "2103.15348"}),
    ("300% and 7 days", {300: "300%", 7: "7"}),
    ("1.5 days at most\n2. then 3 more", {Decimal("1.5"): "1.5", 3: "3"}),  # a number, then a list marker
])
def test_figures_are_read_by_value_in_either_script(text, values):
    assert figures(text) == {Decimal(v).normalize(): s for v, s in values.items()}


@pytest.mark.parametrize("text", [
    "一般来说，统一办理；万一出事，千万别慌。",  # 一 and 万 inside words
    "根据资料[1]和[2]，可以。",  # citations
    "Install version P12.1.2 first.",  # a version, not a number
    "1. 先协商；\n2、再仲裁。\n（1）书面；(2) 口头",  # list markers
])
def test_words_citations_and_versions_are_not_figures(text):
    assert figures(text) == {}


def test_a_figure_counts_as_held_when_a_passage_or_the_question_has_its_value():
    passages = ["用人单位应当保证劳动者每周至少休息一日。", "不足一千元的，为一千元。"]
    question = "买了3块钱的过期零食，按十倍才赔30，最少能赔多少？"
    assert unsupported_figures("根据资料[2]，最少赔1000元，不是30元。", [question, *passages]) == []
    assert unsupported_figures("根据资料[1]，一周起码得休五天，最少赔25元。", [question, *passages]) == ["五天", "25元"]
    assert unsupported_figures("According to [1], 13 people died.", ["The jet carried 189 people."]) == ["13"]
    assert unsupported_figures("No figure here [1].", []) == []
