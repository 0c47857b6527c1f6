"""The formats people keep documents in: every file of the parity and Chinese sets, old Office files,
OpenDocument, RTF, reStructuredText, Org, XML, e-mail, and missing converters."""

from __future__ import annotations

import email.message
import re
import shutil
from pathlib import Path

import pytest

from server.knowledge_base.loaders import LoaderError, UnreadableFile, load_file, loader_name
from server.knowledge_base.splitter import split_documents
from server.knowledge_base.types import LoadOptions

ENGLISH = "All human beings are born free and equal in dignity and rights"
SPANISH = "Todos los seres humanos nacen libres e iguales en dignidad y derechos"
PARITY = [f"unstructured_eng_spa_mult{ext}" for ext in (
    ".doc", ".docx", ".epub", ".html", ".md", ".odt", ".org", ".ppt", ".pptx", ".rst", ".rtf", ".txt", ".xml")]
# One phrase of each file of docs/zh/files; the OCR ones are read off images.
ZH_PHRASES = {
    "chatchat_langchain-ChatGLM_closed.csv": "加油~以及一些建议",
    "chatchat_langchain-ChatGLM_closed.xlsx": "加油~以及一些建议",
    "chatchat_ocr_test.docx": "横向文本框",
    "chatchat_ocr_test.jpg": "横向文本框",
    "chatchat_ocr_test.pdf": "横向文本框",
    "chatchat_ocr_test.pptx": "横向文本框",
    "mineru_docx_01_bilingual.docx": "MinerU支持docx解析了",
    "mineru_small_ocr_scanned.pdf": "商品和货币",
    "pymupdf_chinese-tables.pdf": "发行人历史信用评级情况",
    "pypdf_multilang.pdf": "Hello World",
    "unstructured_chi_sim_image.jpeg": "甘草黄酮",
}


def _chunk_texts(path: Path, options: LoadOptions | None = None) -> list[str]:
    return [c.text for c in split_documents(load_file(path, options=options), 500, 50)]


@pytest.mark.parametrize("name", PARITY)
def test_every_parity_format_yields_the_english_and_spanish_text(shared_data, name):
    texts = " ".join(" ".join(t.split()) for t in _chunk_texts(shared_data / "docs" / "parity" / name))
    assert ENGLISH in texts and SPANISH in texts


def test_parity_spreadsheet_keeps_both_columns_under_their_headers(shared_data):
    texts = "\n".join(_chunk_texts(shared_data / "docs" / "parity" / "unstructured_eng_spa.xlsx"))
    assert re.search(r"English text: All human beings", texts)
    assert "Todos los seres humanos" in texts


@pytest.mark.timeout(900)  # the 8-page scan takes half a minute of OCR on a busy two-core machine
@pytest.mark.parametrize("name", sorted(ZH_PHRASES))
def test_every_chinese_set_file_is_indexed_with_its_text(shared_data, name):
    texts = _chunk_texts(shared_data / "docs" / "zh" / "files" / name)
    assert any(ZH_PHRASES[name].replace(" ", "") in "".join(t.split()) for t in texts)


def test_ocr_text_is_marked_and_pdf_pages_keep_their_numbers(shared_data):
    docs = load_file(shared_data / "docs" / "zh" / "files" / "chatchat_ocr_test.pdf")
    assert [d.metadata["page"] for d in docs] == [1]
    assert docs[0].text.startswith("我是文字") and "竖向文本框" in docs[0].text and docs[0].metadata["ocr"] is True
    [slide] = load_file(shared_data / "docs" / "zh" / "files" / "chatchat_ocr_test.pptx")
    assert slide.metadata["slide"] == 1 and slide.metadata["ocr"] is True and "我是文字" in slide.text


def test_ocr_off_refuses_an_image_and_reads_only_the_text_layer_of_a_pdf(shared_data):
    folder = shared_data / "docs" / "zh" / "files"
    with pytest.raises(UnreadableFile, match=r"chatchat_ocr_test\.jpg.*OCR.*turned off") as info:
        load_file(folder / "chatchat_ocr_test.jpg", options=LoadOptions(ocr=False))
    assert info.value.status == 422
    [doc] = load_file(folder / "chatchat_ocr_test.pdf", options=LoadOptions(ocr=False))
    assert doc.text == "我是文字" and "ocr" not in doc.metadata
    [docx] = load_file(folder / "chatchat_ocr_test.docx", options=LoadOptions(ocr=False))
    assert "横向文本框" not in docx.text and "我是文字" in docx.text


