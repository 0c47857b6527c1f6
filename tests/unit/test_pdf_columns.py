"""PDF pages set in columns are read column by column; other pages keep the text layer pypdf gives.

The PDFs are built here, their text drawn row by row across the columns (left line, right line, ...), as
many producers draw two-column pages, so a reader that follows the drawing order interleaves the columns.
"""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

import pytest
from pypdf import PdfReader

from server.knowledge_base.loaders import load_file
from server.knowledge_base.loaders.pdf import without_running_lines
from server.knowledge_base.loaders.pdf_columns import Word, columns_in_order
from server.knowledge_base.types import LoadOptions
from tests.pdf_support import pdf_file

# (font, size, x, y, text): F1 is Helvetica, F2 a CJK font (STSong-Light, UCS-2 encoded).
Run = tuple[str, float, float, float, str]

TITLE = "Annual Survey of River Levels and Bridge Inspections in the Northern Valley"
FOOTER = "Prepared by the regional water office for public distribution and review"
LEFT = [
    "The river rose slowly during the first week of spring.",
    "Farmers moved their cattle to the higher pastures near the ridge.",
    "By the end of March the water had covered the lower road.",
]
LEFT_AFTER_BREAK = [
    "Engineers then measured the current at the old stone bridge.",
    "They found that the northern pier had shifted by two centimetres.",
    "Repairs were planned for the dry months of late summer.",
]
RIGHT = [
    "Bridge inspections follow a fixed schedule every autumn.",
    "Each inspector records cracks, rust and loose bolts in a log.",
    "The logs are sent to the regional office within ten days.",
    "Serious faults close the bridge until a crew can repair them.",
    "Minor faults are listed for the next maintenance season.",
    "No bridge in the valley was closed during the last decade.",
]
CJK_LEFT = "第一栏的文字从这里开始，一直写到这一栏的底部为止。这是左边一栏的全部内容，读完以后才读右边。" * 3
CJK_RIGHT = "第二栏的文字在右边，它应该排在左边那一栏的全部文字之后。两栏的句子不能交错在一起。" * 3


def _pdf(runs: list[Run], drawing: str = "") -> bytes:
    """A one-page PDF (US Letter) drawing each text run at its place, then the given path operators."""
    ops = []
    for font, size, x, y, text in runs:
        if font == "F2":
            shown = "<" + text.encode("utf-16-be").hex().upper() + ">"
        else:
            shown = "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"
        ops.append(f"BT /{font} {size} Tf 1 0 0 1 {x} {y} Tm {shown} Tj ET")
    stream = ("\n".join(ops) + "\n" + drawing).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H"
        b" /DescendantFonts [7 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light"
        b" /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /DW 1000 /FontDescriptor 8 0 R >>",
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [0 -200 1000 900]"
        b" /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
    ]
    return pdf_file(objects)


def _rows_across(left: list[str], right: list[str], top: float = 700, pitch: float = 14,
                 xs: tuple[float, float] = (72, 330), font: str = "F1") -> list[Run]:
    """Two columns of lines ('' leaves a line blank), drawn row by row: left line, then right line."""
    runs: list[Run] = []
    for i in range(max(len(left), len(right))):
        for x, lines in zip(xs, (left, right)):
            if i < len(lines) and lines[i]:
                runs.append((font, 10, x, top - pitch * i, lines[i]))
    return runs


def _two_column_page() -> list[Run]:
    left = [*textwrap.wrap(" ".join(LEFT), 38), "", *textwrap.wrap(" ".join(LEFT_AFTER_BREAK), 38)]
    right = textwrap.wrap(" ".join(RIGHT), 38)
    return [("F1", 14, 72, 740, TITLE), *_rows_across(left, right), ("F1", 9, 72, 60, FOOTER)]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _load(tmp_path: Path, data: bytes, **options: bool) -> str:
    path = tmp_path / "page.pdf"
    path.write_bytes(data)
    [doc] = load_file(path, options=LoadOptions(ocr=False, **options))
    return doc.text


def _pypdf_text(data: bytes) -> str:
    return PdfReader(io.BytesIO(data)).pages[0].extract_text().strip()


def _assert_in_reading_order(text: str) -> None:
    flat = _flat(text)
    sentences = [TITLE, *LEFT, *LEFT_AFTER_BREAK, *RIGHT, FOOTER]
    for sentence in sentences:
        assert sentence in flat, f"{sentence!r} is not contiguous in {text!r}"
    positions = [flat.index(sentence) for sentence in sentences]
    assert positions == sorted(positions)


@pytest.mark.parametrize("tables", [True, False])
def test_a_two_column_page_is_read_column_by_column_between_its_title_and_footer(tmp_path, tables):
    data = _pdf(_two_column_page())
    # The text layer in drawing order runs the two columns together line by line.
    assert LEFT[1] not in _flat(_pypdf_text(data))
    text = _load(tmp_path, data, pdf_tables=tables)
    _assert_in_reading_order(text)
    # A blank line where the left column leaves a line's space between paragraphs, and none within one.
    assert re.search(r"lower\s+road\.\n\nEngineers", text)
    assert "\n\n" not in text[text.index(LEFT[0][:20]):text.index("lower")]


