"""Decode text files of unknown encoding without producing mojibake.

Order: BOM (UTF-8/16/32), BOM-less UTF-16/32 when the NUL pattern makes it obvious, strict UTF-8,
then the legacy encodings kbchat users meet most (GB18030 ⊃ GBK, Big5, cp1252), with
charset-normalizer as the last resort for anything else. Detectors are unreliable on short
texts, so every guess is checked: a CJK decoding must be made mostly of common characters.
"""

from __future__ import annotations

import codecs
import logging
import unicodedata
from functools import lru_cache
from pathlib import Path

import charset_normalizer

from server.knowledge_base.loaders.mojibake import repair_mojibake

logger = logging.getLogger(__name__)

BOMS = (  # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SAMPLE = 1 << 16  # bytes scored when comparing candidate decodings
_MIN_COMMON_RATIO = 0.6  # share of non-ASCII characters that must be common CJK text
_CJK_PUNCT = set("，。、；：？！“”‘’（）《》〈〉【】「」『』—…·～﹏　％＃＆＊＋－／＜＝＞＠［］＿｛｝｜")


def read_text(path: Path, name: str | None = None) -> str:
    """Read a text file, detecting its encoding; raises UnreadableFile when no encoding fits. ``name`` is
    the file's name in messages and logs (an upload is read from a staged copy under another name)."""
    path = Path(path)
    return decode_bytes(path.read_bytes(), name or path.name)


def decode_bytes(data: bytes, name: str = "<bytes>") -> str:
    """Decode bytes of unknown encoding to str; raises UnreadableFile rather than guess wildly."""
    text, _ = detect_and_decode(data, name)
    return text


def detect_and_decode(data: bytes, name: str = "<bytes>") -> tuple[str, str]:
    """Return (text, encoding name) for bytes of unknown encoding, with UTF-8 that was once read as
    Latin-1 or cp1252 repaired (mojibake.py) before the text is judged."""
    from server.knowledge_base.loaders import UnreadableFile

    text, encoding = _detect(data, name)
    text = repair_mojibake(text, name)
    if not _plausible_text(text):
        raise UnreadableFile(name, f"looks like binary data, not text (decoded as {encoding})")
    return text, encoding


def _detect(data: bytes, name: str) -> tuple[str, str]:
    from server.knowledge_base.loaders import UnreadableFile

    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise UnreadableFile(name, f"starts with a {encoding} byte-order mark but is not valid {encoding}") from exc
    if not data:
        return "", "utf-8"
    wide = _bomless_wide_encoding(data)
    if wide:
        return data.decode(wide), wide
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    cjk = _best_cjk(data)
    if cjk:
        return cjk
    if len(data) % 2 == 0:
        for encoding in ("utf-16-le", "utf-16-be"):
            text = _strict(data, encoding)
            if text and len(text) >= 4 and _common_ratio(text) >= 0.9:
                return text, encoding
    cjk = _best_cjk(data, tolerant=True, name=name)
    if cjk:
        return cjk
    western = _western(data)
    if western:
        return western
    raise UnreadableFile(name, "could not detect the text encoding (tried UTF-8/16/32, GB18030, Big5, cp1252)")


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _bomless_wide_encoding(data: bytes) -> str | None:
    """UTF-16/32 without BOM: ASCII-range text leaves NUL bytes at regular positions, which no 8-bit text has."""
    n = len(data)
    if n < 4 or data.count(0) < n // 4:
        return None
    if n % 4 == 0:
        lanes = [data[i::4] for i in range(4)]
        zero = [lane.count(0) / len(lane) for lane in lanes]
        if zero[2] > 0.9 and zero[3] > 0.9 and zero[1] > 0.5:
            return _strict_name(data, "utf-32-le")
        if zero[0] > 0.9 and zero[1] > 0.9 and zero[2] > 0.5:
            return _strict_name(data, "utf-32-be")
    if n % 2:
        return None
    even, odd = data[0::2], data[1::2]
    even_zero, odd_zero = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_zero > 0.3 and even_zero < 0.05:
        return _strict_name(data, "utf-16-le")
    if even_zero > 0.3 and odd_zero < 0.05:
        return _strict_name(data, "utf-16-be")
    return None


def _strict_name(data: bytes, encoding: str) -> str | None:
    return encoding if _strict(data, encoding) is not None else None


@lru_cache(maxsize=65536)
def _is_common_cjk(ch: str) -> bool:
    """GB2312 level-1 hanzi (the 3,755 most used simplified characters) or Big5 level-1 (common traditional)."""
    if ch in _CJK_PUNCT:
        return True
    try:
        if 0xB0 <= ch.encode("gb2312")[0] <= 0xD7:
            return True
    except UnicodeEncodeError:
        pass
    try:
        return 0xA4 <= ch.encode("big5")[0] <= 0xC6
    except UnicodeEncodeError:
        return False


def _common_ratio(text: str) -> float:
    """Share of the non-ASCII characters that are common CJK characters or punctuation."""
    sample = text[:_SAMPLE]
    wide = [ch for ch in sample if ord(ch) > 0x7F]
    if not wide:
        return 0.0
    return sum(1 for ch in wide if _is_common_cjk(ch)) / len(wide)


def _best_cjk(data: bytes, tolerant: bool = False, name: str = "<bytes>") -> tuple[str, str] | None:
    """Pick GB18030 or Big5 by which decodes and yields more common characters.

    With tolerant=True a file with a few broken byte sequences (at most 1 in 1,000 characters) is
    still accepted, with U+FFFD in place of the broken bytes and a warning logged.
    """
    best: tuple[float, str, str] | None = None
    for encoding in ("gb18030", "big5hkscs"):
        text = _strict(data, encoding)
        if text is None:
            if not tolerant:
                continue
            text = data.decode(encoding, errors="replace")
            if text.count("\ufffd") > max(1, len(text) // 1000):
                continue
        ratio = _common_ratio(text)
        if ratio >= _MIN_COMMON_RATIO and (best is None or ratio > best[0]):
            best = (ratio, text, encoding)
    if best is None:
        return None
    if tolerant:
        logger.warning(
            "%s: decoded as %s with %d undecodable byte sequences replaced", name, best[2], best[1].count("\ufffd")
        )
    return best[1], best[2]


def _is_latin_text(text: str) -> bool:
    """Latin script, or too few non-ASCII letters for another script to be credible.

    Text in a non-Latin single-byte script (Cyrillic, Greek, Arabic) is mostly non-ASCII letters;
    Western text with a stray accent decoded in such a code page is not.
    """
    letters = [ch for ch in text[:_SAMPLE] if ch.isalpha()]
    wide = [ch for ch in letters if ord(ch) > 0x7F]
    if len(wide) < 0.3 * len(letters):
        return True
    latin = sum(1 for ch in wide if unicodedata.name(ch, "").startswith("LATIN"))
    return latin / len(wide) >= 0.9


def _western(data: bytes) -> tuple[str, str] | None:
    """cp1252 unless charset-normalizer finds a better non-Latin single-byte encoding (e.g. cp1251 Cyrillic)."""
    cp1252 = _strict(data, "cp1252")
    guess = charset_normalizer.from_bytes(data[:_SAMPLE]).best()
    if guess is not None and guess.encoding not in ("cp1252", "latin_1", "ascii"):
        text = _strict(data, guess.encoding)
        # Detectors often name a sibling Latin code page (cp1250, cp1257) for Western text,
        # which turns "naïve" into "naďve"; only trust them when the script is not Latin.
        if text is not None and (cp1252 is None or not _is_latin_text(text)):
            return text, guess.encoding
    if cp1252 is not None and _plausible_text(cp1252):
        return cp1252, "cp1252"
    return None


def _plausible_text(text: str) -> bool:
    """Reject decodings full of control characters (binary data that happens to decode)."""
    sample = text[:_SAMPLE]
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    return controls <= len(sample) // 100