def test_a_scanned_pdf_reports_each_page_of_ocr(shared_data, tmp_path):
    from PIL import Image

    page = Image.open(shared_data / "docs" / "zh" / "files" / "chatchat_ocr_test.jpg").convert("RGB")
    scan = tmp_path / "scan.pdf"
    page.save(scan, save_all=True, append_images=[page.copy(), page.copy()])  # three pages, no text layer
    seen: list[tuple[int, int]] = []
    docs = load_file(scan, options=LoadOptions(on_ocr_page=lambda done, total: seen.append((done, total))))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    assert all("横向文本框" in d.text and d.metadata["ocr"] for d in docs)


# ------------------------------------------------------------ old Office files and missing converters


def test_doc_and_ppt_that_are_really_ooxml_go_to_the_ooxml_loaders(shared_data):
    parity = shared_data / "docs" / "parity"
    assert load_file(parity / "unstructured_eng_spa_mult.doc")[0].text == \
        load_file(parity / "unstructured_eng_spa_mult.docx")[0].text
    slides = load_file(parity / "unstructured_eng_spa_mult.ppt")
    assert slides[0].metadata["slide"] == 1 and loader_name(".ppt") == "ppt:catppt"


@pytest.mark.parametrize(("ext", "command", "package"), [(".doc", "catdoc", "catdoc"), (".ppt", "catppt", "catdoc")])
def test_binary_office_file_without_its_converter_names_the_package(tmp_path, monkeypatch, ext, command, package):
    path = tmp_path / f"old{ext}"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(UnreadableFile, match=rf"old\{ext}.*'{command}'.*Debian package '{package}'") as info:
        load_file(path)
    assert info.value.status == 422


def test_scanned_pdf_without_pdftoppm_names_poppler_utils(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UnreadableFile, match=r"'pdftoppm'.*Debian package 'poppler-utils'"):
        load_file(shared_data / "docs" / "zh" / "files" / "mineru_small_ocr_scanned.pdf")


@pytest.mark.skipif(shutil.which("catdoc") is None, reason="catdoc (Debian package catdoc) is not installed")
def test_a_corrupt_binary_doc_is_a_422_naming_the_converter(tmp_path):
    path = tmp_path / "broken.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x07" * 2048)
    with pytest.raises(LoaderError, match=r"broken\.doc") as info:
        load_file(path)
    assert info.value.status == 422


# ------------------------------------------------------------ OpenDocument, markup and e-mail


def test_odt_keeps_headings_lists_and_tables(tmp_path):
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableRow
    from odf.text import H, List, ListItem, P

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="用户手册"))
    document.text.addElement(P(text="第一段正文。"))
    items = List()
    item = ListItem()
    item.addElement(P(text="Run the installer."))
    items.addElement(item)
    document.text.addElement(items)
    table = Table(name="T")
    for cells in (["名称", "数量"], ["苹果", "3"]):
        row = TableRow()
        for value in cells:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    document.text.addElement(table)
    path = tmp_path / "manual.odt"
    document.save(str(path))
    [doc] = load_file(path)
    assert doc.text == "# 用户手册\n\n第一段正文。\n\n- Run the installer.\n\n名称: 苹果; 数量: 3"


def test_ods_rows_keep_headers_and_odp_gives_slides(tmp_path):
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet
    from odf.style import MasterPage, PageLayout
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    sheet_doc = OpenDocumentSpreadsheet()
    table = Table(name="库存")
    for cells in (["产品", "数量"], ["螺丝", "40"], ["螺母", "25"]):
        row = TableRow()
        for value in cells:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    sheet_doc.spreadsheet.addElement(table)
    ods = tmp_path / "stock.ods"
    sheet_doc.save(str(ods))
    [sheet] = load_file(ods)
    assert sheet.metadata["sheet"] == "库存" and sheet.text == "产品: 螺丝; 数量: 40\n\n产品: 螺母; 数量: 25"
    assert sheet.metadata["row_spans"] == [[0, 2], [len("产品: 螺丝; 数量: 40") + 2, 3]]

    deck = OpenDocumentPresentation()
    layout = PageLayout(name="L")
    deck.automaticstyles.addElement(layout)
    master = MasterPage(name="M", pagelayoutname=layout)
    deck.masterstyles.addElement(master)
    for words in ("季度回顾", "Numbers went up"):
        page = Page(masterpagename=master)
        frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
        box = TextBox()
        box.addElement(P(text=words))
        frame.addElement(box)
        page.addElement(frame)
        deck.presentation.addElement(page)
    odp = tmp_path / "deck.odp"
    deck.save(str(odp))
    assert [(d.metadata["slide"], d.text) for d in load_file(odp)] == [(1, "季度回顾"), (2, "Numbers went up")]


