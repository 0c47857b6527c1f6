"""Choosing the sentences of retrieved passages that the model reads and the user sees highlighted."""

from __future__ import annotations

from server.chat.evidence import GAP, choose, rank_sentences, reordered, split_passages
from server.knowledge_base.sentences import sentence_spans
from server.llm.tokens import approx_token_count

PROBATION = (
    "第十九条 劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，"
    "试用期不得超过二个月；三年以上固定期限和无固定期限的劳动合同，试用期不得超过六个月。\n\n"
    "同一用人单位与同一劳动者只能约定一次试用期。\n\n"
    "以完成一定工作任务为期限的劳动合同或者劳动合同期限不满三个月的，不得约定试用期。"
)
OPEN_ENDED = (
    "第十四条 无固定期限劳动合同，是指用人单位与劳动者约定无确定终止时间的劳动合同。\n\n"
    "用人单位与劳动者协商一致，可以订立无固定期限劳动合同。"
)
LAYOFF = (
    "第四十二条 劳动者有下列情形之一的，用人单位不得依照本法第四十条、第四十一条的规定解除劳动合同:\n\n"
    "（一）从事接触职业病危害作业的劳动者未进行离岗前职业健康检查，或者疑似职业病病人在诊断或者医学观察期间的；\n\n"
    "（二）在本单位患职业病或者因工负伤并被确认丧失或者部分丧失劳动能力的；\n\n"
    "（三）在本单位连续工作满十五年，且距法定退休年龄不足五年的；\n\n"
    "（四）法律、行政法规规定的其他情形。"
)
COMPOST = (
    "A compost heap needs air, water and a mix of green and brown material. "
    "Turn the compost heap every two weeks so that it stays aerobic. "
    "Tomatoes like deep watering at the base, early in the morning."
)


def texts_of(passage):
    return [passage.text[s:e].strip() for s, e in passage.highlights]


def test_sentences_end_at_full_stops_and_line_breaks_and_long_ones_at_semicolons():
    spans = sentence_spans(PROBATION)
    sentences = [PROBATION[s:e].strip() for s, e in spans]
    # A short sentence joins the next one, so each piece can stand alone.
    assert sentences[-1] == ("同一用人单位与同一劳动者只能约定一次试用期。\n\n"
                             "以完成一定工作任务为期限的劳动合同或者劳动合同期限不满三个月的，不得约定试用期。")
    # The first sentence is short enough to stay whole, semicolons and all.
    assert sentences[0].startswith("第十九条") and sentences[0].endswith("试用期不得超过六个月。")
    long = "甲" * 100 + "；" + "乙" * 100 + "；" + "丙" * 100 + "。"
    assert [long[s:e] for s, e in sentence_spans(long)] == ["甲" * 100 + "；", "乙" * 100 + "；", "丙" * 100 + "。"]
    english = [COMPOST[s:e].strip() for s, e in sentence_spans(COMPOST)]
    assert english == ["A compost heap needs air, water and a mix of green and brown material.",
                       "Turn the compost heap every two weeks so that it stays aerobic.",
                       "Tomatoes like deep watering at the base, early in the morning."]
    form = "Counsel:\nCHARLES M. SEVILLA,\nSan Diego, Cal.\nfor the respondent.\n"
    assert [form[s:e].strip() for s, e in sentence_spans(form)] == [form.strip()]


def test_the_sentence_that_answers_is_chosen_within_the_budget():
    question = "我签了两年的劳动合同，公司说试用期六个月，这合法吗？"
    passages = choose(question, [OPEN_ENDED, PROBATION], budget=120, count=approx_token_count)
    assert any("试用期不得超过二个月" in s for s in texts_of(passages[1]))
    assert sum(approx_token_count(s) for p in passages for s in texts_of(p)) <= 120
    english = choose("how often should I turn it every two weeks", [COMPOST], budget=20, count=approx_token_count)[0]
    assert texts_of(english) == ["Turn the compost heap every two weeks so that it stays aerobic."]
    assert english.excerpt() == "Turn the compost heap every two weeks so that it stays aerobic."