def test_three_columns_are_read_left_to_right(tmp_path):
    columns = [textwrap.wrap(" ".join(sentences), 30) for sentences in (LEFT, LEFT_AFTER_BREAK, RIGHT)]
    runs: list[Run] = [("F1", 14, 50, 740, TITLE)]
    for i in range(max(map(len, columns))):
        for x, lines in zip((50, 240, 430), columns):
            if i < len(lines):
                runs.append(("F1", 9, x, 700 - 12 * i, lines[i]))
    flat = _flat(_load(tmp_path, _pdf(runs)))
    sentences = [TITLE, *LEFT, *LEFT_AFTER_BREAK, *RIGHT]
    assert all(sentence in flat for sentence in sentences)
    assert [flat.index(s) for s in sentences] == sorted(flat.index(s) for s in sentences)


def test_cjk_columns_keep_their_characters_together(tmp_path):
    left = [CJK_LEFT[i:i + 18] for i in range(0, len(CJK_LEFT), 18)]
    right = [CJK_RIGHT[i:i + 18] for i in range(0, len(CJK_RIGHT), 18)]
    text = _load(tmp_path, _pdf(_rows_across(left, right, font="F2")))
    assert not re.search(r"[\u4e00-\u9fff，。] +[\u4e00-\u9fff，。]", text)
    joined = text.replace("\n", "")
    assert CJK_LEFT + CJK_RIGHT in joined


def _line_of_words(text: str, x: float, top: float, size: float = 10, width: float = 228) -> list[Word]:
    """Words of a justified line from x, width points wide, size points high."""
    words = text.split()
    step = width / len(words)
    return [Word(word, x + i * step, x + i * step + step - 4, top, top + size) for i, word in enumerate(words)]


def test_a_large_title_whose_word_space_meets_the_gutter_stays_above_the_columns():
    # The gutter runs from 300 to 320; the title's space between its 24-point words falls right inside it.
    title = [Word("Column", 150, 304, 40, 64), Word("Reading", 310, 460, 40, 64)]
    words = list(title)
    for i in range(12):
        words += _line_of_words(f"left line {i} of the first column text", 72, 80 + 13 * i)
        words += _line_of_words(f"right line {i} of the second column text", 320, 80 + 13 * i)
    text = columns_in_order(words)
    assert text is not None and text.startswith("Column Reading\nleft line 0 ")
    assert text.index("left line 11 ") < text.index("right line 0 ")


def test_a_single_column_page_keeps_the_text_layer(tmp_path):
    lines = textwrap.wrap(" ".join(LEFT + LEFT_AFTER_BREAK + RIGHT), 80)
    # Short lines (a list, a paragraph's end) leave the right half empty on many rows: still one column.
    lines[3:3] = ["Items checked:", "- bolts", "- cracks", "- rust", ""]
    runs: list[Run] = [("F1", 14, 72, 740, "Inspection notes")]
    runs += [("F1", 10, 72, 700 - 14 * i, line) for i, line in enumerate(lines) if line]
    data = _pdf(runs)
    assert _load(tmp_path, data) == _pypdf_text(data)


def test_labels_and_values_in_two_aligned_columns_are_not_taken_for_text_columns(tmp_path):
    labels = [f"Field number {n} of the form" for n in range(1, 21)]
    values = [f"value {n}" for n in range(1, 21)]
    data = _pdf(_rows_across(labels, values))
    assert _load(tmp_path, data) == _pypdf_text(data)


def test_the_empty_ruling_of_a_figure_is_no_table_and_the_columns_are_still_read_in_order(tmp_path):
    runs = _two_column_page()
    # A framed box of four empty cells under the left column's text, as a figure's lines can be.
    grid = "0.5 w 72 420 200 60 re S 72 450 m 272 450 l S 172 420 m 172 480 l S"
    text = _load(tmp_path, _pdf(runs, grid), pdf_tables=True)
    _assert_in_reading_order(text)


def test_a_page_pdfplumber_cannot_read_keeps_the_text_layer(tmp_path, monkeypatch):
    import server.knowledge_base.loaders.pdf_layout as pdf_layout

    def broken(page: object) -> str:
        raise ValueError("unreadable content stream")

    monkeypatch.setattr(pdf_layout, "column_text", broken)
    data = _pdf(_two_column_page())
    assert _load(tmp_path, data, pdf_tables=False) == _pypdf_text(data)


def test_a_running_head_read_in_columns_goes_with_its_page_number_at_either_end():
    body = ["Revenue grew.", "Costs fell.", "Staff rose.", "Outlook stable.", "Prices held."]
    heads = [f"{n} Annual report 2024 / Vol. 7" if n % 2 == 0 else f"Annual report 2024 / Vol. 7 {n}"
             for n in range(12, 17)]
    texts = [f"{head}\n{line}" for head, line in zip(heads, body)]
    # Pages read in columns put the number where the page shows it; the others where the text layer drew it.
    assert without_running_lines(texts, in_columns=[2, 4]) == body
    assert without_running_lines(texts) == [body[0], texts[1], body[2], texts[3], body[4]]


def test_real_two_column_handbook_page_reads_each_column_top_to_bottom(shared_data):
    [doc] = load_file(shared_data / "docs" / "en" / "files" / "docling_amt_handbook_sample.pdf",
                      options=LoadOptions(ocr=False))
    flat = _flat(doc.text)
    left = "The two general types of self-locking nuts currently in use are the all-metal type and the fiber lock type."
    left_end = "Boots self-locking nuts are made with three different spring styles and in various shapes and sizes."
    right = ("The stainless steel self-locking nut may be spun on and off by hand as its locking action takes places "
             "only when the nut is seated against a solid surface and tightened.")
    for sentence in (left, left_end, right):
        assert sentence in flat
    assert flat.index(left) < flat.index(left_end) < flat.index(right)
    assert "\n\nThe spring keeps the locking" in doc.text
