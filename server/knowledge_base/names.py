"""Validation of knowledge-base names and file names, so no name can escape its folder or break a filesystem."""

from __future__ import annotations

import re
import unicodedata

from server.errors import InvalidInput

KB_NAME_MAX_CHARS = 50
FILE_NAME_MAX_BYTES = 255
# Letters and digits of any script (CJK included), then _ - . ; checked per character below.
_KB_EXTRA_CHARS = frozenset("_-.")
# Device names Windows refuses as file names, with or without an extension.
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_FORBIDDEN_FILE_CHARS = frozenset('/\\<>:"|?*')


def validate_kb_name(name: object) -> str:
    """Return the name if it is a valid knowledge-base name, else raise InvalidInput saying why."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("knowledge base name must be a non-empty string")
    if len(name) > KB_NAME_MAX_CHARS:
        raise InvalidInput(f"knowledge base name is too long ({len(name)} characters, at most {KB_NAME_MAX_CHARS})")
    if name.startswith("."):
        raise InvalidInput(f"knowledge base name {name!r} must not start with '.'")
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in _KB_EXTRA_CHARS)})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        raise InvalidInput(
            f"knowledge base name {name!r} holds characters that are not allowed ({shown}); "
            "use letters, digits, Chinese characters, '_', '-' or '.'"
        )
    if _RESERVED.match(name):
        raise InvalidInput(f"knowledge base name {name!r} is a reserved device name")
    return name


# Joins the names of knowledge bases searched together ("laws+handbook"); no name may hold it.
KB_JOINER = "+"
# Names of the knowledge bases that hold the files dropped into one conversation; no one else may use it.
CONVERSATION_KB_PREFIX = "_chat_"


def conversation_kb_name(conversation_id: str) -> str:
    """The knowledge base holding the files dropped into a conversation."""
    return validate_kb_name(f"{CONVERSATION_KB_PREFIX}{conversation_id}")


def is_conversation_kb(name: str) -> bool:
    return name.startswith(CONVERSATION_KB_PREFIX)


def split_kb_names(value: str) -> list[str]:
    """The knowledge bases a name stands for: "a+b" is a and b, searched together; each is validated."""
    names = [validate_kb_name(part) for part in value.split(KB_JOINER)] if isinstance(value, str) else []
    if not names:
        raise InvalidInput("knowledge base name must be a non-empty string")
    if len(set(names)) != len(names):
        raise InvalidInput(f"knowledge base {value!r} names the same knowledge base twice")
    return names


def validate_file_name(name: object) -> str:
    """Return the name in Unicode NFC if it is a safe plain file name (no folders), else raise InvalidInput.

    NFC makes the composed and decomposed spellings of one name (``café`` typed, ``café`` from a macOS
    disk) the same file rather than two files that look alike.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("file name must be a non-empty string")
    name = unicodedata.normalize("NFC", name)
    if name != name.strip():
        raise InvalidInput(f"file name {name!r} must not start or end with spaces")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise InvalidInput(f"file name {name!r} holds control characters")
    if name in (".", ".."):
        raise InvalidInput(f"file name {name!r} is not allowed")
    bad = sorted({ch for ch in name if ch in _FORBIDDEN_FILE_CHARS})
    if bad:
        shown = " ".join(repr(ch) for ch in bad)
        raise InvalidInput(f"file name {name!r} must be a plain name without folders or {shown}")
    if name.startswith("."):
        raise InvalidInput(f"file name {name!r} must not start with '.' (hidden files are not indexed)")
    if name.endswith("."):
        raise InvalidInput(f"file name {name!r} must not end with '.'")
    if len(name.encode("utf-8")) > FILE_NAME_MAX_BYTES:
        raise InvalidInput(f"file name is longer than {FILE_NAME_MAX_BYTES} bytes in UTF-8")
    if _RESERVED.match(name):
        raise InvalidInput(f"file name {name!r} is a reserved device name")
    return name
