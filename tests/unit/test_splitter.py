"""Splitter: structure first (headings, law articles), then paragraphs, sentences, clauses, characters."""

from __future__ import annotations

import json
import math
import re
import zipfile

import pytest

from server.errors import InvalidInput
from server.knowledge_base.loaders import load_file
from server.knowledge_base.splitter import chunk_text_with_headings, split_documents, splitter_name
from server.knowledge_base.types import Chunk, LoadedDoc

ARTICLE_LINE = re.compile(r"^(?:\*\*)?第[零〇一二三四五六七八九十百千\d]+条(?:\*\*)?\s")


def _doc(text: str, **metadata) -> LoadedDoc:
    return LoadedDoc(text=text, metadata={"source": "test.md", **metadata})


def _articles(markdown: str) -> list[str]:
    """Articles of a law, parsed independently of the splitter: from a 第X条 line to the next article or heading."""
    articles: list[list[str]] = []
    current: list[str] | None = None
    for line in markdown.splitlines():
        if ARTICLE_LINE.match(line):
            current = [line]
            articles.append(current)
        elif line.startswith("#"):
            current = None
        elif current is not None:
            current.append(line)
    return [re.sub(r"\n{3,}", "\n\n", "\n".join(a)).strip() for a in articles]


def _normalized(chunks: list[Chunk]) -> None:
    for chunk in chunks:
        assert chunk.text == chunk.text.strip() and chunk.text
        assert "\n\n\n" not in chunk.text


# ------------------------------------------------------------ real laws


@pytest.mark.parametrize(("size", "overlap"), [(500, 50), (200, 30)])
def test_laws_articles_are_whole_in_exactly_one_chunk_and_no_chunk_is_too_long(shared_data, size, overlap):
    checked = 0
    for path in sorted((shared_data / "docs/zh/laws").glob("*.md")):
        docs = load_file(path)
        chunks = split_documents(docs, size, overlap)
        assert all(len(c.text) <= size for c in chunks), path.name
        assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
        _normalized(chunks)
        for article in _articles(docs[0].text):
            if len(article) <= size:
                holders = [c for c in chunks if article in c.text]
                assert len(holders) == 1, f"{path.name}: {article[:30]} in {len(holders)} chunks"
                checked += 1
    assert checked > 1500 if size == 500 else checked > 1000


def test_law_heading_paths_follow_markdown_sections(shared_data):
    docs = load_file(shared_data / "docs/zh/laws/社会法_劳动法(2018-12-29).md")
    chunks = split_documents(docs, 500, 50)
    [holder] = [c for c in chunks if "第十六条 劳动合同是劳动者与用人单位确立劳动关系" in c.text]
    assert holder.metadata["heading_path"] == ["中华人民共和国劳动法", "第三章 劳动合同和集体合同"]
    assert chunks[0].metadata["heading_path"] == ["中华人民共和国劳动法"]
    assert chunks[0].text.startswith("1994年7月5日")


def test_civil_code_heading_paths_include_sub_books_and_chapters(shared_data):
    docs = load_file(shared_data / "docs/zh/laws/民法典_合同编.md")
    chunks = split_documents(docs, 500, 50)
    [holder] = [c for c in chunks if "第四百六十四条 合同是民事主体" in c.text]
    assert holder.metadata["heading_path"] == ["合同编", "第一分编 通则", "第一章 一般规定"]


def test_long_articles_are_split_with_overlap_inside_the_article_only(shared_data):
    docs = load_file(shared_data / "docs/zh/laws/民法典_合同编.md")
    size = 150
    chunks = split_documents(docs, size, 30)
    long_articles = [a for a in _articles(docs[0].text) if len(a) > size]
    assert long_articles
    for article in long_articles[:20]:
        head = article.split()[0] + " "
        pieces = [c for c in chunks if c.text.startswith(head)]
        assert len(pieces) == 1, head
        index = pieces[0].metadata["chunk_index"]
        # The article's pieces follow each other; none reaches into the next article.
        following = chunks[index + 1 :]
        body = [pieces[0]]
        for chunk in following:
            if ARTICLE_LINE.match(chunk.text) or chunk.metadata["heading_path"] != pieces[0].metadata["heading_path"]:
                break
            body.append(chunk)
        assert len(body) >= 2
        assert all(chunk.text in article for chunk in body)
        assert all(len(chunk.text) <= size for chunk in body)


# ------------------------------------------------------------ synthetic structure