def test_room_left_goes_to_the_sentence_after_a_matching_one():
    text = ("The respondent in this case was represented at the hearing by counsel. "
            "Charles M. Sevilla, Esq., of San Diego, California, argued for him. "
            "The court adjourned at noon and resumed the following morning.")
    passage = choose("who represented the respondent", [text], budget=45, count=approx_token_count)[0]
    assert passage.chosen == [0, 1] and "Sevilla" in passage.excerpt()


def test_left_out_sentences_leave_a_gap_mark_and_order_is_kept():
    text = ("Alpha beta gamma are the first letters of the alphabet. Nothing in this sentence matters to "
            "anyone at all. Also unrelated, this one speaks of weather and rain. "
            "Gamma beta delta follow each other in the Greek alphabet.")
    passage = choose("beta gamma delta", [text], budget=30, count=approx_token_count)[0]
    assert passage.excerpt() == ("Alpha beta gamma are the first letters of the alphabet."
                                 f"{GAP}Gamma beta delta follow each other in the Greek alphabet.")


def test_a_passage_without_matching_words_keeps_its_first_sentence_when_there_is_room():
    bees = "Honey bees visit clover and lavender all summer. A strong hive holds about fifty thousand bees."
    passages = choose("compost heap", [COMPOST, bees], budget=80, count=approx_token_count)
    assert texts_of(passages[1]) == ["Honey bees visit clover and lavender all summer."]
    tight = choose("compost heap", [COMPOST, bees], budget=20, count=approx_token_count)
    assert tight[1].chosen == [] and tight[1].excerpt() == ""


def test_a_zero_budget_keeps_whole_passages():
    passage = choose("anything", [COMPOST], budget=0, count=approx_token_count)[0]
    assert passage.excerpt().split() == COMPOST.split()
    assert len(passage.highlights) == 3


def test_sentence_similarities_choose_the_answer_that_shares_no_word_with_the_question():
    question = "How often should I stir my heap of garden waste?"
    budget = 20  # room for one sentence
    by_terms = choose(question, [COMPOST], budget, approx_token_count)[0]
    assert texts_of(by_terms) != ["Turn the compost heap every two weeks so that it stays aerobic."]
    with_vectors = choose(question, [COMPOST], budget, approx_token_count, [[0.80, 0.91, 0.78]])[0]
    assert texts_of(with_vectors) == ["Turn the compost heap every two weeks so that it stays aerobic."]
    # Cosines that do not fit the passage's sentences are ignored rather than misapplied.
    assert choose(question, [COMPOST], budget, approx_token_count, [[0.1, 0.9]])[0].chosen == by_terms.chosen


def test_sentences_a_model_preferred_are_chosen_first_and_the_rest_keep_their_order():
    question = "how often should I turn the compost heap"
    passages = split_passages([COMPOST])
    candidates = rank_sentences(question, passages)
    assert [c.index for c in candidates][:2] == [1, 0]  # "Turn the compost heap ..." shares the most words
    # A model scored the two best the other way round: its order wins, and a budget of one sentence takes its best.
    preferred = reordered(candidates[:2], [0.2, 0.7])
    assert preferred == [(0, 0), (0, 1)]
    budget = approx_token_count(COMPOST[slice(*passages[0].spans[0])])
    assert texts_of(choose(question, [COMPOST], budget, approx_token_count, preferred=preferred)[0]) == [
        "A compost heap needs air, water and a mix of green and brown material."]
    assert texts_of(choose(question, [COMPOST], budget, approx_token_count)[0]) == [
        "Turn the compost heap every two weeks so that it stays aerobic."]


CUPS = ("Team: Blues; Location: STL; Stanley Cups: 1\n\nTeam: Flyers; Location: PHI; Stanley Cups: 2\n\n"
        "Team: Maple Leafs; Location: TOR; Stanley Cups: 13")


