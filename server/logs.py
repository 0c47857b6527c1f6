"""Process-wide logging set-up for kbchat's entry points."""

from __future__ import annotations

import logging

# Libraries whose INFO lines are noise for a user (faiss reports every CPU build it does not find; alembic
# describes its set-up on every start, and server.db.migrate says what it upgraded).
QUIET_LOGGERS = ("faiss.loader", "httpx", "httpx2", "alembic")


def configure_logging(level: str | int) -> None:
    """Log to stderr at ``level``, keeping chatty libraries at WARNING."""
    if isinstance(level, str):
        level = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
