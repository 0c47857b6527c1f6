"""The clause a knowledge-base answer quotes first (chat.quote_evidence): its article and its words."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from configs import Settings
from server.chat.evidence import split_passages
from server.chat.quote import QUOTE_MAX_CHARS, distinct_articles, quote_values, quoted_sentence, reads_as_prose
from server.knowledge_base.splitter import article_at

LAW = ("第十九条 劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，试用期不得超过二个月。"
       "同一用人单位与同一劳动者只能约定一次试用期。\n\n"
       "**第二十条** 劳动者在试用期的工资不得低于本单位相同岗位最低档工资或者劳动合同约定工资的百分之八十，"
       "并不得低于用人单位所在地的最低工资标准。")
QUESTION = "公司让我再走一遍试用期，可以只约定一次吗？"


def test_a_sentence_is_in_the_article_whose_label_opens_the_last_line_before_it():
    assert article_at(LAW, LAW.index("同一用人单位")) == "第十九条"
    assert article_at(LAW, LAW.index("劳动者在试用期")) == "第二十条"  # markup dropped
    assert article_at(LAW, 0) == "第十九条"
    assert article_at("它在第十九条里提到过。", 5) is None  # a label inside a line is a reference, not an article
    assert article_at("同一用人单位与同一劳动者只能约定一次试用期。", 3) is None


def test_the_quote_names_the_article_and_leaves_its_label_out_of_the_sentence():
    passage = split_passages([LAW])[0]
    assert quoted_sentence(passage, 0, QUESTION) == (
        "第十九条", "劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，试用期不得超过二个月。")
    assert quote_values("zh", 2, "中华人民共和国劳动合同法", passage, 0, QUESTION)["where"] == \
        "《中华人民共和国劳动合同法》第十九条"


def test_a_sentence_running_into_the_next_article_is_quoted_by_the_part_the_question_asks_about():
    passage = split_passages([LAW])[0]
    # The short last sentence of 第十九条 was cut together with 第二十条.
    joined = next(i for i, (s, e) in enumerate(passage.spans) if "第二十条" in LAW[s:e])
    assert "同一用人单位" in passage.sentence(joined)
    assert quoted_sentence(passage, joined, QUESTION) == ("第十九条", "同一用人单位与同一劳动者只能约定一次试用期。")
    wage = "试用期的工资最低是多少，能低于最低工资标准吗？"
    article, sentence = quoted_sentence(passage, joined, wage)
    assert article == "第二十条" and sentence.startswith("劳动者在试用期的工资") and "**" not in sentence


def test_outside_a_law_the_quote_names_the_title_alone():
    text = "Turn the compost heap over every two weeks in summer. Keep the heap as moist as a wrung-out sponge."
    passage = split_passages([text])[0]
    assert quote_values("en", 1, "compost", passage, 0, "How often do I turn it?") == {
        "n": "1", "where": "compost", "sentence": "Turn the compost heap over every two weeks in summer."}
    zh = split_passages(["堆肥堆每两周翻一次，保持通气，就不会发臭。"])[0]
    assert quote_values("zh", 1, "《堆肥》", zh, 0, "多久翻一次？")["where"] == "《堆肥》"


def test_a_sentence_too_long_or_too_short_is_not_quoted():
    long = split_passages(["条款" * QUOTE_MAX_CHARS + "。"])[0]
    assert quote_values("zh", 1, "t", long, 0, "条款") is None
    assert quote_values("en", 1, "t", split_passages(["Ok."])[0], 0, "ok?") is None


def test_a_list_item_is_quoted_after_the_sentence_that_opens_its_list():
    law = ("第四十二条 劳动者有下列情形之一的，用人单位不得依照本法第四十条、第四十一条的规定解除劳动合同:\n\n"
           "（一）从事接触职业病危害作业的劳动者未进行离岗前职业健康检查，或者疑似职业病病人在诊断或者医学观察期间的；\n\n"
           "（二）在本单位患职业病或者因工负伤并被确认丧失或者部分丧失劳动能力的；\n\n"
           "（三）在本单位连续工作满十五年，且距法定退休年龄不足五年的；")
    passage = split_passages([law])[0]
    values = quote_values("zh", 1, "劳动合同法", passage, 2, "干了十六年还有四年退休，能裁我吗")
    assert values["where"] == "《劳动合同法》第四十二条"
    assert values["sentence"].startswith("劳动者有下列情形之一的，用人单位不得依照本法第四十条、第四十一条的规定解除劳动合同:……"
                                         "（二）在本单位患职业病")
    assert values["sentence"].endswith("距法定退休年龄不足五年的；")
    first = quote_values("zh", 1, "劳动合同法", passage, 1, "离岗前要体检吗")["sentence"]
    assert ":（一）从事" in first  # the item right after its lead-in: no gap
    # A lead-in that would make the quote too long is left out.
    long_lead = law.replace("劳动者有下列", "劳动者" * 80 + "有下列")
    assert quote_values("zh", 1, "t", split_passages([long_lead])[0], 2, "满十五年")["sentence"].startswith("（二）")


def test_the_part_of_an_item_s_sentence_that_runs_into_the_next_article_is_quoted_without_the_lead_in():
    law = ("第四十四条 有下列情形之一的，用人单位应当按照下列标准支付高于劳动者正常工作时间工资的工资报酬：\n\n"
           "（三）法定休假日安排劳动者工作的，支付不低于工资的百分之三百的工资报酬。\n\n"
           "第四十五条 国家实行带薪年休假制度。\n\n劳动者连续工作一年以上的，享受带薪年休假。")
    passage = split_passages([law])[0]
    joined = next(i for i in range(len(passage.spans)) if "第四十五条" in passage.sentence(i))
    assert passage.sentence(joined).startswith("（三）") and passage.lead_in(joined) == 0
    values = quote_values("zh", 1, "劳动法", passage, joined, "带薪年休假制度是怎么规定的？")
    assert values["where"] == "《劳动法》第四十五条" and values["sentence"].startswith("国家实行带薪年休假制度")


@pytest.mark.parametrize("name", ["quote_evidence", "evidence_scoring_languages", "first_token_languages"])
def test_a_setting_of_question_languages_takes_zh_and_en_only(name):
    assert getattr(Settings(chat={name: ["en", "zh"]}).chat, name) == ["en", "zh"]
    with pytest.raises(ValidationError, match="'zh' or 'en'"):
        Settings(chat={name: ["cn"]})  # a typo would otherwise switch the feature off without a word


def test_further_quotes_come_from_other_articles_or_passages():
    law = ("第十九条 劳动合同期限三个月以上不满一年的，试用期不得超过一个月；一年以上的不得超过二个月。"
           "同一用人单位与同一劳动者只能约定一次试用期，以完成一定工作任务为期限的不得约定试用期。\n\n"
           "第二十条 劳动者在试用期的工资不得低于本单位相同岗位最低档工资的百分之八十，并不得低于最低工资标准。")
    passages = split_passages([law, "Turn the compost heap over every two weeks in the summer months. "
                                    "Keep the heap as moist as a wrung-out sponge, and cover it in the rain."])
    assert [len(p.spans) for p in passages] == [3, 2]
    # 第十九条's two sentences are one article: the second quote is 第二十条's, the third the other passage's.
    ranked = [(0, 1), (0, 0), (0, 2), (1, 1), (1, 0)]
    documents = ["law.md", "notes.txt"]
    assert distinct_articles(passages, documents, ranked, 1) == [(0, 1)]
    assert distinct_articles(passages, documents, ranked, 2) == [(0, 1), (0, 2)]
    assert distinct_articles(passages, documents, ranked, 3) == [(0, 1), (0, 2), (1, 1)]
    assert distinct_articles(passages, documents, [], 2) == []
    # The same article in an overlapping passage of the same law, or the same sentence again, is not quoted twice.
    twice = split_passages([law, law])
    assert distinct_articles(twice, ["law.md", "law.md"], [(0, 1), (1, 0), (1, 2)], 2) == [(0, 1), (1, 2)]
    assert distinct_articles(twice, ["law.md", "other.md"], [(0, 1), (1, 0)], 2) == [(0, 1), (1, 0)]
    notes = split_passages([passages[1].text, passages[1].text])
    assert distinct_articles(notes, ["a", "b"], [(0, 0), (1, 0), (1, 1)], 2) == [(0, 0), (1, 1)]
    # Rows of one table are quoted side by side: a comparison needs both.
    table = split_passages(["区域: 华北; 毛利: 2068\n\n区域: 华南; 毛利: 1570", "区域: 华北; 毛利: 2198"], [True, True])
    assert distinct_articles(table, ["s.xlsx", "s.xlsx"], [(0, 0), (0, 1), (1, 0)], 2) == [(0, 0), (0, 1)]


@pytest.mark.parametrize(("sentence", "prose"), [
    ("Every employee gets twenty-five days of paid annual leave.", True),
    ("劳动者在试用期的工资不得低于本单位相同岗位最低档工资。", True),
    ("aircraft.com; internet: https://www.pilatus-aircraft.com/en.", False),
    ("Tensile strength 400 MPa", False),
    # Lines of the Universal Declaration in other languages: romanised Chinese, Dutch, Finnish.
    ("Renren sen er ziyou, zai zunlian ho quanli sang yelue pinden.", False),
    ("Alle mensen worden vrij en gelijk in waardigheid en rechten geboren.", False),
    ("Kaikki ihmiset syntyvät vapaina ja tasavertaisina arvoltaan ja oikeuksiltaan.", False),
])
def test_a_sentence_reads_as_prose_in_chinese_or_english_words(sentence, prose):
    assert reads_as_prose(sentence) is prose
