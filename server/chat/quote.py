"""The clause a knowledge-base answer quotes first (``chat.quote_evidence``).

A 1.5B model given the right passage still concludes from the wrong sentence of it for about a third of the
everyday questions over the laws. The sentence that best bears on the question (by the chat model's score when
the evidence was scored, else by shared words and meaning) is the one most likely to answer, so the answer is
begun for the model with that sentence quoted, after the number and title of its passage and, in a law, its
article: 「根据资料[1]，《中华人民共和国劳动合同法》第十九条：“同一用人单位与同一劳动者只能约定一次试用期。”」.
The model then writes the conclusion for the question from it; the user reads the clause the answer rests on.
A list item is quoted after the sentence that opens its list: 「劳动者有下列情形之一的，用人单位不得……解除劳动合同:……
（五）在本单位连续工作满十五年，且距法定退休年龄不足五年的」.
The best sentence by shared words and meaning holds the clause that answers for only about half the questions,
and the second best from another article for a fifth more, so two are quoted (``chat.quoted_sentences``), then
the conclusion is begun (「因此，」): without it the model goes on quoting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from server.chat.evidence import Passage, is_list_item
from server.knowledge_base.bm25 import query_tokens, tokenize
from server.knowledge_base.splitter import article_at

# Template of the quoting lead; {n} passage number, {where} its title and article, {sentence} the clause.
QUOTE_TEMPLATE = "kb_answer_quote"
# Each further quote after the first (chat.quoted_sentences), same values.
QUOTE_MORE_TEMPLATE = "kb_answer_quote_more"
# What follows several quotes: the conclusion's first word.
QUOTES_END_TEMPLATE = "kb_answer_quotes_end"
# Longest sentence quoted, in characters: a longer one is a list or a table row, not a clause to quote.
QUOTE_MAX_CHARS = 240
# Between a list's lead-in and the item quoted, where items stand between them.
OMISSION = "……"
# Links and addresses, which a sentence may share a word with ("aircraft.com" for "aircraft") and say nothing.
_LINK = re.compile(r"(?:https?://|www\.)\S*|\S+\.(?:com|org|net|gov|edu|int|io|cn)\b\S*", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")
_CHINESE = re.compile(r"[\u4e00-\u9fff]")
# English words that other languages written in Latin letters seldom use (not "in", "to", "he", "an", "you",
# which romanised Chinese or European languages share): a sentence with none of them is not read as English.
_ENGLISH_WORDS = frozenset(
    "the of and for with that this from are was were have has had which what when where who how will should must "
    "shall their they there than but also after before not been being would could into its our your these those "
    "any all".split())
# A line break before what may be an article's label: where a sentence running across two articles is cut.
_LINE_ARTICLE = re.compile(r"\n\s*(?=(?:\*\*)?第)")


def quoted_sentence(passage: Passage, index: int, question: str) -> tuple[str | None, str]:
    """The article the sentence ``index`` of ``passage`` stands in (None outside a law) and the sentence, without
    the article's label when it opens with it.

    A short sentence is cut together with the next (sentences.py), which may open the next article: the two
    articles' parts are then told apart, and the one sharing more of the question's words is quoted."""
    start, end = passage.spans[index]
    parts = [(start, end)]
    for match in _LINE_ARTICLE.finditer(passage.text, start + 1, end):
        parts = [*parts[:-1], (parts[-1][0], match.start()), (match.start(), end)]
    if len(parts) > 1:
        asked = set(query_tokens(question))
        shared = [len(asked & set(tokenize(passage.text[s:e]))) for s, e in parts]
        start, end = parts[shared.index(max(shared))]
    while start < end and passage.text[start].isspace():
        start += 1
    sentence = " ".join(passage.text[start:end].split())
    article = article_at(passage.text, start)
    if article and sentence.startswith(article):
        sentence = sentence[len(article):].strip()
    elif article and sentence.startswith(f"**{article}**"):
        sentence = sentence[len(article) + 4:].strip()
    return article, sentence


def reads_as_prose(sentence: str) -> bool:
    """Whether a sentence says something in words a reader of Chinese or English can follow, not only a link, an
    address or figures: four Chinese characters or more, or three words or more outside its links, one of them a
    common English word (a line of a file in many languages may come closest in another language)."""
    text = _LINK.sub(" ", sentence)
    if len(_CHINESE.findall(text)) >= 4:
        return True
    words = [word.lower() for word in _WORD.findall(text)]
    return len(words) >= 3 and not _ENGLISH_WORDS.isdisjoint(words)


def quote_where(lang: str, title: str, article: str | None) -> str:
    """The passage's title and article as the quote names them: 《title》第十九条 / title, 第十九条."""
    if lang == "zh":
        return f"《{title.strip('《》')}》{article or ''}"
    return f"{title}, {article}" if article else title


def quote_values(lang: str, number: int, title: str, passage: Passage, index: int,
                 question: str) -> dict[str, str] | None:
    """The values of the quoting template for sentence ``index`` of ``passage`` (numbered ``number``): ``n``,
    ``where`` and ``sentence``; None when the sentence is too long or too short to quote."""
    article, sentence = quoted_sentence(passage, index, question)
    if not 4 <= len(sentence) <= QUOTE_MAX_CHARS:
        return None
    # A list item is quoted after the sentence that opens its list, which says what the items are (not the part of
    # a sentence that runs into the next article).
    lead = passage.lead_in(index) if is_list_item(sentence) else None
    if lead is not None:
        opening = quoted_sentence(passage, lead, question)[1]
        joined = f"{opening}{'' if lead == index - 1 else OMISSION}{sentence}"
        sentence = joined if len(joined) <= QUOTE_MAX_CHARS else sentence
    return {"n": str(number), "where": quote_where(lang, title, article), "sentence": sentence}


def distinct_articles(passages: Sequence[Passage], documents: Sequence[str], ranked: Sequence[tuple[int, int]],
                      count: int) -> list[tuple[int, int]]:
    """The first ``count`` of ``ranked`` (passage rank, sentence index) pairs that stand in different law articles
    (an article of the same document, ``documents[rank]``, is one however many passages hold it), in different
    rows of a table, or, elsewhere, in different passages, and that are not the same sentence."""
    seen: set[tuple[str | int, str | int | None]] = set()
    said: set[str] = set()
    out: list[tuple[int, int]] = []
    for rank, index in ranked:
        passage = passages[rank]
        article = article_at(passage.text, passage.spans[index][0])
        key: tuple[str | int, str | int | None] = (
            (documents[rank], article) if article else (rank, index) if passage.table else (rank, None))
        sentence = passage.sentence(index)
        if key in seen or sentence in said:
            continue
        seen.add(key)
        said.add(sentence)
        out.append((rank, index))
        if len(out) == count:
            break
    return out
