"""Figures of an answer checked against its passages by value (server/chat/figures.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.chat.figures import Figure, figures, unsupported_figures


@pytest.mark.parametrize(("text", "values"), [
    ("最少赔一千元，或者百分之三百", {(1000, "元"): "一千元", (300, "%"): "三百"}),
    ("5万块 and 1.5万元", {(50000, "元"): "5万块", (15000, "元"): "1.5万元"}),
    ("第四十四条：十五日内，一百五十米以外", {(44, "第"): "四十四", (15, "日"): "十五日", (150, "米"): "一百五十米"}),
    ("二〇一八年，两个月，十八周岁", {(2018, "年"): "二〇一八年", (2, "月"): "两个月", (18, "岁"): "十八周岁"}),
    ("46,293 CHF, 15,50 EUR and 2103.15348", {(46293, ""): "46,293", (Decimal("15.5"), ""): "15,50",
                                               (Decimal("2103.15348"), ""): "2103.15348"}),
    ("300% and 7 days", {(300, "%"): "300%", (7, ""): "7"}),
    ("1.5 days at most\n2. then 3 more", {(Decimal("1.5"), ""): "1.5", (3, ""): "3"}),  # then a list marker
    ("按三倍支付，5天后", {(300, "%"): "三倍", (5, "日"): "5天"}),  # 倍 as a percentage, 天 as 日
])
def test_figures_are_read_by_value_and_kind_of_unit_in_either_script(text, values):
    assert figures(text) == {Figure(Decimal(v).normalize(), unit): s for (v, unit), s in values.items()}


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


def test_a_figure_with_a_unit_is_held_only_by_the_same_value_with_the_same_kind_of_unit():
    passages = ["因犯罪被判处有期徒刑的，五日内通知。", "法定休假日安排劳动者工作的，支付不低于工资的百分之三百的工资报酬。"]
    # 五年 is not held by 五日; 三倍 is 百分之三百, 3天 is 三日 only where a passage says so.
    assert unsupported_figures("根据资料[1]，会判五年，5天内通知。", passages) == ["五年"]
    assert unsupported_figures("根据资料[2]，按三倍工资算，即300%。", passages) == []
    assert unsupported_figures("根据资料[2]，按两倍工资算。", passages) == ["两倍"]
    # A figure without a unit is held by its value with any unit, and a bare value holds any unit.
    assert unsupported_figures("According to [1], 5 of them.", passages) == []
    assert unsupported_figures("根据资料[1]，5年。", ["Table: term 5"]) == []


def test_digits_the_answer_scales_by_a_myriad_are_held_by_a_table_that_states_them_bare():
    # The table's unit (单位：万元) is in its title; its rows state the digits alone.
    rows = ["区域: 华东; 销售额: 12138; 毛利: 2284", "区域: 华南; 销售额: 9,283"]
    assert unsupported_figures("根据资料[1]，华东区去年上半年销售额为12138万元，华南9283万。", rows) == []
    assert unsupported_figures("根据资料[1]，华东区销售额为12139万元。", rows) == ["12139万元"]
    # 1.2万 is still 12000 where a passage says so.
    assert unsupported_figures("赔偿1.2万元。", ["赔偿12000元。"]) == []


def test_a_thousands_comma_written_with_a_space_is_one_figure_where_the_passages_hold_it():
    passages = ["The fine is £300,000 for each breach.", "On 5 May the board met."]
    assert unsupported_figures("According to [1], the fine is £300, 000.", passages) == []
    # Two figures when the passages do not hold the joined number: each is checked on its own.
    assert unsupported_figures("According to [2], on May 5, 300 people came.", passages) == ["300"]
    assert unsupported_figures("According to [1], it is £400, 000.", passages) == ["400", "000"]