def test_rst_and_org_sections_become_heading_paths(tmp_path):
    rst = tmp_path / "guide.rst"
    rst.write_text("=====\nGuide\n=====\n\nIntro text.\n\nInstall\n-------\n\nRun pip.\n\n.. note:: hidden\n",
                   encoding="utf-8")
    org = tmp_path / "notes.org"
    org.write_text("#+TITLE: 笔记\n* 项目\n** TODO 测试 :work:\n运行测试。\n", encoding="utf-8")
    rst_chunks = split_documents(load_file(rst), 500, 0)
    assert [(c.metadata["heading_path"], c.text) for c in rst_chunks] == [
        (["Guide"], "Intro text."), (["Guide", "Install"], "Run pip.")]
    [org_doc] = load_file(org)
    assert org_doc.metadata["title"] == "笔记"
    [org_chunk] = split_documents([org_doc], 500, 0)
    assert org_chunk.metadata["heading_path"] == ["项目", "测试"] and org_chunk.text == "运行测试。"


def test_rtf_decodes_its_code_page(tmp_path):
    path = tmp_path / "note.rtf"
    path.write_bytes(rb"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}\f0 Se\'f1or Garc\'eda\par Second line\par}")
    [doc] = load_file(path)
    assert doc.text == "Señor García\nSecond line"


def test_xml_gives_element_text_and_never_expands_entities(tmp_path):
    path = tmp_path / "data.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                    "<r><item>第一条</item><item>second <b>bold</b> tail</item><x>&e;</x></r>", encoding="utf-8")
    [doc] = load_file(path)
    assert doc.text == "第一条\n\nsecond\n\nbold\n\ntail"


def test_eml_gives_headers_and_plain_body(tmp_path):
    message = email.message.EmailMessage()
    message["Subject"] = "会议通知"
    message["From"] = "李雷 <lilei@example.com>"
    message["To"] = "team@example.com"
    message.set_content("明天上午十点开会。")
    message.add_alternative("<p>明天上午<b>十点</b>开会。</p>", subtype="html")
    message.add_attachment(b"x", maintype="application", subtype="octet-stream", filename="agenda.pdf")
    path = tmp_path / "notice.eml"
    path.write_bytes(bytes(message))
    [doc] = load_file(path)
    assert doc.metadata["title"] == "会议通知"
    assert "Subject: 会议通知" in doc.text and "From: 李雷 <lilei@example.com>" in doc.text
    assert "Attachments: agenda.pdf" in doc.text and doc.text.endswith("明天上午十点开会。")


def test_msg_that_is_not_an_outlook_message_is_a_422(tmp_path):
    path = tmp_path / "mail.msg"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(LoaderError, match=r"mail\.msg") as info:
        load_file(path)
    assert info.value.status == 422


def test_an_image_too_small_to_hold_text_is_refused_without_ocr(tmp_path, monkeypatch):
    from PIL import Image

    from server.knowledge_base.loaders import ocr

    monkeypatch.setattr(ocr, "_get_engine", lambda: pytest.fail("the OCR models were loaded"))
    path = tmp_path / "dot.png"
    Image.new("RGB", (3, 2), "white").save(path)
    with pytest.raises(UnreadableFile, match=r"dot\.png.*too small to hold text \(3x2 px\)"):
        load_file(path)


def test_a_blank_pdf_page_is_not_sent_to_ocr(tmp_path, monkeypatch):
    from pypdf import PdfWriter

    from server.knowledge_base.loaders import ocr

    monkeypatch.setattr(ocr, "_get_engine", lambda: pytest.fail("the OCR models were loaded"))
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "blank.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    with pytest.raises(UnreadableFile, match=r"blank\.pdf.*no text layer.*OCR found no text"):
        load_file(path)
