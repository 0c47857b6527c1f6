"""Limits on zip-based documents (DOCX, XLSX, PPTX, EPUB), checked before a parser unpacks them.

A one-megabyte upload can hold a gigabyte of zeros; a parser that unpacks it holds it all in memory.
The sizes a zip declares are read first: too much in all, or a suspiciously high compression ratio on a
large file, and the file is refused as unreadable. Python's zipfile also stops an entry that unpacks to
more than it declares, so a lying header fails in the parser.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from server.knowledge_base.loaders import UnreadableFile

ZIP_FORMATS = frozenset({".docx", ".xlsx", ".pptx", ".epub"})
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
# Office XML compresses about 5-20x; runs of one byte compress about 1000x.
MAX_RATIO = 200
RATIO_CHECKED_FROM_BYTES = 50 * 1024 * 1024


def check_archive(path: Path, source: str) -> None:
    """Raise UnreadableFile for a zip-based document that would unpack to too much."""
    if path.suffix.lower() not in ZIP_FORMATS or not zipfile.is_zipfile(path):
        return  # not an archive kind, or not a zip at all: the parser reports what is wrong
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
    unpacked = sum(entry.file_size for entry in entries)
    packed = max(1, sum(entry.compress_size for entry in entries))
    if unpacked > MAX_UNPACKED_BYTES:
        raise UnreadableFile(source, f"it would unpack to {unpacked // 2**20} MiB, more than the "
                                     f"{MAX_UNPACKED_BYTES // 2**20} MiB allowed")
    if unpacked >= RATIO_CHECKED_FROM_BYTES and unpacked / packed > MAX_RATIO:
        raise UnreadableFile(source, f"it would unpack {unpacked / packed:.0f} times larger "
                                     f"({unpacked // 2**20} MiB), which only a zip bomb does")
