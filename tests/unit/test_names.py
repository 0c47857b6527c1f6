"""Names of an answer checked against its passages word by word (server/chat/names.py)."""

from __future__ import annotations

import pytest

from server.chat.names import unsupported_names

PASSAGES = ["Norwich City Football Club is an English professional football club based in Norwich, Norfolk.",
            "The club plays in the Championship, the second tier of English football, and its rivals are Ipswich Town."]


@pytest.mark.parametrize(("answer", "missing"), [
    ("According to [1], Norwich City plays its home games at Carrow Road.", ["Carrow Road"]),
    ("Carrow Road is the home of Norwich City [1].", ["Carrow Road"]),  # a name first in its sentence
    ("It was founded by John Smith in the United Kingdom of Great Britain [2].",
     ["John Smith", "United Kingdom of Great Britain"]),
    ("The club's rivals are Ipswich Town [2]. Their league is the Championship.", []),
    ("Norwich city football club is based in norfolk [1].", []),
    ("According to [1], the club plays in the Premier League and the Championship [2].", ["Premier League"]),
    ("No, it does not say.", []),
    ("Streamed from the garden. About 300 people watch.", []),  # a sentence's first word alone
    ("Wembley is their ground [1].", []),  # ... even where it is a name: the check stays narrow
])
def test_names_are_held_when_every_word_is_in_a_passage_or_the_question(answer, missing):
    assert unsupported_names(answer, [*PASSAGES, "Who are Norwich's rivals?"]) == missing


def test_case_order_plurals_and_possessives_do_not_make_a_name_unheld():
    passages = ["The Federal Aviation Administration (FAA) issued the directive to Boeing."]
    assert unsupported_names("According to [1], the FAA's directive went to Boeing, as the Aviation "
                             "Administration (Federal) said.", passages) == []
    assert unsupported_names("The Boeings were grounded by the FAA [1].", passages) == []
    assert unsupported_names("The FAA fined Airbus [1].", passages) == ["Airbus"]


def test_a_name_with_a_footnote_mark_run_into_it_is_held():
    authors = ["LayoutParser: A Unified Toolkit\nZejiang Shen1 ( ), Ruochen Zhang2, Melissa Dell3"]
    assert unsupported_names("According to [1], the authors are Zejiang Shen, Ruochen Zhang and Melissa Dell.",
                             authors) == []
    assert unsupported_names("According to [1], it was written by Zejiang Li.", authors) == ["Zejiang Li"]


def test_a_name_run_together_with_other_words_in_a_passage_is_held():
    header = ["SpearmanCorrelationCoefficient: 1Freq Ki67CD8frequencyUnstim; 1Freq pDCfrequencyUnstim: 0.31"]
    assert unsupported_names("According to [1], the Spearman correlation is 0.31.", header) == []
    assert unsupported_names("According to [1], the Pearson correlation is 0.31.", header) == ["Pearson"]


def test_chinese_answers_and_a_question_s_own_names_are_left_alone():
    assert unsupported_names("根据资料[1]，试用期不得超过二个月。", ["劳动合同期限一年以上不满三年的，试用期不得超过二个月"]) == []
    assert unsupported_names("根据资料[1]，Apple 的保修期是一年。", ["保修期为一年"]) == ["Apple"]
    assert unsupported_names("It is Carrow Road [1].", ["Where is Carrow Road?"]) == []
