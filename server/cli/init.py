"""`kbchat init`: create the database and the sample knowledge base, plus Chatchat-style maintenance flags.

Without flags it creates missing tables, the sample knowledge base, and ingests the files of the
sample (or of the ``-n`` knowledge bases) that are new or changed, so re-running it is quick and safe.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from configs import Settings
from configs.settings import PROJECT_ROOT
from server.cli.output import say
from server.db import Database
from server.errors import AppError, Conflict
from server.knowledge_base import maintenance as mt
from server.knowledge_base.embeddings import use_sleeping_openmp_threads
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.schemas import FileResult, ProgressEvent
from server.llm.local.status import local_model_busy

SAMPLES_SOURCE = PROJECT_ROOT / "knowledge_base" / "samples" / "content"


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags shared by `kbchat init` and init_database.py."""
    parser.add_argument("-r", "--recreate-vs", action="store_true",
                        help="rebuild the vector stores from the files in content/ (with -e: switch model)")
    parser.add_argument("--create-tables", action="store_true", help="create missing database tables")
    parser.add_argument("--clear-tables", action="store_true",
                        help="drop and recreate every table (asks for confirmation unless -y)")
    parser.add_argument("-u", "--update-in-db", action="store_true",
                        help="re-ingest the files recorded in the database")
    parser.add_argument("-i", "--increment", action="store_true",
                        help="ingest only files in content/ that the database does not know")
    parser.add_argument("--prune-db", action="store_true",
                        help="remove database entries whose files vanished from content/")
    parser.add_argument("--prune-folder", action="store_true",
                        help="delete files in content/ that the database does not know")
    parser.add_argument("-n", "--kb-name", nargs="+", default=[], metavar="KB",
                        help="knowledge bases to act on (default: all, or the sample when no flag is given)")
    parser.add_argument("-e", "--embed-model", default=None,
                        help="embedding model for created or rebuilt knowledge bases")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("init", help="create the database and sample knowledge base; maintenance flags")
    add_init_arguments(parser)
    parser.set_defaults(func=run_init)


class ProgressBar:
    """A tqdm bar over files, with the current file's chunk progress as postfix."""

    def __init__(self, label: str, total: int | None = None) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=label, unit="file", file=sys.stderr, leave=True)
        self._fixed_total = total is not None

    def __call__(self, event: ProgressEvent) -> None:
        if not self._fixed_total and event.files_total and self._bar.total != event.files_total:
            self._bar.total = event.files_total
            self._bar.refresh()
        if event.stage == "chunks":
            self._bar.set_postfix_str(f"{event.file_name[:30]} {event.chunks_done}/{event.chunks_total} chunks")
        elif event.stage == "file_done" and not self._fixed_total:
            self._bar.update(1)

    def step(self) -> None:
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


@contextmanager
def open_manager(settings: Settings, *, clear_tables: bool = False) -> Iterator[KnowledgeBaseManager]:
    """A manager on a database whose tables exist (dropped and recreated first with clear_tables)."""
    use_sleeping_openmp_threads()
    db = Database(settings.paths.database_url)
    try:
        if clear_tables:
            db.drop_tables()
        db.create_tables()
        manager = KnowledgeBaseManager(settings, db)
        # Files added here give way to answers of the model server that the app uses.
        manager.foreground.add_probe(partial(local_model_busy, settings))
        try:
            yield manager
        finally:
            manager.close()
    finally:
        db.dispose()


def _report(kb: str, action: str, results: list[FileResult], started: float) -> None:
    counts = {s: sum(r.status == s for r in results) for s in ("indexed", "stored", "skipped", "error")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing to do"
    say(f"{kb}: {action}: {summary} ({time.monotonic() - started:.1f} s)")
    for result in results:
        if result.status == "error":
            say(f"  error: {result.file_name}: {result.error}")


def _reingest_all(manager: KnowledgeBaseManager, kb: str, names: list[str], action: str) -> None:
    started = time.monotonic()
    results = []
    if names:
        bar = ProgressBar(f"{kb} {action}", total=len(names))
        try:
            for name in names:
                results.append(manager.reingest_file(kb, name, progress=bar))
                bar.step()
        finally:
            bar.close()
    _report(kb, action, results, started)


def _confirm(question: str, ask: Callable[[str], str]) -> bool:
    try:
        return ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def run_init(args: argparse.Namespace, settings: Settings, ask: Callable[[str], str] = input) -> int:
    """Run `kbchat init` with parsed flags; returns the exit code."""
    if args.clear_tables and not args.yes and not _confirm(
            f"drop every table of {settings.paths.database_url} (conversations included)?", ask):
        say("aborted: nothing was changed")
        return 1
    maintenance = any([args.recreate_vs, args.update_in_db, args.increment, args.prune_db, args.prune_folder])
    try:
        with open_manager(settings, clear_tables=args.clear_tables) as manager:
            say(f"database ready at {settings.paths.database_url}")
            if args.clear_tables:
                say("tables cleared; run `kbchat init --recreate-vs` to index the content folders again")
            if maintenance:
                for kb in args.kb_name or mt.discover_kbs(manager):
                    _maintain(manager, kb, args)
            elif not (args.create_tables or args.clear_tables):
                _sync(manager, settings, args)
    except AppError as exc:
        say(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _sync(manager: KnowledgeBaseManager, settings: Settings, args: argparse.Namespace) -> None:
    """Default run: the sample knowledge base exists, and new or changed files are ingested."""
    sample = settings.kb.sample_kb
    targets = args.kb_name or [sample]
    if sample in targets:
        copied = mt.copy_samples(SAMPLES_SOURCE, manager.content_dir(sample))
        if copied:
            say(f"{sample}: copied {len(copied)} sample document(s)")
    for kb in targets:
        info, created = mt.ensure_kb(manager, kb, args.embed_model)
        if created:
            say(f"{kb}: created with embedding model {info.embed_model}")
        elif args.embed_model and args.embed_model != info.embed_model:
            raise Conflict(f"knowledge base {kb!r} uses {info.embed_model!r}; to switch it to "
                           f"{args.embed_model!r} run `kbchat init --recreate-vs -n {kb} -e {args.embed_model}`")
        _reingest_all(manager, kb, mt.new_files(manager, kb) + mt.changed_files(manager, kb), "new or changed files")


def _maintain(manager: KnowledgeBaseManager, kb: str, args: argparse.Namespace) -> None:
    """Apply the maintenance flags to one knowledge base, in a safe order."""
    info, created = mt.ensure_kb(manager, kb, args.embed_model)
    if created:
        say(f"{kb}: created with embedding model {info.embed_model}")
    if args.prune_db:
        say(f"{kb}: pruned {len(mt.prune_db(manager, kb))} database entries of vanished files")
    if args.prune_folder:
        say(f"{kb}: deleted {len(mt.prune_folder(manager, kb))} files unknown to the database")
    if args.recreate_vs:
        started = time.monotonic()
        bar = ProgressBar(f"{kb} rebuild")
        try:
            results = manager.rebuild(kb, bar, embed_model=args.embed_model)
        finally:
            bar.close()
        _report(kb, "vector store rebuilt", results, started)
        return  # a rebuild already covers every file in content/
    if args.update_in_db:
        present = set(mt.content_files(manager, kb))
        _reingest_all(manager, kb, [n for n in mt.db_files(manager, kb) if n in present], "re-ingested")
    if args.increment:
        _reingest_all(manager, kb, mt.new_files(manager, kb), "new files")
