"""Questions about dropped files as a whole (server/chat/overview.py) and their evidence (evidence.openings)."""

from __future__ import annotations

import pytest

from server.chat.evidence import openings
from server.chat.overview import asks_for_overview


@pytest.mark.parametrize("question", [
    "What is this document about?", "What are these documents about?", "What's the gist of this?",
    "Can you summarise the attached PDF in three sentences?", "Give me a short overview.", "What is it about?",
    "What are the main points of the paper?", "What does this file contain?", "What is in the spreadsheet?",
    "TL;DR", "这个文件讲了什么？", "帮我总结一下这篇论文的主要观点", "这篇文章的核心观点是什么", "概括一下",
    "上传的材料主要说了什么", "这份资料是关于什么的？", "用一句话总结这份文件",
])
def test_questions_about_the_files_as_a_whole(question):
    assert asks_for_overview(question)


@pytest.mark.parametrize("question", [
    "Summarize the section on fees", "What does the contract say about termination?",
    "What is the summary judgment standard?", "Who wrote this document?", "When is the rent due?",
    "总结一下费用", "这份合同的违约金是多少？", "民法典讲了什么", "试用期最长多久？", "",
])
def test_questions_about_something_in_them(question):
    assert not asks_for_overview(question)


def test_openings_take_each_passage_from_its_start_in_turn():
    minutes = ["These are the minutes of the residents' meeting held in March.",
               "The meeting discussed the new bicycle shed behind the block.",
               "The spring clean-up of the courtyard will be held in April."]
    lease = ["The tenant pays the rent on the fifth day of each month.",
             "The landlord repairs the boiler whenever it breaks down."]
    words = lambda text: len(text.split())  # noqa: E731
    # Every first sentence (11 + 12 words), then the second of the first passage (10); the rest does not fit.
    passages = openings([" ".join(minutes), " ".join(lease)], budget=35, count=words)
    assert [p.chosen for p in passages] == [[0, 1], [0]]
    assert passages[0].excerpt() == " ".join(minutes[:2]) and passages[1].excerpt() == lease[0]
    assert [p.chosen for p in openings([" ".join(minutes), " ".join(lease)], budget=0, count=words)] == [[0, 1, 2],
                                                                                                        [0, 1]]
