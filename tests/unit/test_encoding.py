"""Encoding detection: every common encoding of Chinese and Western text decodes back exactly."""

from __future__ import annotations

import codecs

import pytest

from server.knowledge_base.loaders import LoaderError, load_file, read_text
from server.knowledge_base.loaders.encoding import detect_and_decode
from server.knowledge_base.loaders.web import decode_html

SIMPLIFIED = "中华人民共和国劳动法\n第一条 为了保护劳动者的合法权益，调整劳动关系，制定本法。\n"
TRADITIONAL = "中華民國憲法\n第一條 中華民國基於三民主義，為民有民治民享之民主共和國。\n"
WESTERN = "café naïve – “quotes” — Übergrößenträger façade ½ €5\n"
SHORT_GBK = "劳动合同"


@pytest.mark.parametrize(
    ("text", "encode"),
    [
        (SIMPLIFIED, lambda t: t.encode("gbk")),
        (SIMPLIFIED + "𠮷 and €", lambda t: t.encode("gb18030")),
        (TRADITIONAL, lambda t: t.encode("big5")),
        (SIMPLIFIED, lambda t: t.encode("utf-8")),
        (SIMPLIFIED, lambda t: t.encode("utf-8-sig")),
        (SIMPLIFIED, lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le")),
        (SIMPLIFIED, lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be")),
        (SIMPLIFIED, lambda t: t.encode("utf-32")),
        (WESTERN, lambda t: t.encode("cp1252")),
        (WESTERN, lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be")),
        ("plain ASCII report, 2024 edition.\n", lambda t: t.encode("utf-16-le")),
        ("plain ASCII report, 2024 edition.\n", lambda t: t.encode("utf-16-be")),
        (SHORT_GBK, lambda t: t.encode("gbk")),
        ("naïve", lambda t: t.encode("cp1252")),
    ],
    ids=[
        "gbk", "gb18030-4byte", "big5", "utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf32-bom",
        "cp1252", "utf16be-western", "utf16le-no-bom", "utf16be-no-bom", "short-gbk", "short-cp1252",
    ],
)  # fmt: skip
def test_read_text_decodes_common_encodings_exactly(tmp_path, text, encode):
    path = tmp_path / "sample.txt"
    path.write_bytes(encode(text))
    assert read_text(path) == text


def test_gbk_text_is_never_decoded_as_western_mojibake():
    data = ("劳动者享有平等就业和选择职业的权利。" * 3).encode("gbk")
    text, encoding = detect_and_decode(data)
    assert encoding == "gb18030"
    assert "劳动者" in text and "Ã" not in text


def test_big5_is_preferred_over_gb18030_for_traditional_text():
    data = "國家機關、事業組織、社會團體和與之建立勞動合同關係的勞動者，依照本法執行。".encode("big5")
    text, encoding = detect_and_decode(data)
    assert encoding.startswith("big5")
    assert text.startswith("國家機關")


def test_western_text_is_not_taken_for_a_sibling_code_page():
    # Detectors tend to name cp1250 here, which would turn "naïve" into "naďve".
    text, encoding = detect_and_decode(WESTERN.encode("cp1252"))
    assert encoding == "cp1252"
    assert text == WESTERN


def test_cyrillic_single_byte_text_uses_the_detected_code_page():
    original = "Привет, мир! Это проверка определения кодировки для текста на русском языке.\n"
    text, _ = detect_and_decode(original.encode("cp1251"))
    assert text == original


def test_utf16_without_bom_chinese_is_detected():
    original = "数据处理者应当依照法律、行政法规的规定，建立健全全流程数据安全管理制度。"
    text, encoding = detect_and_decode(original.encode("utf-16-le"))
    assert (text, encoding) == (original, "utf-16-le")


def test_binary_garbage_is_rejected_with_a_named_file(tmp_path):
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(0, 32)) * 64 + b"\x81\x8d\x8f\x90\x9d" * 50)
    with pytest.raises(LoaderError) as info:
        read_text(path)
    assert info.value.status == 422
    assert "noise.txt" in info.value.message and "encoding" in info.value.message


def test_binary_data_that_happens_to_be_valid_utf8_is_rejected(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"\x00\x01\x02\x03 header \x00\x00\x00\x07\x08" * 40)
    with pytest.raises(LoaderError, match="binary data"):
        read_text(path)


def test_broken_bom_is_reported_not_guessed(tmp_path):
    path = tmp_path / "broken.txt"
    path.write_bytes(codecs.BOM_UTF8 + b"ok \xff\xfe\xfd")
    with pytest.raises(LoaderError, match="byte-order mark"):
        read_text(path)


def test_a_few_corrupt_bytes_in_a_large_gbk_file_do_not_lose_the_file():
    data = ("第十条 国家通过促进经济和社会发展，创造就业条件，扩大就业机会。\n" * 200).encode("gbk")
    data = data[:1000] + b"\xff" + data[1000:]
    text, encoding = detect_and_decode(data)
    assert encoding == "gb18030"
    assert 1 <= text.count("\ufffd") <= 3  # the stray byte, and the pair it knocked out of step
    assert text.count("第十条") >= 199


def test_empty_file_decodes_to_empty_text():
    assert detect_and_decode(b"") == ("", "utf-8")


def test_html_meta_charset_is_honoured():
    html = '<html><head><meta charset="gb2312"><title>测试</title></head><body><p>劳动者</p></body></html>'
    assert "劳动者" in decode_html(html.encode("gbk"), "page.html")


def test_html_http_equiv_charset_is_honoured():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=big5"></head><body>勞動者</body></html>'
    assert "勞動者" in decode_html(html.encode("big5"), "page.html")


def test_html_with_a_wrong_declared_charset_falls_back_to_detection():
    html = '<html><head><meta charset="utf-8"></head><body><p>为了保护劳动者的合法权益，调整劳动关系。</p></body></html>'
    assert "保护劳动者" in decode_html(html.encode("gbk"), "page.html")


def test_html_saved_as_utf8_despite_an_old_declaration_is_read_as_utf8():
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Gerät für Café – 劳动法</p></body></html>'
    assert "Gerät für Café – 劳动法" in decode_html(html.encode("utf-8"), "page.html")


def test_real_utf16_text_file_loads(shared_data):
    docs = load_file(shared_data / "docs/en/files/unstructured_fake-text-utf-16.txt")
    assert docs[0].text.startswith("This is a test document to use for unit tests.")
    assert "\x00" not in docs[0].text


def test_real_cp1252_html_file_loads(shared_data):
    docs = load_file(shared_data / "docs/en/files/unstructured_fake-html-cp1252.html")
    text = docs[0].text
    for word in ("schöne", "köstlich", "L'été", "niño", "€"):
        assert word in text
    assert "\ufffd" not in text


@pytest.mark.parametrize(
    "garbled",
    [
        WESTERN.encode("utf-8").decode("latin-1"),  # UTF-8 read as Latin-1: C1 controls in the text
        # UTF-8 read as cp1252 ("â€“"), bytes cp1252 leaves undefined kept as C1 controls, as browsers do
        "".join(chr(b) if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else bytes([b]).decode("cp1252")
                for b in WESTERN.encode("utf-8")),
    ],
    ids=["latin-1", "cp1252"],
)
def test_utf8_once_decoded_as_a_western_code_page_is_repaired(tmp_path, garbled):
    path = tmp_path / "copied.txt"
    path.write_text(garbled, encoding="utf-8")
    assert read_text(path) == WESTERN


def test_real_text_with_accents_before_symbols_is_not_repaired(tmp_path):
    # Letters that open a UTF-8 sequence, followed by characters that continue one, but no sure sign.
    text = "« Un café\u00a0» au CAFÉ\u00a0: 50°C, São Paulo ±2, 中文。\n"
    path = tmp_path / "french.txt"
    path.write_text(text, encoding="utf-8")
    assert read_text(path) == text


def test_real_garbled_text_file_reads_with_its_dashes(shared_data):
    [doc] = load_file(shared_data / "docs" / "en" / "files" / "unstructured_norwich-city.txt")
    assert "1986–1990 Watford" in doc.text and "\u0080" not in doc.text
