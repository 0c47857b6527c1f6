"""Questions about dropped files as a whole (server/chat/overview.py) and their evidence (evidence.openings)."""

from __future__ import annotations

import pytest

from server.chat.evidence import openings
from server.chat.overview import (asks_date, dated_first, dateline, files_named, files_titled, holds_date,
                                  overview_subject)
from server.knowledge_base.schemas import SearchHit


@pytest.mark.parametrize("question", [
    "What is this document about?", "What are these documents about?", "What's the gist of this?",
    "Can you summarise the attached PDF in three sentences?", "Give me a short overview.", "What is it about?",
    "What are the main points of the paper?", "What does this file contain?", "What is in the spreadsheet?",
    "TL;DR", "这个文件讲了什么？", "帮我总结一下这篇论文的主要观点", "这篇文章的核心观点是什么", "概括一下",
    "上传的材料主要说了什么", "这份资料是关于什么的？", "用一句话总结这份文件", "这部法律主要讲了什么？",
])
def test_questions_about_the_files_as_a_whole(question):
    assert overview_subject(question) == ""


@pytest.mark.parametrize("question", [
    "Summarize the section on fees", "What does the contract say about termination?",
    "What is the summary judgment standard?", "When is the rent due?", "What does the author say about pets?",
    "总结一下费用", "总结一下关于加班的规定", "这份合同的违约金是多少？", "民法典讲了什么", "试用期最长多久？",
    "作者认为加班合法吗", "",
])
def test_questions_about_something_in_them(question):
    assert overview_subject(question) != ""


@pytest.mark.parametrize("question", [
    "Who wrote this document?", "Who are the authors?", "Who is the author of this paper?", "What is it called?",
    "When was this report published?", "这篇论文的作者是谁？", "这份文件是谁写的", "这篇文章是哪一年发表的？",
    "这部法律是哪一年通过的？",
])
def test_questions_about_the_files_front_matter(question):
    assert overview_subject(question) == ""


@pytest.mark.parametrize(("question", "subject"), [
    ("When did the siege end?", None), ("Who won the cup in 1967?", None), ("When was the rent paid?", None),
    ("劳动合同法什么时候施行", None), ("劳动合同法关于试用期是怎么修改的", None),
])
def test_questions_of_when_and_who_about_something_in_the_files(question, subject):
    assert overview_subject(question) == subject


@pytest.mark.parametrize(("question", "subject", "named"), [
    ("Who was the author of the layout parser paper?", "layout parser", ["layout-parser-paper.pdf"]),
    ("When was the Federal Register notice published?", "federal register", ["federal-register-2020-17221.pdf"]),
    ("What is the title of the 10-K report?", "10-k", ["example-10k-1p.html"]),
    ("Summarise the half-year analyses", "half-year analyses", ["2023-half-year-analyses-by-segment.xlsx"]),
    ("劳动合同法是哪一年通过的？", "劳动合同法", ["社会法_劳动合同法(2012-12-28).md"]),
    ("个人信息保护法什么时候通过的", "个人信息保护法", []),
    ("劳动合同法后来修改过吗？什么时候修改的", "劳动合同法", ["社会法_劳动合同法(2012-12-28).md"]),
    ("劳动合同法主要讲了什么？", "劳动合同法", ["社会法_劳动合同法(2012-12-28).md"]),
    ("民法典的婚姻家庭编讲了什么？", "民法典婚姻家庭编", ["民法典_婚姻家庭编.md"]),
    ("民法典讲了什么", "民法典", ["民法典_婚姻家庭编.md", "民法典_总则.md"]),
    ("劳动合同法关于试用期讲了什么", "劳动合同法试用期", []),
    ("What is the Norwich City file about?", "norwich city", ["unstructured_norwich-city.txt"]),
    ("What are the main points of the Stanley Cups spreadsheet?", "stanley cups", ["stanley-cups.xlsx"]),
    ("Summarise the Stanley Cup spreadsheet", "stanley cup", ["stanley-cups.xlsx"]),
    ("Summarize the section on fees", "section fees", []),
    ("这份文件讲了什么？", "", []), ("试用期最长多久？", None, []),
])
def test_the_file_an_overview_question_names(question, subject, named):
    files = ["社会法_劳动合同法(2012-12-28).md", "社会法_劳动法(2018-12-29).md", "民法典_婚姻家庭编.md", "民法典_总则.md",
             "unstructured_norwich-city.txt", "stanley-cups.xlsx", "layout-parser-paper.pdf",
             "federal-register-2020-17221.pdf", "example-10k-1p.html", "2023-half-year-analyses-by-segment.xlsx"]
    assert overview_subject(question) == subject
    assert files_named(subject or "", files) == named


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


@pytest.mark.parametrize(("question", "dated"), [
    ("When was the Federal Register notice published?", True), ("What is the date of this notice?", True),
    ("这部法律是哪一年通过的？", True), ("劳动合同法后来修改过吗？什么时候修改的", True),
    ("Who wrote this paper?", False), ("When did the siege end?", False), ("这篇论文的作者是谁？", False),
])
def test_questions_for_a_documents_date(question, dated):
    assert asks_date(question) is dated


def test_a_dateline_further_on_is_read_first_when_the_opening_states_no_date():
    def hit(n: int, text: str) -> SearchHit:
        return SearchHit(doc_id=str(n), text=text, score=0.0, rank=n, metadata={"page": 1})

    header = ("The most helpful comments reference a section.\n\nFederal Register\n\nVol. 85, No. 152\n\n"
              "Thursday, August 6, 2020\n\nproposal, explain the reason for any change.")
    assert holds_date("by September 21,\n2020.") and holds_date("2021年8月20日通过") and not holds_date("RIN 2120")
    assert dateline(header) == "Federal Register\n\nVol. 85, No. 152\n\nThursday, August 6, 2020"
    assert dateline("comments by September 21, 2020.") is None and dateline("2020年8月6日 星期四 晴") == "2020年8月6日 星期四"
    hits = [hit(1, "Proposed Rules"), hit(2, "Airworthiness Directives"), hit(3, "comments by September 21, 2020."),
            hit(4, header)]
    # A deadline in the opening is a date, and the opening is read as it is; a dateline further on comes first.
    assert [h.doc_id for h in dated_first(hits, 3)] == ["1", "2", "3"]
    undated = [hits[0], hits[1], hit(3, "Docket No. FAA-2020-0686"), hits[2], hits[3]]
    first = dated_first(undated, 3)
    assert [h.doc_id for h in first] == ["4", "1", "2"]
    assert first[0].text.endswith("Thursday, August 6, 2020") and first[0].metadata == {"page": 1}
    assert [h.doc_id for h in dated_first(undated[:4], 3)] == ["1", "2", "3"]


def test_the_file_an_overview_question_names_by_its_documents_title():
    titles = {"unstructured_winter-sports.epub": "The Project Gutenberg eBook of Winter Sports in Switzerland, by E. F. "
                                                 "Benson",
              "民法典_总则.md": "中华人民共和国民法典", "pypdf_Seige_of_Vicksburg.pdf": "", "notes.txt": "Notes"}
    subject = overview_subject("Who wrote the book Winter Sports in Switzerland?")
    assert subject == "winter sports switzerland"
    assert files_named(subject, list(titles)) == []
    assert files_titled(subject, titles) == ["unstructured_winter-sports.epub"]
    assert files_titled("民法典", titles) == ["民法典_总则.md"] and files_titled("poem raven", titles) == []
