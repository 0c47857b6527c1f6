"""What the `kbchat` commands tell the user on the terminal (logging carries everything else)."""

from __future__ import annotations

import sys
from typing import IO, Any


def say(*parts: Any, file: IO[str] | None = None) -> None:
    """Write one line for the user to stdout (or ``file``)."""
    (file or sys.stdout).write(" ".join(str(p) for p in parts) + "\n")
