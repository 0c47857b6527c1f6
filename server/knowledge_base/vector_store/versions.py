"""Versioned folders switched atomically: how a store reaches the disk without ever being half-written.

``root/CURRENT`` names the live version folder (``v000007``). A commit writes a complete new folder
under a temporary name, fsyncs it, renames it to its version name, then replaces CURRENT through
``os.replace``. A crash at any step leaves CURRENT naming the previous complete version; leftovers
are removed by the next successful commit, which keeps the version before it for processes still reading
it (a reader whose version went all the same finds CURRENT moved and reads again: ``open_store``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

CURRENT = "CURRENT"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _number(name: str) -> int | None:
    return int(name[1:]) if name.startswith("v") and name[1:].isdigit() else None


def current_folder(root: Path) -> Path | None:
    """The live version folder, or None when nothing was ever committed (OSError if unreadable)."""
    pointer = root / CURRENT
    if not pointer.is_file():
        return None
    return root / pointer.read_text(encoding="utf-8").strip()


def current_name(root: Path) -> str | None:
    """What CURRENT names right now (None when absent or unreadable): to see whether a save happened meanwhile."""
    try:
        return (root / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def version_number(folder: Path) -> int:
    """The number of a version folder: ``v000007`` and the ``.tmp-v000007-…`` it is written in are both 7."""
    name = folder.name
    if name.startswith(".tmp-"):
        name = name[len(".tmp-"):].split("-", 1)[0]
    return _number(name) or 0


def committed_version(root: Path) -> int:
    """The version number ``CURRENT`` names; 0 if nothing was saved or it is unreadable."""
    try:
        folder = current_folder(root)
    except OSError:
        return 0
    return 0 if folder is None else version_number(folder)


def commit(root: Path, write: Callable[[Path], None], last_version: int = 0) -> int:
    """Have ``write`` fill a new folder, make it the live version, drop older ones; returns its number."""
    root.mkdir(parents=True, exist_ok=True)
    existing = [n for n in (_number(p.name) for p in root.iterdir() if p.is_dir()) if n is not None]
    version = max([last_version, *existing]) + 1
    name = f"v{version:06d}"
    tmp = root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        for path in tmp.rglob("*"):
            if path.is_file():
                _fsync_file(path)
        _fsync_dir(tmp)
        os.replace(tmp, root / name)
        pointer = root / f"{CURRENT}.tmp"
        pointer.write_text(name, encoding="utf-8")
        _fsync_file(pointer)
        os.replace(pointer, root / CURRENT)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # The version before stays for a moment: a process that began reading it just now can finish.
    keep = {name, f"v{version - 1:06d}"}
    for path in root.iterdir():
        if path.is_dir() and path.name not in keep and (path.name.startswith(".tmp-") or _number(path.name) is not None):
            shutil.rmtree(path, ignore_errors=True)
    return version
