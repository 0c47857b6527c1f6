"""Limits shared by several services, each defined once."""

from __future__ import annotations

import re

# The longest question or search query, in characters: a chat question is searched as it is, so chat and
# search share it (longer text belongs in an uploaded file).
MAX_QUERY_CHARS = 10000

# Control characters a question may not carry (tab, line feed and carriage return stay): a NUL or an escape
# sequence says nothing to a search or a model, and some databases cannot store a NUL in text.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def without_control_chars(text: str) -> str:
    """The text with its control characters removed, tab and line breaks kept."""
    return _CONTROL_CHARS.sub("", text)
