"""The logit bias against the question's own words (chat.question_word_penalty)."""

from __future__ import annotations

from server.chat.question_words import question_word_bias
from server.llm.tokenizers import Tokenizer

# One token per character, ids by code point: enough to see which characters are penalised.
CHARS = Tokenizer(encode=lambda text: [ord(c) for c in text], decode=chr)


def penalised(bias: dict[int, float]) -> str:
    return "".join(sorted(chr(token) for token in bias))


def test_only_the_question_s_tokens_that_no_passage_holds_are_lowered():
    bias = question_word_bias(CHARS, "老板让我们一周休几天？", ["用人单位应当保证劳动者每周至少休息一日。", "根据资料["], 6.0)
    assert penalised(bias) == "".join(sorted("老板让我们几天"))  # 一 and 周 are in the passage
    assert set(bias.values()) == {-6.0}


def test_punctuation_and_spaces_keep_their_chances():
    bias = question_word_bias(CHARS, "Why, then?  「哪条」", ["a passage"], 3.0)
    assert penalised(bias) == "".join(sorted(set("Whytn哪条")))  # e is in the passage


def test_no_penalty_no_bias():
    assert question_word_bias(CHARS, "老板让我们休几天？", [], 0.0) == {}


def test_a_question_in_the_passages_own_words_is_left_alone():
    assert question_word_bias(CHARS, "每周至少休息", ["用人单位应当保证劳动者每周至少休息一日。"], 6.0) == {}
