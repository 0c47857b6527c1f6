"""What the `kbchat` commands tell the user on the terminal (logging carries everything else)."""

from __future__ import annotations

import sys
from typing import IO


def say(*parts: object, file: IO[str] | None = None, end: str = "\n") -> None:
    """Write a line for the user to stdout (or ``file``) at once; ``end=""`` keeps a progress line open."""
    stream = file or sys.stdout
    stream.write(" ".join(str(p) for p in parts) + end)
    stream.flush()