PLAIN_LAW = """中华人民共和国测试法

第一章 总则

**第一条** 为了测试，制定本法。

**第二条** 本法适用于测试。

第二章 细则

第一节 一般规定

第三条 测试应当认真。

第四条 {long}

第五条 最后一条。
"""


def test_plain_text_chapter_lines_become_heading_paths_and_bold_articles_are_units():
    long = "；".join(f"第{i}项内容需要被仔细检查并且记录在案" for i in range(1, 13)) + "。"
    text = PLAIN_LAW.format(long=long)
    chunks = split_documents([_doc(text)], 120, 20)
    by_start = {c.text.split()[0]: c for c in chunks}
    assert by_start["**第一条**"].text == "**第一条** 为了测试，制定本法。\n\n**第二条** 本法适用于测试。"
    assert by_start["**第一条**"].metadata["heading_path"] == ["第一章 总则"]
    assert by_start["第三条"].metadata["heading_path"] == ["第二章 细则", "第一节 一般规定"]
    assert by_start["第三条"].text == "第三条 测试应当认真。"
    assert by_start["第五条"].text == "第五条 最后一条。"
    article4 = [c for c in chunks if c.metadata["heading_path"][-1:] == ["第一节 一般规定"] and "项内容" in c.text]
    assert len(article4) >= 3
    assert all(len(c.text) <= 120 for c in chunks)
    # Overlap inside article 4 starts at a clause boundary (after "；").
    for previous, current in zip(article4, article4[1:]):
        assert current.text.startswith("第") and "项内容" in current.text[:6]
        assert current.metadata["start"] < previous.metadata["start"] + len(previous.text)


def test_short_articles_are_packed_and_overlap_never_crosses_articles():
    text = "\n\n".join(f"第{n}条 这是第{n}条的内容，用于测试打包。" for n in "一二三四五六七八九十")
    chunks = split_documents([_doc(text)], 60, 20)
    joined = "\n\n".join(c.text for c in chunks)
    assert joined == text  # packed articles, nothing repeated, nothing lost
    assert all(c.text.startswith("第") for c in chunks)
    assert max(len(c.text) for c in chunks) <= 60 and len(chunks) < 10


def test_markdown_sections_do_not_share_chunks_or_overlap():
    text = "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer. It takes a minute.\n\n## Use\n\nOpen the app."
    chunks = split_documents([_doc(text)], 200, 50)
    assert [(c.text, c.metadata["heading_path"]) for c in chunks] == [
        ("Intro text.", ["Guide"]),
        ("Run the installer. It takes a minute.", ["Guide", "Install"]),
        ("Open the app.", ["Guide", "Use"]),
    ]
    assert chunk_text_with_headings(chunks[1]) == "Guide > Install\nRun the installer. It takes a minute."


def test_heading_with_no_content_is_kept_and_fenced_hashes_are_not_headings():
    text = "# Title\n\n## Empty section\n\n## Code\n\n```bash\n# not a heading\necho hi\n```\n"
    chunks = split_documents([_doc(text)], 200, 0)
    assert [(c.text, c.metadata["heading_path"]) for c in chunks] == [
        ("Empty section", ["Title", "Empty section"]),
        ("```bash\n# not a heading\necho hi\n```", ["Title", "Code"]),
    ]


# ------------------------------------------------------------ recursive splitting


def test_english_splits_on_sentences_not_decimals_or_abbreviations():
    sentences = [
        "Mr. Smith measured pi as 3.14 in the U.S. lab yesterday.",
        "The result, e.g. the value above, matched the textbook.",
        "Dr. Jones disagreed!",
        "Was the instrument calibrated?",
        "Nobody knew.",
    ]
    text = " ".join(sentences * 4)
    chunks = split_documents([_doc(text)], 130, 0)
    assert all(len(c.text) <= 130 for c in chunks)
    pieces = [s for c in chunks for s in [c.text]]
    for piece in pieces:
        assert piece.endswith((".", "!", "?")), piece
        assert not piece.startswith(("Smith", "14", "lab", "the value", "Jones")), piece
    assert " ".join(pieces) == text


def test_chinese_sentences_then_clauses_then_hard_cut():
    sentence = "劳动者享有平等就业和选择职业的权利，取得劳动报酬的权利，休息休假的权利。"
    text = sentence * 3 + "没有任何标点的超长句子" * 20
    chunks = split_documents([_doc(text)], 40, 0)
    assert all(len(c.text) <= 40 for c in chunks)
    assert "".join(c.text for c in chunks) == text
    assert chunks[0].text == "劳动者享有平等就业和选择职业的权利，取得劳动报酬的权利，休息休假的权利。"


