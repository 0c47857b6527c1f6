"""Maintenance of knowledge bases against their content folders (used by `kbchat init` and init_database.py)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from server.db import kb_repository as repo
from server.errors import InvalidInput
from server.knowledge_base.ingestion import file_sha256
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.names import validate_kb_name
from server.knowledge_base.schemas import KBInfo

logger = logging.getLogger(__name__)


def discover_kbs(manager: KnowledgeBaseManager) -> list[str]:
    """Knowledge bases in the database plus folders under kb_root that hold a content/ folder."""
    names = {kb.name for kb in manager.list_kbs()}
    if manager.kb_root.is_dir():
        for path in manager.kb_root.iterdir():
            if (path / "content").is_dir():
                try:
                    names.add(validate_kb_name(path.name))
                except InvalidInput:
                    logger.warning("ignoring folder %s: not a valid knowledge base name", path)
    return sorted(names)


def ensure_kb(manager: KnowledgeBaseManager, name: str, embed_model: str | None = None) -> tuple[KBInfo, bool]:
    """The knowledge base, created when missing; returns (info, created)."""
    existing = {kb.name: kb for kb in manager.list_kbs()}
    if name in existing:
        return existing[name], False
    return manager.create_kb(name, embed_model=embed_model), True


def copy_samples(source: Path, target: Path) -> list[str]:
    """Copy sample documents that are missing from target (never overwriting a file already there)."""
    copied: list[str] = []
    if not source.is_dir() or source.resolve() == target.resolve():
        return copied
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.startswith(".") and not (target / path.name).exists():
            shutil.copyfile(path, target / path.name)
            copied.append(path.name)
    return copied


def content_files(manager: KnowledgeBaseManager, kb: str) -> list[str]:
    folder = manager.content_dir(kb)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def db_files(manager: KnowledgeBaseManager, kb: str) -> list[str]:
    row = manager.kb_row(kb)
    return [f.file_name for f in manager.db.run(repo.list_files, row.id)]


def new_files(manager: KnowledgeBaseManager, kb: str) -> list[str]:
    """Files in content/ that the database does not know."""
    known = set(db_files(manager, kb))
    return [name for name in content_files(manager, kb) if name not in known]


def changed_files(manager: KnowledgeBaseManager, kb: str) -> list[str]:
    """Files in the database whose content/ copy differs from what was ingested (size/mtime, then hash)."""
    row = manager.kb_row(kb)
    changed = []
    for record in manager.db.run(repo.list_files, row.id):
        path = manager.content_dir(kb) / record.file_name
        if not path.is_file():
            continue
        stat = path.stat()
        if stat.st_size == record.size and abs(stat.st_mtime - record.mtime) < 1e-3:
            continue
        if file_sha256(path) != record.content_hash:
            changed.append(record.file_name)
    return changed


def prune_db(manager: KnowledgeBaseManager, kb: str) -> list[str]:
    """Remove rows and chunks of files that vanished from content/."""
    present = set(content_files(manager, kb))
    gone = [name for name in db_files(manager, kb) if name not in present]
    for name in gone:
        manager.delete_file(kb, name)
    return gone


def prune_folder(manager: KnowledgeBaseManager, kb: str) -> list[str]:
    """Delete files in content/ that the database does not know."""
    orphans = new_files(manager, kb)
    for name in orphans:
        (manager.content_dir(kb) / name).unlink(missing_ok=True)
    return orphans


LOST_CHUNKS = "its chunks are missing from the index (an interrupted write); add the file again or rebuild"


def reconcile(manager: KnowledgeBaseManager, kb: str) -> dict[str, list[str]]:
    """Make the index and the database agree after an interrupted write (a killed process, say).

    The database is the record: chunks in the index that no file row lists are removed, and a file
    whose listed chunks are missing from the index is marked as an error with no chunks, so it shows
    in the file list as needing to be added again. Returns the orphan chunk ids and the files marked.
    """
    row = manager.kb_row(kb)
    with manager.pool.writer_lock(kb):
        store = manager.pool.get(kb)
        recorded = manager.db.run(repo.doc_files, row.id)
        stored = store.doc_ids()
        orphans = sorted(stored - recorded.keys())
        lost = sorted({name for doc_id, name in recorded.items() if doc_id not in stored})
        if orphans:
            with manager.pool.saving(kb, store):
                store.delete(orphans)
        with manager.db.unit_of_work() as session:
            for name in lost:
                repo.mark_file_failed(session, row.id, name, LOST_CHUNKS)
    if orphans or lost:
        logger.warning("knowledge base %s: removed %d orphan chunks from the index; %d files lost their chunks: %s",
                       kb, len(orphans), len(lost), ", ".join(lost))
    return {"orphan_chunks": orphans, "lost_files": lost}


def reconcile_all(manager: KnowledgeBaseManager) -> dict[str, dict[str, list[str]]]:
    """``reconcile`` every knowledge base (run at start-up); one that fails is logged and skipped."""
    report: dict[str, dict[str, list[str]]] = {}
    for info in manager.list_kbs():
        try:
            report[info.name] = reconcile(manager, info.name)
        except Exception:  # noqa: BLE001 - an unreadable store must not keep the others from being checked
            logger.exception("could not check knowledge base %s against the database", info.name)
    return report
