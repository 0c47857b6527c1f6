"""Chatchat-style maintenance entry point: the same flags and behaviour as `kbchat init`.

    python init_database.py                      # tables + sample knowledge base (new or changed files)
    python init_database.py --recreate-vs        # rebuild every vector store from content/
    python init_database.py -i -n my_kb          # ingest files added to my_kb/content
"""

from __future__ import annotations

import argparse
import logging
import sys

from configs import load_settings
from server.cli.init import add_init_arguments, run_init


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="init_database.py", description="Create and maintain kbchat's database "
                                     "and knowledge bases.")
    add_init_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run_init(args, settings)


if __name__ == "__main__":
    sys.exit(main())
