"""Questions about dropped files as a whole: "What is this document about?", "Summarise it", 「这份文件讲了什么？」,
and about what a document's opening states: who wrote it, its title, when it was published or adopted ("Who wrote
this paper?", 「劳动合同法是哪一年通过的？」).

Such a question names nothing the file holds, so a search finds passages at random and the relevance check
declines it (a question for the author found the abstract of a paper, not the names under its title). In a
conversation with files (file chat), knowledge-base chat answers it from the opening passages of those files
instead (``KnowledgeBaseManager.opening_chunks``), where a document says what it is. The same question about a
file named in it ("What is the Norwich City file about?", 「民法典婚姻家庭编讲了什么？」) is answered from the
openings of the files of the knowledge base whose names hold that name. A question for when a document came out
is read where the document dates itself: its opening, else the first dateline further on ("Thursday, August 6,
2020", a PDF's running header that its text holds in mid-page; ``dated_first``).

A question counts when it asks for a summary, what the file is about or its front matter and says nothing else:
once the asking words, the words for a document and the fillers are taken out, nothing may remain ("Summarise the
section on fees" and "What does the contract say about termination?" ask about something in it, and are
searched).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import NamedTuple

from server.knowledge_base.bm25 import tokenize
from server.knowledge_base.manager import KnowledgeBaseManager, SearchHit
from server.knowledge_base.names import is_conversation_kb, split_kb_names

_DOCUMENT = (r"(?:document|doc|file|pdf|paper|article|report|text|attachment|upload|book|chapter|presentation"
             r"|deck|slides?|spreadsheet|workbook|sheet|contract|letter|newsletter|memo|notice|essay|manual|handbook"
             r"|page|one)s?")
# Up to three words naming a document before the word for it ("the Norwich City file").
_NAME = r"(?:[\w'-]+\s+){0,3}"
_EN_ASKS = re.compile(
    r"\bsummar(?:y|ies|i[sz]e[sd]?|i[sz]ing)\b|\boverview\b|\btl;?dr\b|\bgist\b|\bsynopsis\b"
    r"|\b(?:main|key)\s+(?:points?|ideas?|topics?|takeaways?|findings?|messages?|contents?)\b"
    r"|\bwhat(?:'s|\s+is|\s+are)\s+(?:it|this|that|these|they)\s+about\b"
    rf"|\bwhat(?:'s|\s+is|\s+are)\s+(?:this|the|these|that|those|my)\s+{_NAME}{_DOCUMENT}\s+about\b"
    rf"|\bwhat\s+(?:does|do)\s+(?:it|they|(?:this|the|these|that|those|my)\s+{_NAME}{_DOCUMENT})\s+"
    r"(?:say|cover|contain|discuss|describe|explain|talk\s+about)\b"
    rf"|\bwhat(?:'s|\s+is)\s+in\s+(?:it|(?:this|the|that|my)\s+{_NAME}{_DOCUMENT})\b",
    re.IGNORECASE,
)
# Asking for what a document's opening states: its authors, its title, when it was published.
_EN_WHEN = re.compile(
    r"\bwhen\s+(?:was|were|did)\b.*\b(?:published|written|issued|adopted|released|publish|write|issue|adopt"
    r"|release)\b|\bwhat\s+(?:is\s+)?(?:the\s+)?date\s+of\b",
    re.IGNORECASE,
)
_EN_FRONT = re.compile(
    r"\bwho\s+(?:wrote|authored|drafted|published|issued)\b|\bauthors?\b|\bwritten\s+by\b|\btitle\s+of\b"
    rf"|\bwhat(?:'s|\s+is)\s+(?:it|this|that|the\s+[\w'-]+)\s+(?:called|titled)\b|{_EN_WHEN.pattern}",
    re.IGNORECASE,
)
# A word, hyphenated parts kept together ("10-k", "half-year").
_EN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?(?:-[a-z0-9]+)*")
_EN_FILLERS = frozenset(
    "a an the this that these those it its they them my me i you your we us our please can could would will "
    "kindly just quick quickly short shortly brief briefly simple simply give tell write provide make show "
    "what what's whats is are was does do did say says about in of on for to with from and or "
    "summary summaries summarise summarize summarised summarized summarising summarizing overview tldr tl dr "
    "gist synopsis main key point points idea ideas topic topics takeaway takeaways finding findings message "
    "messages content contents cover covers contain contains discuss discusses describe describes explain "
    "explains talk talks few one two three sentence sentences paragraph paragraphs line lines words word "
    "bullet bullets list overall whole entire all attached uploaded above pasted new latest".split()
)
_EN_FRONT_FILLERS = frozenset(
    "who whom wrote write written writer writers author authors authored drafted publish published publisher issue "
    "issued adopt adopted release released by title titled called name when was were did date year".split()
)
_EN_DOCUMENT_WORD = re.compile(rf"^{_DOCUMENT}$")

_ZH_ASKS = re.compile(
    "总结|概括|概述|摘要|归纳|大意|要点|重点|主要内容|主旨|主题|梗概|简介|介绍一下|"
    "讲了什么|讲了些什么|讲的什么|讲的是什么|讲什么|说了什么|说了些什么|说的什么|说的是什么|写了什么|写的什么|写的是什么|"
    "是关于什么|关于什么|内容是什么|什么内容|有什么内容|有哪些内容|是什么东西|核心观点|主要观点|什么意思"
)
# The asking words, the words pointing at the files at hand and the fillers; what remains names the subject.
_ZH_ASIDE = re.compile(
    "总结|概括|概述|摘要|归纳|大意|要点|重点|主要|内容|主旨|主题|梗概|简介|介绍|核心|观点|意思|讲|说|写|关于|什么|哪些|东西|"
    "这份|这个|这篇|这本|这张|这部|这些|那份|那个|那篇|那部|该|此|上传的|上传|附件|刚才|刚刚|我发的|发的|"
    "请|帮我|帮忙|给我|麻烦|能不能|可以|一下|(?<=总结)下|(?<=概括)下|简单|简要|简短|大概|大致|用一句话|用几句话|一句话|"
    "有什么|有哪些|是什么|是关于|的|了|些|吗|呢|吧|啊|呀"
)
# Asking when a document was adopted, published or amended (「哪一年通过」, 「什么时候修改的」), or who wrote it.
_ZH_WHEN = "什么时候|何时|哪一年|哪年|哪一天|哪天|几几年"
_ZH_ISSUED = "通过|发布|公布|颁布|制定|修改|修正|修订|发表|出版"
_ZH_DATED = re.compile(f"(?:{_ZH_WHEN}).{{0,4}}(?:{_ZH_ISSUED}|写)")
_ZH_FRONT = re.compile(f"作者|谁写的|是谁写|谁撰写|谁起草|标题|题目|{_ZH_DATED.pattern}")
_ZH_FRONT_ASIDE = re.compile(
    f"作者|是谁|谁|写的|撰写|起草|标题|题目|{_ZH_WHEN}|{_ZH_ISSUED}|后来|最近|曾经|有没有|过|是|在|于"
)
_ZH_DOCUMENT = re.compile("文件|文档|文章|材料|资料|论文|报告|合同|协议|表格|法律|法规|条例|章程|手册|书|稿|页")
# A full date as documents print it: "August 6, 2020", "6 August 2020", "2020-08-06", 「2020年8月6日」.
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
          r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_EN_DATE = rf"{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}\b|\b\d{{1,2}}\s+{_MONTH}\s+\d{{4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b"
_ZH_DATE = r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
_FULL_DATE = re.compile(rf"\b(?:{_EN_DATE})|{_ZH_DATE}")
# A date with its weekday, as a periodical's running header or a letter prints the day it came out: "Thursday,
# August 6, 2020", 「2020年8月6日 星期四」; other dates in a text are mostly deadlines and events.
_DATELINE = re.compile(
    rf"\b(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?\s+(?:{_EN_DATE})|(?:{_ZH_DATE})\s*(?:星期|周)[一二三四五六日天]"
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# What a Chinese subject keeps (characters, letters, digits), and what a file name's parts are joined by.
_NAME_CHARS = re.compile(r"[\w\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_SEPARATORS = re.compile(r"[\s_\-—–·.()（）\[\]【】]+")


def overview_subject(question: str) -> str | None:
    """What ``question`` asks the overview of: "" for the files at hand ("What is this document about?"), the
    words left once the asking words, document words and fillers are taken out ("norwich city" of "What is the
    Norwich City file about?", 「劳动合同法」 of 「劳动合同法主要讲了什么？」 and of 「劳动合同法是哪一年通过的？」), or None
    when it asks for neither a summary nor the front matter."""
    text = unicodedata.normalize("NFKC", question).strip()
    if _CJK.search(text):
        front = _ZH_FRONT.search(text)
        if not front and not _ZH_ASKS.search(text):
            return None
        rest = "".join(_NAME_CHARS.findall(_ZH_ASIDE.sub("", _ZH_FRONT_ASIDE.sub("", text) if front else text)))
        return rest if _ZH_DOCUMENT.sub("", rest) else ""
    front = _EN_FRONT.search(text)
    if not front and not _EN_ASKS.search(text):
        return None
    fillers = _EN_FILLERS | _EN_FRONT_FILLERS if front else _EN_FILLERS
    words = _EN_WORD.findall(text.lower())
    return " ".join(w for w in words if w not in fillers and not _EN_DOCUMENT_WORD.match(w))


def files_named(subject: str, file_names: Sequence[str]) -> list[str]:
    """The files whose names hold ``subject`` (``overview_subject``): in Chinese the subject itself (separators
    aside: 「民法典婚姻家庭编」 names 民法典_婚姻家庭编.md), in English every one of its words, plurals aside ("norwich
    city" names norwich-city.txt, "stanley cup" stanley-cups.xlsx), a hyphenated word either way ("10-k" names
    example-10k.html, "layout-parser" layout-parser-paper.pdf). Too short a subject names none."""
    holds = _holder(subject)
    return [name for name in file_names if holds(PurePath(name).stem)]


def files_titled(subject: str, titles: Mapping[str, str]) -> list[str]:
    """The files (of ``titles``: file name to the document's title) whose titles hold ``subject``, as in
    ``files_named``: a book is asked about by its title ("Winter Sports in Switzerland"), not its file's name."""
    holds = _holder(subject)
    return [name for name, title in titles.items() if title and holds(title)]


def _holder(subject: str) -> Callable[[str], bool]:
    """Whether a file's name or a document's title holds ``subject`` (``files_named``)."""
    if _CJK.search(subject):
        return lambda name: len(subject) >= 2 and subject in _SEPARATORS.sub("", name)
    spellings = [set(tokenize(subject)), set(tokenize(subject.replace("-", "")))]
    spellings = [words for words in spellings if words and any(len(w) >= 3 for w in words)]
    return lambda name: any(words <= set(tokenize(name)) for words in spellings)


def asks_date(question: str) -> bool:
    """Whether ``question`` asks when a document was published, issued or adopted."""
    text = unicodedata.normalize("NFKC", question)
    return bool((_ZH_DATED if _CJK.search(text) else _EN_WHEN).search(text))


def holds_date(text: str) -> bool:
    """Whether ``text`` states a full date ("Thursday, August 6, 2020", 「2021年8月20日」)."""
    return bool(_FULL_DATE.search(text))


# How many chunks past the openings a question for a date looks through for one: a first page's worth.
DATE_LOOKAHEAD = 10


def dateline(text: str) -> str | None:
    """The paragraph of ``text`` that dates it with a weekday (``_DATELINE``), after the two before it (a running
    header's "Federal Register", "Vol. 85, No. 152"); None when it has none."""
    found = _DATELINE.search(text)
    if found is None:
        return None
    paragraphs = text[:found.end()].split("\n\n")
    return "\n\n".join(paragraphs[-3:]).strip()


def dated_first(hits: Sequence[SearchHit], limit: int) -> list[SearchHit]:
    """The first ``limit`` of ``hits`` (a document's opening chunks, then ``DATE_LOOKAHEAD`` more) for a question
    for its date: as they are when one states a full date, else with the first dateline further on
    (``dateline``) put first. A PDF's running header, which dates it, may come out of the text in mid-page."""
    opening = list(hits[:limit])
    if any(holds_date(hit.text) for hit in opening):
        return opening
    for hit in hits[limit:]:
        line = dateline(hit.text)
        if line:
            return [hit.model_copy(update={"text": line}), *opening[:limit - 1]]
    return opening


class Overview(NamedTuple):
    """The files an overview question asks about: in knowledge base ``kb``, ``files`` (None: all of them); ``dated``
    when it asks when they were published or adopted."""

    kb: str
    files: list[str] | None
    dated: bool = False


def overview_of(kb: KnowledgeBaseManager, kb_name: str, question: str) -> Overview | None:
    """Which files ``question`` asks the overview of: the files dropped into the conversation (a knowledge base of
    ``kb_name``) for a question about the files at hand, the files of ``kb_name`` whose names (else whose titles)
    hold the name it gives, or None: any other question, or no such files."""
    subject = overview_subject(question)
    if subject is None:
        return None
    names = split_kb_names(kb_name)
    if subject == "":
        files_kb = next((name for name in names if is_conversation_kb(name)), None)
        return None if files_kb is None else Overview(files_kb, None, asks_date(question))
    for name in names:
        matched = (files_named(subject, [f.file_name for f in kb.list_files(name) if f.chunk_count])
                   or files_titled(subject, kb.file_titles(name)))
        if matched:
            return Overview(name, matched, asks_date(question))
    return None