def test_a_tables_rows_are_read_best_first_and_its_first_row_gets_no_bonus():
    question = "How many Stanley Cups have the Maple Leafs won?"
    [as_text] = choose(question, [CUPS], 320, approx_token_count)
    [as_table] = choose(question, [CUPS], 320, approx_token_count, tables=[True])
    assert as_text.excerpt().startswith("Team: Blues")
    assert as_table.excerpt().split("\n\n")[0] == "Team: Maple Leafs; Location: TOR; Stanley Cups: 13"
    assert sorted(as_table.excerpt().split("\n\n")) == sorted(CUPS.split("\n\n"))
    # The highlights stay in text order.
    assert as_table.highlights == sorted(as_table.highlights)
    assert rank_sentences(question, split_passages([CUPS], [True]))[0].index == 2


def test_a_long_table_row_cut_in_pieces_keeps_its_pieces_together_in_order():
    long_row = "; ".join(f"Measure {n}: {n * 11}" for n in range(40)) + "; Water sales: 1792"
    table = "Zone A; Sales: 5\n\n" + long_row + "\n\nZone B; Sales: 7"
    [passage] = choose("What were the water sales?", [table], 60, approx_token_count, tables=[True])
    rows = passage.excerpt().split("\n\n")
    assert "Water sales: 1792" in rows[0] and not rows[0].startswith("Zone")
    assert all("Water sales" not in row for row in rows[1:])


def test_short_table_rows_stay_sentences_of_their_own_while_short_prose_joins_the_next():
    rows = "South; Sales: 90; Profit: 4\n\nNorth; Sales: 110; Profit: 25\n\nEast; Sales: 7"
    assert [rows[s:e].strip() for s, e in sentence_spans(rows)] == rows.split("\n\n")
    # A short title above the rows, and short lines of a form, still join what follows them.
    titled = "Stanley Cups\n\n" + rows
    assert titled[slice(*sentence_spans(titled)[0])].strip() == "Stanley Cups\n\nSouth; Sales: 90; Profit: 4"
    form = "Name: Bob\nAge: 3\nCity: Springfield, by the river"
    assert len(sentence_spans(form)) == 1


def test_a_chosen_list_item_is_read_with_the_sentence_that_opens_its_list():
    passage = split_passages([LAYOFF])[0]
    item = next(i for i in range(len(passage.spans)) if "满十五年" in passage.sentence(i))
    assert passage.lead_in(item) == 0 and passage.lead_in(0) is None
    question = "在单位连续工作满十五年，离退休不足五年"
    chosen = choose(question, [LAYOFF], budget=140, count=approx_token_count)[0]
    assert chosen.chosen == [0, item]
    assert chosen.excerpt().startswith("第四十二条 劳动者有下列情形之一的") and "不足五年" in chosen.excerpt()
    # Without room for it, the item stands alone.
    assert choose(question, [LAYOFF], budget=100, count=approx_token_count)[0].chosen == [item]


def test_an_item_without_a_lead_in_ending_in_a_colon_has_none():
    text = ("Bring the following things on every hike in the park.\n\n(a) A map of the trail and a compass, even "
            "where the trail is marked.\n\n(b) Water for the whole day, at least two litres for each person.")
    passage = split_passages([text])[0]
    assert [passage.lead_in(i) for i in range(len(passage.spans))] == [None, None, None]
    listed = text.replace("park.", "park:")
    passage = split_passages([listed])[0]
    assert [passage.lead_in(i) for i in range(len(passage.spans))] == [None, 0, 0]
    assert split_passages([listed], [True])[0].lead_in(1) is None  # table rows
    ruled = split_passages(["KNOWLES v. MIRZAYANCE, No. 07-1315, argued before the court :\n- - - - - - - - - - - x "
                            "Washington, D.C., Tuesday, January 13, 2009."])[0]
    assert [ruled.lead_in(i) for i in range(len(ruled.spans))] == [None] * len(ruled.spans)  # a rule, not a bullet
