"""citations.cited_elsewhere: the figures an answer cites from a passage that does not hold them, while another
passage shown does."""

from __future__ import annotations

from server.chat.citations import Misattributed, cited_elsewhere

PASSAGES = {1: "Iwan Wyn Roberts (born 26 June 1968) is a Welsh former footballer.",
            2: "Full name Iwan Wyn Roberts. Height 6 ft 3 in (1.91 m). Position(s) Forward.",
            3: "He won fifteen caps for Wales between 1989 and 2001."}


def test_a_figure_only_another_passage_holds_is_placed_there():
    answer = "According to [1], Iwan Roberts is 6 ft 3 in (1.91 m) tall."
    assert cited_elsewhere(answer, PASSAGES, "How tall is Iwan Roberts?") == [
        Misattributed("1.91", 2, (1,))]


def test_figures_the_cited_passage_the_question_or_no_passage_holds_are_left_alone():
    assert cited_elsewhere("According to [2], he is 1.91 m tall.", PASSAGES, "How tall is he?") == []
    assert cited_elsewhere("According to [1], he is 1.91 m tall.", PASSAGES, "Is he 1.91 m tall?") == []
    # In no passage: the note on figures the passages do not hold names it instead.
    assert cited_elsewhere("According to [1], he is 1.93 m tall.", PASSAGES, "How tall is he?") == []
    # A bare small number says too little to place.
    assert cited_elsewhere("According to [1], he stood 6 feet tall.", PASSAGES, "How tall is he?") == []


def test_a_sentence_without_citations_goes_with_the_ones_cited_last():
    answer = "According to [3], he played for Wales. His first cap came in 1989. Later, [1] says he was born in 1968."
    assert cited_elsewhere(answer, PASSAGES, "When did he play for Wales?") == []
    answer = "According to [1], he was born in 1968. He first played for Wales in 1989."
    assert cited_elsewhere(answer, PASSAGES, "When did he play for Wales?") == [Misattributed("1989", 3, (1,))]


def test_the_lead_s_quoted_clause_is_the_passage_s_own_and_its_citation_counts():
    passages = {1: "第十九条 劳动合同期限一年以上不满三年的，试用期不得超过二个月。",
                2: "第二十条 劳动者在试用期的工资不得低于约定工资的百分之八十。"}
    lead = "根据资料[1]《劳动合同法》第十九条：“劳动合同期限一年以上不满三年的，试用期不得超过二个月。”因此，"
    answer = lead + "试用期工资不得低于百分之八十。"
    assert cited_elsewhere(answer, passages, "试用期多久，工资多少？", lead) == [Misattributed("八十", 2, (1,))]
    assert cited_elsewhere(lead + "试用期最长二个月。", passages, "试用期多久？", lead) == []


def test_an_article_the_answer_names_from_another_passage_is_placed_with_its_ordinal():
    passages = {1: "第十九条 试用期不得超过二个月。", 2: "第四十七条 经济补偿按劳动者在本单位工作的年限支付。"}
    answer = "根据资料[1]，按照第四十七条，经济补偿按工作年限支付。"
    assert cited_elsewhere(answer, passages, "补偿怎么算？") == [Misattributed("第四十七", 2, (1,))]


def test_the_conclusion_after_two_quoted_clauses_goes_with_both():
    passages = {1: "第四十七条 六个月以上不满一年的，按一年计算；不满六个月的，向劳动者支付半个月工资的经济补偿。",
                2: "第二十八条 用人单位解除劳动合同的，应当依照国家有关规定给予经济补偿。"}
    lead = ("根据资料[1]《劳动合同法》第四十七条：“六个月以上不满一年的，按一年计算。”；资料[2]《劳动法》第二十八条：“用人单位"
            "解除劳动合同的，应当依照国家有关规定给予经济补偿。”。因此，")
    answer = lead + "干了半年按一年计算，补偿一个月工资。"
    assert cited_elsewhere(answer, passages, "干了半年，经济补偿怎么算？", lead) == []
