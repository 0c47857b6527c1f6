"""`kbchat kb list|create|delete|add|search|rebuild|migrate|files`: knowledge bases from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import get_args

from configs import Settings
from configs.settings import SearchMode
from server.cli.output import say
from server.cli.init import ProgressBar, open_manager
from server.errors import AppError
from server.knowledge_base.loaders import SUPPORTED_EXTENSIONS
from server.knowledge_base.manager import KnowledgeBaseManager, SearchHit


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("kb", help="manage and search knowledge bases")
    commands = parser.add_subparsers(dest="kb_command", required=True)

    commands.add_parser("list", help="list knowledge bases").set_defaults(func=_run, action=cmd_list)

    create = commands.add_parser("create", help="create a knowledge base")
    create.add_argument("name")
    create.add_argument("-d", "--description", default="")
    create.add_argument("-e", "--embed-model", default=None, help="embedding model (default from settings)")
    create.add_argument("-s", "--vector-store", default=None, help="faiss, pgvector or milvus (default from settings)")
    create.set_defaults(func=_run, action=cmd_create)

    delete = commands.add_parser("delete", help="delete a knowledge base with its files")
    delete.add_argument("name")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=_run, action=cmd_delete)

    add = commands.add_parser("add", help="add files or folders (searched recursively) to a knowledge base")
    add.add_argument("name")
    add.add_argument("paths", nargs="+", type=Path)
    add.add_argument("--override", action="store_true", help="replace files that already exist")
    add.add_argument("--chunk-size", type=int, default=None)
    add.add_argument("--chunk-overlap", type=int, default=None)
    add.add_argument("--no-index", action="store_true", help="only store the files, do not index them")
    add.set_defaults(func=_run, action=cmd_add)

    search = commands.add_parser("search", help="search a knowledge base")
    search.add_argument("name")
    search.add_argument("query")
    search.add_argument("-k", "--top-k", type=int, default=None)
    search.add_argument("-m", "--mode", choices=get_args(SearchMode), default=None)
    search.add_argument("-t", "--threshold", type=float, default=None, help="minimum vector score in [0, 1]")
    search.add_argument("-f", "--file", default=None, help="search only this file")
    search.set_defaults(func=_run, action=cmd_search)

    rebuild = commands.add_parser("rebuild", help="rebuild the vector store from the content folder")
    rebuild.add_argument("name")
    rebuild.add_argument("-e", "--embed-model", default=None, help="switch to this embedding model")
    rebuild.set_defaults(func=_run, action=cmd_rebuild)

    migrate = commands.add_parser("migrate", help="move a knowledge base to another vector store, without re-embedding")
    migrate.add_argument("name")
    migrate.add_argument("--to", required=True, dest="to_kind", help="target vector store: faiss, pgvector or milvus")
    migrate.set_defaults(func=_run, action=cmd_migrate)

    files = commands.add_parser("files", help="list the files of a knowledge base")
    files.add_argument("name")
    files.set_defaults(func=_run, action=cmd_files)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with open_manager(settings) as manager:
            return int(args.action(manager, args))
    except AppError as exc:
        say(f"error: {exc.message}", file=sys.stderr)
        return 1


def cmd_list(manager: KnowledgeBaseManager, _args: argparse.Namespace) -> int:
    kbs = manager.list_kbs()
    if not kbs:
        say("no knowledge bases yet; create one with `kbchat kb create NAME`")
    for kb in kbs:
        say(f"{kb.name}\t{kb.file_count} files\t{kb.chunk_count} chunks\t{kb.embed_model}\t{kb.description}")
    return 0


def cmd_create(manager: KnowledgeBaseManager, args: argparse.Namespace) -> int:
    info = manager.create_kb(args.name, args.description, args.embed_model, args.vector_store)
    say(f"created {info.name} ({info.embed_model}, {info.vector_store})")
    return 0


def cmd_migrate(manager: KnowledgeBaseManager, args: argparse.Namespace) -> int:
    before = manager.get_kb(args.name)
    info = manager.migrate_kb(args.name, args.to_kind)
    say(f"moved {info.name} from {before.vector_store} to {info.vector_store} ({info.chunk_count} chunks)")
    return 0


def cmd_delete(manager: KnowledgeBaseManager, args: argparse.Namespace) -> int:
    manager.get_kb(args.name)
    if not args.yes:
        answer = input(f"delete knowledge base {args.name!r} with all its files? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            say("aborted")
            return 1
    manager.delete_kb(args.name)
    say(f"deleted {args.name}")
    return 0


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
                                and not p.name.startswith(".")))
        else:
            files.append(path)
    return files


def cmd_add(manager: KnowledgeBaseManager, args: argparse.Namespace) -> int:
    files = _expand(args.paths)
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        say(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    started = time.monotonic()
    bar = ProgressBar(f"{args.name} add")
    try:
        results = manager.add_files(args.name, files, override=args.override, chunk_size=args.chunk_size,
                                    chunk_overlap=args.chunk_overlap, to_vector_store=not args.no_index, progress=bar)
    finally:
        bar.close()
    for result in results:
        detail = f"{result.chunks} chunks" if result.status == "indexed" else result.error
        say(f"{result.status:8} {result.file_name}  {detail}".rstrip())
    info = manager.get_kb(args.name)
    say(f"{info.name}: {info.file_count} files, {info.chunk_count} chunks ({time.monotonic() - started:.1f} s)")
    return 1 if any(r.status == "error" for r in results) else 0


def location(hit: SearchHit) -> str:
    """Where a chunk comes from: page, sheet or slide, and its heading path."""
    meta = hit.metadata
    parts = []
    for key, label in (("page", "p."), ("slide", "slide"), ("sheet", "sheet")):
        if meta.get(key) not in (None, ""):
            parts.append(f"{label} {meta[key]}")
    if meta.get("heading_path"):
        parts.append(" > ".join(meta["heading_path"]))
    return ", ".join(parts)


def cmd_search(manager: KnowledgeBaseManager, args: argparse.Namespace) -> int:
    hits = manager.search(args.name, args.query, top_k=args.top_k, score_threshold=args.threshold, mode=args.mode,
                          file_name=args.file)
    if not hits:
        say("no matching chunks")
    for hit in hits:
        where = location(hit)
        say(f"[{hit.rank}] {hit.score:.3f}  {hit.metadata.get('source', '')}" + (f"  ({where})" if where else ""))
        text = " ".join(hit.text.split())
        say(f"    {text[:300]}{'…' if len(text) > 300 else ''}")
    return 0


def cmd_rebuild(manager: KnowledgeBaseManager, args: argparse.Namespace) -> int:
    started = time.monotonic()
    bar = ProgressBar(f"{args.name} rebuild")
    try:
        results = manager.rebuild(args.name, bar, embed_model=args.embed_model)
    finally:
        bar.close()
    errors = [r for r in results if r.status == "error"]
    for result in errors:
        say(f"error    {result.file_name}  {result.error}")
    info = manager.get_kb(args.name)
    say(f"{info.name}: {info.file_count} files, {info.chunk_count} chunks ({time.monotonic() - started:.1f} s)")
    return 1 if errors else 0


def cmd_files(manager: KnowledgeBaseManager, args: argparse.Namespace) -> int:
    for f in manager.list_files(args.name):
        when = datetime.fromtimestamp(f.mtime).strftime("%Y-%m-%d %H:%M") if f.mtime else ""
        line = f"{f.status:8} {f.file_name}\t{f.size} bytes\t{f.chunk_count} chunks\t{when}"
        say(line + (f"\t{f.error}" if f.error else ""))
    return 0
