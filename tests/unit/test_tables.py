"""Tables: rows keep their headers, large tables split between rows, chunks know their rows, one row is found."""

from __future__ import annotations

import re

import pytest

from server.api.transport import with_download_urls
from server.chat.sources import kb_source, location_of
from server.knowledge_base.loaders import load_file
from server.knowledge_base.schemas import SearchHit
from server.knowledge_base.splitter import split_documents

CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆"]


def _inventory(path, rows: int = 500) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "库存"
    sheet.append(["编号", "产品名称", "仓库", "数量"])
    for n in range(1, rows + 1):
        sheet.append([f"SKU-{n:04d}", f"产品{n}号 型号{n * 7919 % 100000:05d}", CITIES[n % len(CITIES)], n * 3])
    workbook.save(path)


def test_a_large_sheet_is_split_between_rows_with_headers_in_every_chunk(tmp_path):
    path = tmp_path / "inventory.xlsx"
    _inventory(path)
    chunks = split_documents(load_file(path), 500, 50)
    assert len(chunks) > 20
    for chunk in chunks:
        lines = [line for line in chunk.text.split("\n\n") if line]
        assert all(re.fullmatch(r"编号: SKU-\d{4}; 产品名称: .+; 仓库: .+; 数量: \d+", line) for line in lines)
        first, last = chunk.metadata["rows"]
        assert f"SKU-{first - 1:04d}" in lines[0] and f"SKU-{last - 1:04d}" in lines[-1]  # row 1 is the header
        assert chunk.metadata["sheet"] == "库存" and "row_spans" not in chunk.metadata
    assert chunks[0].metadata["rows"][0] == 2 and chunks[-1].metadata["rows"][1] == 501


def test_a_question_about_one_row_of_a_500_row_sheet_retrieves_that_row(manager, tmp_path):
    path = tmp_path / "inventory.xlsx"
    _inventory(path)
    manager.create_kb("stock", "inventory")
    [result] = manager.add_files("stock", [path])
    assert result.status == "indexed", result.error
    hits = manager.search("stock", "SKU-0321 在哪个仓库，数量是多少？", top_k=3)
    assert "编号: SKU-0321; 产品名称: 产品321号" in hits[0].text
    first, last = hits[0].metadata["rows"]
    assert first <= 322 <= last
    assert f"rows {first}-{last}" in location_of(hits[0].metadata) and "sheet 库存" in location_of(hits[0].metadata)


def test_csv_issue_list_rows_keep_their_headers(shared_data):
    chunks = split_documents(load_file(shared_data / "docs" / "zh" / "files" / "chatchat_langchain-ChatGLM_closed.csv"),
                             500, 50)
    assert all("title: " in c.text for c in chunks if c.metadata.get("rows"))
    assert chunks[0].metadata["rows"][0] == 2


def test_docx_tables_render_rows_with_headers(shared_data):
    [doc] = load_file(shared_data / "docs" / "en" / "files" / "unstructured_docx-tables.docx")
    assert re.search(r"^[^\n:]+: [^\n]+; [^\n:]+: ", doc.text, re.M)


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"page": 3, "heading_path": ["第七章", "表7-1"]}, "p. 3, § 第七章 > 表7-1"),
    ({"sheet": "Q1", "rows": [2, 40]}, "sheet Q1, rows 2-40"),
    ({"slide": 4}, "slide 4"),
    ({"sheet": "Q1", "rows": [7, 7]}, "sheet Q1, row 7"),
])
def test_sources_say_where_in_the_file(metadata, expected):
    assert location_of(metadata) == expected


def test_a_pdf_source_links_to_its_page_and_others_do_not():
    pdf = kb_source(1, SearchHit(doc_id="a", text="t", score=0.9, rank=1, metadata={"source": "合同.pdf", "page": 7}),
                    "docs")
    sheet = kb_source(2, SearchHit(doc_id="b", text="t", score=0.8, rank=2,
                                   metadata={"source": "a.xlsx", "sheet": "S", "rows": [2, 9]}), "docs")
    urls = [s["url"] for s in with_download_urls([pdf, sheet])]
    assert urls == ["/kbs/docs/files/%E5%90%88%E5%90%8C.pdf/download#page=7", "/kbs/docs/files/a.xlsx/download"]


def test_pdf_tables_keep_rows_under_their_headers(shared_data):
    from server.knowledge_base.types import LoadOptions

    path = shared_data / "docs" / "zh" / "files" / "pymupdf_chinese-tables.pdf"
    [doc] = load_file(path)
    assert "年份: 2023; 主体信用评级: AA+; 涵义: 偿还债务的能力很强，受不利经济环境的影响不大，违约风险很低" in doc.text
    assert "序号: 2; 金融机构名称: 徽商银行南京中山北路支行; 授信总额: 330,435.30" in doc.text
    assert doc.text.index("表7-1") < doc.text.index("年份: 2023") < doc.text.index("二、授信情况")
    [plain] = load_file(path, options=LoadOptions(pdf_tables=False))
    assert "序号: 2" not in plain.text and "徽商银行南京中山北路支行" in plain.text
