"""The WebUI's strings: every key the pages use exists in both languages with the same placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from server.chat.schemas import CHAT_MODES
from webui_pages.i18n import LANGUAGES, TEXTS, pick_language, translate, uploader_style

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "webui.py", *sorted((ROOT / "webui_pages").glob("*.py"))]
# t("key"), ctx.t("key"), translate(lang, "key") with a literal key
KEY_USE = re.compile(r"""\b(?:t|translate\([^,()]+,)\s*\(?\s*["']([a-z_]+\.[a-z_.]+)["']""")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_literal_key_used_by_the_pages_exists():
    used = set()
    for path in SOURCES:
        used |= set(KEY_USE.findall(path.read_text(encoding="utf-8")))
    assert len(used) > 100, "the key scan found too few keys; is the pattern still right?"
    missing = sorted(key for key in used if key not in TEXTS)
    assert not missing


@pytest.mark.parametrize("family", ["mode.{}", "chat.welcome.{}", "chat.placeholder.{}"])
def test_every_chat_mode_has_its_texts(family):
    assert all(family.format(mode) in TEXTS for mode in CHAT_MODES)


def test_search_modes_have_labels():
    assert all(f"search_mode.{mode}" in TEXTS for mode in ("vector", "bm25", "hybrid"))


def test_both_languages_are_filled_with_matching_placeholders():
    for key, (zh, en) in TEXTS.items():
        assert zh.strip() and en.strip(), key
        assert _placeholders(zh) == _placeholders(en), key


def test_chinese_text_is_chinese():
    untranslated = [key for key, (zh, en) in TEXTS.items() if zh == en and re.search(r"[A-Za-z]{4,}", zh)]
    assert not untranslated


def test_translate_fills_placeholders_and_falls_back():
    assert translate("zh", "msg.sources", n=3) == "出处（3）"
    assert translate("en", "msg.sources", n=3) == "Sources (3)"
    assert translate("en", "no.such.key", default="fallback") == "fallback"
    assert translate("en", "no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("requested", "locale", "expected"),
    [("zh", "en-US", "zh"), ("en", "zh-CN", "en"), (None, "zh-TW", "zh"), (None, "fr-FR", "en"), ("xx", None, "en")],
)
def test_language_choice_prefers_explicit_then_browser_then_english(requested, locale, expected):
    assert pick_language(requested, locale) == expected
    assert expected in LANGUAGES


def test_no_text_key_is_written_twice():
    import ast
    from pathlib import Path

    import webui_pages.i18n as i18n

    tree = ast.parse(Path(i18n.__file__).read_text(encoding="utf-8"))
    table = next(n.value for n in ast.walk(tree) if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "TEXTS")
    keys = [k.value for k in table.keys]
    assert sorted({k for k in keys if keys.count(k) > 1}) == []


def test_uploader_style_shows_streamlit_uploader_texts_in_chinese_only():
    assert uploader_style("en", 200) == ""
    css = uploader_style("zh", 50)
    assert 'content: "上传"' in css
    assert 'content: "拖放文件到这里，每个文件不超过 50 MB"' in css
    # the English label and limit Streamlit draws are hidden, not left beside the Chinese ones
    assert 'content: "松开鼠标即可添加文件"' in css
    assert css.count("display: none") == 3
