"""Repair UTF-8 text that was once decoded as Latin-1 or cp1252 and saved again ("mojibake").

Text copied from web pages and old exports often carries "â€“" or "Ã©" where "–" and "é" were meant:
each character of a UTF-8 sequence became a character of its own. Such a run is a lead character
(U+00C2-U+00F4, the bytes that open a 2-4 byte UTF-8 sequence) followed by exactly as many
continuation characters (bytes 0x80-0xBF, read as Latin-1 or as cp1252) as the lead asks for. Real
text hardly ever holds such runs, and a run is only replaced when its bytes decode as UTF-8 to one
character. A lead letter followed by such characters can also be real text ("café\u00a0»" in French
typography), so a text is only repaired when it shows a sure sign as well: a C1 control character,
which no real text holds, or "Ã"/"Â" before a continuation character, or "â€".
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)


def _continuation_chars() -> dict[str, int]:
    """Each character a continuation byte (0x80-0xBF) becomes, as Latin-1 and as cp1252, with its byte."""
    chars = {chr(b): b for b in range(0x80, 0xC0)}
    for b in range(0x80, 0xC0):
        try:
            chars[bytes([b]).decode("cp1252")] = b
        except UnicodeDecodeError:
            continue  # bytes cp1252 leaves undefined (0x81, 0x8D, ...) appear as their Latin-1 C1 control
    return chars


_CONTINUATION = _continuation_chars()
_C = "[" + re.escape("".join(_CONTINUATION)) + "]"
_RUN = re.compile(f"[\u00c2-\u00df]{_C}|[\u00e0-\u00ef]{_C}{{2}}|[\u00f0-\u00f4]{_C}{{3}}")
_SURE_SIGN = re.compile(f"[\u0080-\u009f]|[\u00c2\u00c3]{_C}|\u00e2\u20ac")


def _fixed(run: str) -> str:
    raw = bytes([ord(run[0]), *(_CONTINUATION[ch] for ch in run[1:])])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return run
    return text if len(text) == 1 else run


def repair_mojibake(text: str, name: str = "<text>") -> str:
    """``text`` with its Latin-1/cp1252-decoded UTF-8 runs turned back into the characters they were."""
    if not _SURE_SIGN.search(text):
        return text
    fixes = 0

    def fix(match: re.Match[str]) -> str:
        nonlocal fixes
        out = _fixed(match.group())
        fixes += out != match.group()
        return out

    repaired = _RUN.sub(fix, text)
    if fixes:
        logger.info("%s: repaired %d mis-decoded character sequences", name, fixes)
    return repaired
