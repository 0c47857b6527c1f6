"""Limits shared by several services, each defined once."""

from __future__ import annotations

# The longest question or search query, in characters: a chat question is searched as it is, so chat and
# search share it (longer text belongs in an uploaded file).
MAX_QUERY_CHARS = 10000
