"""External programs some loaders run (from Debian's packages), found on PATH at run time."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

# A converter that hangs on a hostile file must not hold the ingestion worker for ever.
TOOL_TIMEOUT_S = 300


def find_tool(command: str, package: str, source: str) -> str:
    """Absolute path of ``command``, or an UnreadableFile that names the Debian package to install."""
    from server.knowledge_base.loaders import UnreadableFile

    found = shutil.which(command, path=os.environ.get("PATH", ""))
    if found is None:
        raise UnreadableFile(
            source, f"reading this format needs the program {command!r}, which is not installed "
            f"(install the Debian package {package!r}: apt-get install {package})")
    return found


def run_tool(args: list[str], source: str, cwd: Path | None = None) -> bytes:
    """Run a converter and return its standard output; a failure becomes an UnreadableFile with its message."""
    from server.knowledge_base.loaders import UnreadableFile

    try:
        done = subprocess.run(args, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False, cwd=cwd,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise UnreadableFile(source, f"{Path(args[0]).name} took longer than {TOOL_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = message[-1] if message else f"exit status {done.returncode}"
        logger.info("%s failed on %s: %s", Path(args[0]).name, source, reason)
        raise UnreadableFile(source, f"{Path(args[0]).name} could not read it ({reason})")
    return done.stdout
