"""Loaders: each format on a file generated here and on a real file from the shared data."""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import pytest

from server.errors import InvalidInput, UnsupportedMediaType
from server.knowledge_base.loaders import (
    SUPPORTED_EXTENSIONS,
    LoaderError,
    UnreadableFile,
    UnsupportedFileType,
    load_file,
    loader_name,
)
from server.knowledge_base.splitter import split_documents
from server.knowledge_base.types import LoadOptions
from tests.pdf_support import pdf_file

CJK = re.compile(r"[\u4e00-\u9fff]")


def _pdf_with_text(lines: list[str]) -> bytes:
    """A minimal one-page PDF whose text layer holds the given ASCII lines."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        ops.append(f"({line}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return pdf_file(objects)


# ------------------------------------------------------------ generated fixtures


def test_txt_loads_whole_file_with_source_and_format(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("第一行\n\nsecond line", encoding="utf-8")
    [doc] = load_file(path)
    assert doc.text == "第一行\n\nsecond line"
    assert doc.metadata == {"source": "notes.txt", "format": "txt"}


def test_source_argument_overrides_the_file_name(tmp_path):
    path = tmp_path / "stored.txt"
    path.write_text("hello", encoding="utf-8")
    assert load_file(path, source="sub/original.txt")[0].metadata["source"] == "sub/original.txt"


def test_markdown_keeps_headings_drops_comments_and_sets_title(tmp_path):
    path = tmp_path / "law.md"
    path.write_text("# 中华人民共和国测试法\n\n<!-- INFO END -->\n\n## 第一章 总则\n\n第一条 内容。\n", encoding="utf-8")
    [doc] = load_file(path)
    assert doc.metadata["title"] == "中华人民共和国测试法"
    assert "INFO END" not in doc.text
    assert "## 第一章 总则" in doc.text and "第一条 内容。" in doc.text


def test_csv_rows_render_as_column_value_pairs_with_detected_encoding(tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes("姓名,城市,年龄\n张三,北京,30\n李四,,25\n".encode("gbk"))
    [doc] = load_file(path)
    assert doc.text.split("\n\n") == ["姓名: 张三; 城市: 北京; 年龄: 30", "姓名: 李四; 年龄: 25"]
    assert doc.metadata["row_spans"] == [[0, 2], [len("姓名: 张三; 城市: 北京; 年龄: 30") + 2, 3]]


def test_csv_with_semicolon_delimiter_is_sniffed(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("item;price\napple;1,50\npear;2,00\n", encoding="utf-8")
    [doc] = load_file(path)
    assert doc.text.split("\n\n") == ["item: apple; price: 1,50", "item: pear; price: 2,00"]


def test_a_csv_saved_from_a_sheet_of_stacked_tables_gives_a_doc_per_table(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text("Sales by region,,\n,,\nH1 2023,,\nRegion,Sales,Profit\nNorth,120,30\n,,\n"
                    "H1 2022,,\nRegion,Sales,Profit\nNorth,110,25\n", encoding="utf-8")
    docs = load_file(path)
    assert [(d.metadata["heading_path"], d.text) for d in docs] == [
        (["Sales by region", "H1 2023"], "Region: North; Sales: 120; Profit: 30"),
        (["Sales by region", "H1 2022"], "Region: North; Sales: 110; Profit: 25"),
    ]


def test_json_is_pretty_printed_with_readable_chinese(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"问题": "什么是劳动合同？", "tags": ["法律", 1]}), encoding="utf-8")
    [doc] = load_file(path)
    assert '"问题": "什么是劳动合同？"' in doc.text
    assert "\\u" not in doc.text and "\n  " in doc.text


def test_jsonl_records_become_separate_paragraphs(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"q": "一"}\n\n{"q": "二"}\n', encoding="utf-8")
    [doc] = load_file(path)
    assert doc.text == '{\n  "q": "一"\n}\n\n{\n  "q": "二"\n}'


def test_invalid_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"ok": 1}\n{"broken": \n', encoding="utf-8")
    with pytest.raises(UnreadableFile, match=r"'bad.jsonl'.*line 2"):
        load_file(path)


def test_invalid_json_is_a_422_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(LoaderError) as info:
        load_file(path)
    assert info.value.status == 422 and "bad.json" in info.value.message


def test_html_drops_scripts_and_navigation_and_keeps_structure(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Page title</title><style>p{color:red}</style></head><body>"
        "<nav>Home | About</nav><script>var secret = 1;</script>"
        "<h1>Main heading</h1><p>First <b>bold</b> paragraph.</p><h3>Sub heading</h3>"
        "<ul><li>one</li><li>two</li></ul><div style='display:none'>hidden text</div>"
        "<table><tr><th>Name</th><th>Value</th></tr><tr><td>a</td><td>1</td></tr></table>"
        "</body></html>",
        encoding="utf-8",
    )
    [doc] = load_file(path)
    assert doc.metadata["title"] == "Page title"
    assert "# Main heading\n\nFirst bold paragraph.\n\n### Sub heading" in doc.text
    assert "- one\n- two" in doc.text
    assert "Name: a; Value: 1" in doc.text
    for gone in ("secret", "color:red", "Home | About", "hidden text"):
        assert gone not in doc.text


def test_html_page_is_read_from_its_main_content_without_site_chrome(tmp_path):
    languages = "".join(f'<li><a href="/{c}" hreflang="{c}">Language {c}</a></li>' for c in ("de", "fr", "ja", "zh"))
    article = "<p>Ducks are waterfowl of the family Anatidae. They live in fresh water and sea water.</p>" * 3
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Duck</title></head><body>"
        f"<div id='menu'><ul><li><a href='/'>Main page</a></li><li><a href='/r'>Random article</a></li></ul></div>"
        f"<div role='search'>Search the site</div><main><h1>Duck</h1><ul>{languages}</ul>{article}"
        "<ul><li>Mallard</li><li>Teal</li></ul></main>"
        "<div role='contentinfo'>Text is available under a licence.</div></body></html>",
        encoding="utf-8",
    )
    [doc] = load_file(path)
    assert doc.metadata["title"] == "Duck"
    assert doc.text.startswith("# Duck\n\nDucks are waterfowl")
    assert "- Mallard\n- Teal" in doc.text
    for gone in ("Main page", "Random article", "Search the site", "Language de", "licence"):
        assert gone not in doc.text


def test_html_main_holding_little_of_the_page_is_not_taken_for_it(tmp_path):
    path = tmp_path / "page.html"
    body = "<p>The warranty covers parts and labour for two years from the date of purchase.</p>" * 4
    path.write_text(f"<html><body><main><p>Sign in</p></main><div>{body}</div></body></html>", encoding="utf-8")
    [doc] = load_file(path)
    assert "Sign in" in doc.text and "The warranty covers parts" in doc.text


def test_html_table_of_labelled_values_reads_as_label_value_lines(tmp_path):
    path = tmp_path / "infobox.html"
    path.write_text(
        "<html><body><p>Ducks are birds.</p><table>"
        "<tr><th colspan='2'>Duck</th></tr><tr><th colspan='2'>Scientific classification</th></tr>"
        "<tr><td>Kingdom:</td><td>Animalia</td></tr><tr><td>Class:</td><td>Aves</td></tr>"
        "<tr><th>Family</th><td>Anatidae</td></tr></table></body></html>",
        encoding="utf-8",
    )
    [doc] = load_file(path)
    assert "Duck\n\nScientific classification\n\nKingdom: Animalia\n\nClass: Aves\n\nFamily: Anatidae" in doc.text


def test_real_wikipedia_page_drops_its_language_list_and_footer(shared_data):
    [doc] = _load(shared_data, "en/files/docling_wiki_duck.html")
    assert doc.text.startswith("# Duck")
    assert "Duck is the common name for numerous species of waterfowl" in doc.text
    assert "Kingdom: Animalia" in doc.text
    for gone in ("Afrikaans", "Jump to content", "Privacy policy", "This page was last edited"):
        assert gone not in doc.text


def test_pdf_text_layer_is_loaded_per_page(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(_pdf_with_text(["Quarterly report", "Revenue grew by 12 percent."]))
    [doc] = load_file(path)
    assert doc.metadata["page"] == 1 and doc.metadata["format"] == "pdf"
    assert "Quarterly report" in doc.text and "Revenue grew by 12 percent." in doc.text


def _pdf_of_pages(pages: list[list[str]]) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for lines in pages:
        writer.add_page(PdfReader(io.BytesIO(_pdf_with_text(lines))).pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_running_heads_and_page_numbers_are_dropped_from_every_page(tmp_path):
    bodies = ["Revenue grew by 12 percent.", "Costs fell by 3 percent.", "Staff rose to 40 people.",
              "The outlook is stable."]
    pages = [[f"Annual report 2024 / Vol. 7, No. {n}", body, f"Page {n} of 4"] for n, body in enumerate(bodies, 1)]
    path = tmp_path / "report.pdf"
    path.write_bytes(_pdf_of_pages(pages))
    docs = load_file(path)
    assert [d.text for d in docs] == bodies
    # Two pages are too few to tell a running head from a repeated line.
    path.write_bytes(_pdf_of_pages(pages[:2]))
    assert all("Annual report 2024" in d.text for d in load_file(path))


def test_pdf_without_text_layer_says_it_needs_ocr(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "scan.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(UnreadableFile) as info:
        load_file(path)
    assert info.value.status == 422
    assert "scan.pdf" in info.value.message and "no text layer" in info.value.message
    assert "OCR" in info.value.message


def test_docx_keeps_order_headings_lists_and_tables(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("用户手册", level=1)
    document.add_paragraph("第一段正文。")
    document.add_heading("Installation", level=2)
    document.add_paragraph("Run the installer.", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for (r, c), value in {(0, 0): "名称", (0, 1): "数量", (1, 0): "苹果", (1, 1): "3"}.items():
        table.cell(r, c).text = value
    document.add_paragraph("After the table.")
    path = tmp_path / "manual.docx"
    document.save(path)
    [doc] = load_file(path)
    assert doc.text == (
        "# 用户手册\n\n第一段正文。\n\n## Installation\n\n- Run the installer.\n\n"
        "名称: 苹果; 数量: 3\n\nAfter the table."
    )


def test_xlsx_gives_one_doc_per_sheet_with_header_keys(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sales"
    sheet.append(["2024 sales report"])
    sheet.append(["Region", "Units", "Date"])
    sheet.append(["华东", 3.0, dt.datetime(2024, 1, 5)])
    sheet.append(["North", 2.5, None])
    workbook.create_sheet("Empty")
    other = workbook.create_sheet("Notes")
    other.append(["key", "value"])
    other.append(["owner", "ops"])
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    docs = load_file(path)
    assert [d.metadata["sheet"] for d in docs] == ["Sales", "Notes"]
    assert docs[0].text.split("\n\n") == [
        "Region: 华东; Units: 3; Date: 2024-01-05",
        "Region: North; Units: 2.5",
    ]
    assert docs[0].metadata["heading_path"] == ["2024 sales report"]
    assert docs[1].text == "key: owner; value: ops" and "heading_path" not in docs[1].metadata


def test_stacked_tables_of_a_sheet_are_separate_docs_under_their_own_titles(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Results"
    for row in (["Revenue by region"], [], ["In millions", None, None, "2023"], [None, "Sales", "Profit"],
                ["North", 120, 30], ["South", 80, -5], [], ["In millions", None, None, "2022"],
                [None, "Sales", "Profit"], ["North", 110, 25], ["South", 90, 4], [], ["(a) Unaudited."],
                [], ["Impairments", None, None, None], ["Unit", "2023", None, "2022"],
                [None, "Goodwill", "Other", "Goodwill", "Other"], ["North", 0, -9, None, -285]):
        sheet.append(row)
    path = tmp_path / "results.xlsx"
    workbook.save(path)
    docs = load_file(path)
    assert [d.metadata["heading_path"] for d in docs] == [
        ["Revenue by region", "In millions; 2023"],
        ["Revenue by region", "In millions; 2022"],
        ["Revenue by region", "Impairments"],
    ]
    assert docs[0].text == "North; Sales: 120; Profit: 30\n\nSouth; Sales: 80; Profit: -5"
    assert docs[1].text.split("\n\n") == ["North; Sales: 110; Profit: 25", "South; Sales: 90; Profit: 4",
                                           "(a) Unaudited."]
    # A band of labels over two column groups: each column's key leads with the label nearest above it.
    assert docs[2].text == "Unit: North; 2023 Goodwill: 0; 2023 Other: -9; 2022 Other: -285"
    chunks = split_documents(docs, 500, 50)
    assert [c.metadata["rows"] for c in chunks] == [[5, 6], [10, 13], [18, 18]]
    assert chunks[1].metadata["heading_path"] == ["Revenue by region", "In millions; 2022"]


def test_pptx_gives_one_doc_per_slide_with_title_text_table_and_notes(tmp_path):
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "季度回顾"
    slide.placeholders[1].text_frame.text = "收入增长"
    slide.notes_slide.notes_text_frame.text = "Mention the new office."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Numbers"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), value in {(0, 0): "Q1", (0, 1): "Q2", (1, 0): "10", (1, 1): "12"}.items():
        table.cell(r, c).text = value
    deck.slides.add_slide(deck.slide_layouts[6])  # blank slide: nothing to index
    path = tmp_path / "deck.pptx"
    deck.save(path)
    docs = load_file(path)
    assert [(d.metadata["slide"], d.metadata["title"]) for d in docs] == [(1, "季度回顾"), (2, "Numbers")]
    assert docs[0].text == "季度回顾\n\n收入增长\n\nNotes: Mention the new office."
    assert docs[1].text == "Numbers\n\nQ1: 10; Q2: 12"


def test_epub_chapters_follow_spine_order_with_markdown_headings(tmp_path):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("kbchat-test")
    book.set_title("Test Book")
    book.set_language("zh")
    first = epub.EpubHtml(title="One", file_name="z_one.xhtml", lang="zh")
    first.content = "<html><body><h1>第一章 开始</h1><p>很久以前。</p></body></html>"
    second = epub.EpubHtml(title="Two", file_name="a_two.xhtml", lang="zh")
    second.content = "<html><body><h2>Chapter Two</h2><p>Later <i>on</i>.</p></body></html>"
    book.add_item(first)
    book.add_item(second)
    book.toc = [first, second]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [first, second]
    path = tmp_path / "book.epub"
    epub.write_epub(str(path), book)
    docs = load_file(path)
    assert [d.text for d in docs] == ["# 第一章 开始\n\n很久以前。", "## Chapter Two\n\nLater on."]
    assert [d.metadata["title"] for d in docs] == ["第一章 开始", "Chapter Two"]


# ------------------------------------------------------------ errors


def test_unsupported_extension_is_a_415_error_naming_the_file(tmp_path):
    path = tmp_path / "photo.heic"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(UnsupportedFileType) as info:
        load_file(path)
    assert isinstance(info.value, LoaderError) and isinstance(info.value, UnsupportedMediaType)
    assert info.value.status == 415
    assert "photo.heic" in info.value.message and ".heic" in info.value.message


@pytest.mark.parametrize("ext", [".docx", ".xlsx", ".pptx", ".epub", ".pdf", ".doc", ".ppt", ".odt", ".odp", ".ods",
                                 ".rtf", ".xml", ".msg", ".eml", ".png", ".jpg", ".tiff", ".webp"])
def test_corrupt_binary_files_are_422_errors_not_tracebacks(tmp_path, ext):
    path = tmp_path / f"broken{ext}"
    path.write_bytes(b"this is not really a document" * 10)
    with pytest.raises(LoaderError) as info:
        load_file(path)
    assert isinstance(info.value, InvalidInput) and info.value.status == 422
    assert f"broken{ext}" in info.value.message


def test_zip_without_office_parts_is_a_422_error(tmp_path):
    path = tmp_path / "fake.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    with pytest.raises(LoaderError, match="fake.docx"):
        load_file(path)


@pytest.mark.parametrize("content", [b"", b"  \n\t\n", b"\xef\xbb\xbf"])
def test_empty_text_file_is_a_422_error(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match="contains no text"):
        load_file(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(UnreadableFile, match="not found"):
        load_file(tmp_path / "nowhere.md")


def test_supported_extensions_and_loader_names():
    assert SUPPORTED_EXTENSIONS == {
        ".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv", ".json", ".jsonl", ".xlsx", ".pptx",
        ".epub", ".doc", ".ppt", ".odt", ".odp", ".ods", ".rtf", ".rst", ".org", ".xml", ".eml", ".msg",
        ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
    }  # fmt: skip
    assert loader_name(".PDF") == "pdf:pypdf+rapidocr"
    assert loader_name("docx") == loader_name(".docx")
    with pytest.raises(UnsupportedFileType):
        loader_name(".exe")


# ------------------------------------------------------------ real files


def _load(shared_data: Path, relative: str):
    return load_file(shared_data / "docs" / relative)


def test_real_docx_english_handbook(shared_data):
    [doc] = _load(shared_data, "en/files/unstructured_handbook-1p.docx")
    assert "CHAPTER 1 – INTRODUCTION" in doc.text
    assert "The United States" in doc.text


def test_real_docx_bilingual_with_headings_and_tables(shared_data):
    [doc] = _load(shared_data, "zh/files/mineru_docx_01_bilingual.docx")
    assert doc.text.startswith("# MinerU supports DOCX document parsing now")
    assert "MinerU支持docx解析了" in doc.text
    assert re.search(r"^## Many Tables$", doc.text, re.M)
    assert len(re.findall(r"^[^:\n]+: [^\n]+; [^:\n]+: ", doc.text, re.M)) >= 8


def test_real_pdf_chinese_comes_out_as_cjk(shared_data):
    docs = _load(shared_data, "zh/files/pymupdf_chinese-tables.pdf")
    text = "".join(d.text for d in docs)
    assert "发行人历史信用评级情况" in text
    assert len(CJK.findall(text)) > 300
    assert docs[0].metadata["page"] == 1


def test_real_pdf_english_transcript(shared_data):
    docs = _load(shared_data, "en/files/pdfplumber_scotus-transcript-p1.pdf")
    assert "Official" in docs[0].text and docs[0].metadata["page"] == 1


def test_real_scanned_pdf_without_ocr_is_a_clear_error(shared_data):
    with pytest.raises(UnreadableFile, match=r"mineru_small_ocr_scanned\.pdf.*no text layer.*OCR.*turned off"):
        load_file(shared_data / "docs" / "zh/files/mineru_small_ocr_scanned.pdf", options=LoadOptions(ocr=False))


def test_a_chinese_sheet_of_figures_with_units_splits_into_its_periods(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "销售"
    for row in (["各区域销售情况"], [], ["2023年上半年"], ["区域", "销售额", "门店"], ["华东", "120万元", "52家"],
                ["华南", "80万元", "31家"], [], ["2022年上半年"], ["区域", "销售额", "门店"], ["华东", "110万元", "48家"]):
        sheet.append(row)
    path = tmp_path / "销售.xlsx"
    workbook.save(path)
    docs = load_file(path)
    assert [(d.metadata["heading_path"], d.text.split("\n\n")[0]) for d in docs] == [
        (["各区域销售情况", "2023年上半年"], "区域: 华东; 销售额: 120万元; 门店: 52家"),
        (["各区域销售情况", "2022年上半年"], "区域: 华东; 销售额: 110万元; 门店: 48家"),
    ]


def test_a_two_row_header_of_column_groups_keys_each_column_with_its_group(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in (["员工考勤表"], ["基本信息", None, "考勤", None, None], ["姓名", "部门", "出勤", "请假", "加班"],
                ["张三", "销售部", "21天", "1天", "6小时"]):
        sheet.append(row)
    path = tmp_path / "考勤.xlsx"
    workbook.save(path)
    [doc] = load_file(path)
    assert doc.metadata["heading_path"] == ["员工考勤表"]
    assert doc.text == "基本信息 姓名: 张三; 基本信息 部门: 销售部; 考勤 出勤: 21天; 考勤 请假: 1天; 考勤 加班: 6小时"
    # A band giving the unit, then the period over the last column, is the table's title, not a group.
    sheet.delete_rows(1, 4)
    for row in (["单位：万元", None, None, "2023年1-6月"], ["区域", "销售额", "毛利", "门店数"], ["华东", 12553, 2713, 52]):
        sheet.append(row)
    workbook.save(path)
    [doc] = load_file(path)
    assert doc.metadata["heading_path"] == ["单位：万元; 2023年1-6月"]
    assert doc.text == "区域: 华东; 销售额: 12553; 毛利: 2713; 门店数: 52"


def test_a_sheet_tells_a_table_below_another_from_rows_of_the_same_table(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in (["Revenue by year"], [None, 2021, 2022], ["North", 10, 12], [], ["Costs by year"], [None, 2021, 2022],
                ["North", 5, 6], [], ["Region", "Note"], ["North", 7], [], [None, 2021, 2022], ["South", 1, 2]):
        sheet.append(row)
    path = tmp_path / "years.xlsx"
    workbook.save(path)
    docs = load_file(path)
    # Years as column names head a table under its own title; a row of words after an empty row is a row of the
    # table above, and its header printed again is left out.
    assert [(d.metadata["heading_path"], d.text.split("\n\n")) for d in docs] == [
        (["Revenue by year"], ["North; 2021: 10; 2022: 12"]),
        (["Costs by year"],
         ["North; 2021: 5; 2022: 6", "Region; 2021: Note", "North; 2021: 7", "South; 2021: 1; 2022: 2"]),
    ]


def test_real_xlsx_sheets_use_the_header_row(shared_data):
    docs = _load(shared_data, "en/files/unstructured_stanley-cups.xlsx")
    assert [d.metadata["sheet"] for d in docs] == ["Stanley Cups", "Stanley Cups Since 67"]
    assert "Team: Maple Leafs; Location: TOR; Stanley Cups: 13" in docs[0].text
    assert [d.metadata["heading_path"] for d in docs] == [["Stanley Cups"], ["Stanley Cups Since 67"]]


def test_real_xlsx_stacked_tables_carry_their_period(shared_data):
    docs = _load(shared_data, "en/files/unstructured_2023-half-year-analyses-by-segment.xlsx")
    zone_na = [d for d in docs if d.text.startswith("Zone NA;")]
    assert [d.metadata["heading_path"][-1] for d in zone_na] == ["In millions of CHF; January–June 2023",
                                                                 "In millions of CHF; January–June 2022"]
    assert "Sales (a): 12553" in zone_na[0].text and "Sales (a): 12138" in zone_na[1].text


def test_real_pptx_slides(shared_data):
    docs = _load(shared_data, "en/files/unstructured_sample-presentation.pptx")
    assert [d.metadata["slide"] for d in docs] == [1, 2, 3, 4]
    assert docs[1].metadata["title"] == "This is the first content slide"
    assert "Table: 1; A: A1; B: B1; C: C1" in docs[3].text


def test_real_epub_chapters(shared_data):
    docs = _load(shared_data, "en/files/unstructured_winter-sports.epub")
    assert len(docs) >= 5
    assert all("chapter" in d.metadata for d in docs)
    assert [d.metadata["chapter"] for d in docs] == sorted(d.metadata["chapter"] for d in docs)
    assert any(re.search(r"^#{1,6} ", d.text, re.M) for d in docs)
    assert "Switzerland" in docs[0].text


def test_real_html_10k(shared_data):
    [doc] = _load(shared_data, "en/files/unstructured_example-10k-1p.html")
    assert "SECURITIES EXCHANGE" in doc.text
    assert "<" not in doc.text.replace("<=", "")


def test_real_chinese_csv(shared_data):
    [doc] = _load(shared_data, "zh/files/chatchat_langchain-ChatGLM_closed.csv")
    lines = doc.text.splitlines()
    assert len(lines) >= 170
    assert lines[0].startswith("0; title: ")  # the unnamed index column labels each row
    assert CJK.search(doc.text)


def test_real_markdown_law(shared_data):
    [doc] = _load(shared_data, "zh/laws/社会法_劳动法(2018-12-29).md")
    assert doc.metadata["title"] == "中华人民共和国劳动法"
    assert "第一条 为了保护劳动者的合法权益" in doc.text
    assert "INFO END" not in doc.text