def test_overlap_repeats_the_previous_tail_at_a_sentence_boundary():
    text = "".join(f"第{i}句话写在这里。" for i in range(1, 31))
    chunks = split_documents([_doc(text)], 50, 15)
    assert all(len(c.text) <= 50 for c in chunks)
    for previous, current in zip(chunks, chunks[1:]):
        tail = text[current.metadata["start"] : previous.metadata["start"] + len(previous.text)]
        assert 0 < len(tail) <= 15 and tail.endswith("。") and previous.text.endswith(tail)
        assert current.text.startswith("第")
    assert text.endswith(chunks[-1].text)


def test_hard_cut_of_a_long_english_word_run_respects_words():
    text = " ".join(["alpha", "beta", "gamma", "delta"] * 30)
    chunks = split_documents([_doc(text)], 50, 0)
    assert all(len(c.text) <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_token_unit_uses_the_counter():
    def count(text: str) -> int:
        cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
        words = len(re.findall(r"[A-Za-z0-9]+", text))
        return cjk + math.ceil(words * 1.3)

    text = "The contract ends on 2024-12-31. 合同期满终止。" * 30
    chunks = split_documents([_doc(text)], 40, 8, unit="tokens", token_counter=count)
    assert len(chunks) > 5
    assert all(count(c.text) <= 40 for c in chunks)
    assert any(len(c.text) > 40 for c in chunks)  # measured in tokens, not characters


def test_metadata_keeps_doc_fields_and_counts_chunks_over_the_whole_file():
    docs = [
        LoadedDoc("第一页的内容。" * 10, {"source": "a.pdf", "page": 1, "format": "pdf"}),
        LoadedDoc("\n\n  Page two text.  \n", {"source": "a.pdf", "page": 2, "format": "pdf"}),
    ]
    chunks = split_documents(docs, 30, 5)
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert {c.metadata["page"] for c in chunks} == {1, 2}
    last = chunks[-1]
    assert last.text == "Page two text."
    assert last.metadata == {
        "source": "a.pdf", "page": 2, "format": "pdf", "chunk_index": len(chunks) - 1, "heading_path": [], "start": 4,
    }  # fmt: skip
    for chunk in chunks:
        doc = docs[chunk.metadata["page"] - 1]
        assert doc.text[chunk.metadata["start"] :].startswith(chunk.text[:5])


def test_whitespace_is_normalised_and_blank_docs_give_no_chunks():
    chunks = split_documents([_doc("  a\r\n\r\n\r\n\r\nb   \n\n\n\nc  "), _doc(" \n\t ")], 100, 0)
    assert [c.text for c in chunks] == ["a\n\nb\n\nc"]
    assert split_documents([], 100, 10) == []


@pytest.mark.parametrize(
    ("size", "overlap", "unit", "counter"),
    [(0, 0, "chars", None), (100, 100, "chars", None), (100, -1, "chars", None), (100, 10, "tokens", None),
     (100, 10, "words", None)],
)  # fmt: skip
def test_bad_parameters_are_invalid_input(size, overlap, unit, counter):
    with pytest.raises(InvalidInput):
        split_documents([_doc("text")], size, overlap, unit=unit, token_counter=counter)


def test_splitter_name_names_parameters():
    assert splitter_name(500, 50, "chars") == "structure-recursive:500/50:chars"


def test_squad_paragraphs_split_at_sentence_ends(shared_data):
    with zipfile.ZipFile(shared_data / "qa/en/squad_v1.1/dev-v1.1.json.zip") as archive:
        name = next(n for n in archive.namelist() if n.endswith(".json"))
        data = json.loads(archive.read(name))
    contexts = [p["context"] for article in data["data"][:5] for p in article["paragraphs"]][:60]
    chunks = split_documents([_doc(c) for c in contexts], 300, 40)
    assert all(len(c.text) <= 300 for c in chunks)
    ends = sum(c.text.rstrip('"”)').endswith((".", "!", "?")) for c in chunks)
    assert ends / len(chunks) > 0.9
    decimals = [m.group() for c in contexts for m in re.finditer(r"\d+\.\d+", c)]
    assert decimals and all(any(d in ch.text for ch in chunks) for d in decimals)
