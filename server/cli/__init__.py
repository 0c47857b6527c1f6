"""The `kbchat` command: each sub-module registers its own subcommands."""

from __future__ import annotations

import argparse
import logging
import sys

from configs import load_settings
from server.cli import eval as eval_command
from server.cli import init, kb, llm, start
from server.db.engine import DatabaseUnavailable
from server.db.migrate import NewerSchema
from server.logs import configure_logging

logger = logging.getLogger(__name__)

# Modules that expose `register(subparsers)`; each subcommand sets `func(args, settings) -> int` as its default.
COMMAND_MODULES = (init, kb, eval_command, llm, start)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kbchat", description="Local-first knowledge-base chat.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(logging.DEBUG if args.verbose else settings.log_level)
    try:
        return int(args.func(args, settings) or 0)
    except (DatabaseUnavailable, NewerSchema) as exc:
        # A configuration problem, not a bug: one line that names the setting, no traceback.
        logger.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
