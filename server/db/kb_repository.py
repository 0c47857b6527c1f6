"""Repository functions for knowledge bases, their files and chunk rows; each takes a session first.

Reads return the frozen records of ``server.db.records``, never ORM rows, so nothing of a session leaks
out. Several calls that must succeed or fail together run in one ``Database.unit_of_work()``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.db.models import FileDoc, KnowledgeBase, KnowledgeFile
from server.db.records import FileFields, FileRecord, KBRecord
from server.errors import NotFound

DocRows = list[tuple[str, dict[str, Any]]]  # (doc_id, metadata) of each chunk of a file


def _kb_row(session: Session, name: str) -> KnowledgeBase | None:
    return session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == name))


def _require_kb_row(session: Session, name: str) -> KnowledgeBase:
    kb = _kb_row(session, name)
    if kb is None:
        raise NotFound(f"knowledge base {name!r} does not exist", code="kb_not_found")
    return kb


def _file_row(session: Session, kb_id: int, file_name: str) -> KnowledgeFile | None:
    return session.scalar(
        select(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id, KnowledgeFile.file_name == file_name)
    )


def _refresh_counts(session: Session, kb_id: int) -> KnowledgeBase:
    """Recount the files and chunks of a knowledge base from its rows."""
    kb = session.get(KnowledgeBase, kb_id)
    if kb is None:
        raise NotFound(f"knowledge base #{kb_id} does not exist", code="kb_not_found")
    kb.file_count = session.scalar(select(func.count()).where(KnowledgeFile.kb_id == kb_id)) or 0
    kb.chunk_count = session.scalar(select(func.count()).where(FileDoc.kb_id == kb_id)) or 0
    session.flush()
    return kb


# ----- knowledge bases
def get_kb(session: Session, name: str) -> KBRecord | None:
    row = _kb_row(session, name)
    return None if row is None else KBRecord.of(row)


def require_kb(session: Session, name: str) -> KBRecord:
    """The knowledge base, or NotFound."""
    return KBRecord.of(_require_kb_row(session, name))


def list_kbs(session: Session) -> list[KBRecord]:
    return [KBRecord.of(row) for row in session.scalars(select(KnowledgeBase).order_by(KnowledgeBase.name))]


def add_kb(session: Session, name: str, description: str, vector_store: str, embed_model: str) -> KBRecord:
    kb = KnowledgeBase(name=name, description=description, vector_store=vector_store, embed_model=embed_model,
                       file_count=0, chunk_count=0)
    session.add(kb)
    session.flush()
    return KBRecord.of(kb)


def set_vector_store(session: Session, name: str, vector_store: str) -> KBRecord:
    kb = _require_kb_row(session, name)
    kb.vector_store = vector_store
    session.flush()
    return KBRecord.of(kb)


def delete_kb(session: Session, name: str) -> bool:
    kb = _kb_row(session, name)
    if kb is None:
        return False
    session.execute(delete(FileDoc).where(FileDoc.kb_id == kb.id))
    session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb.id))
    session.delete(kb)
    return True


# ----- files
def get_file(session: Session, kb_id: int, file_name: str) -> FileRecord | None:
    row = _file_row(session, kb_id, file_name)
    return None if row is None else FileRecord.of(row)


def list_files(session: Session, kb_id: int) -> list[FileRecord]:
    query = select(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id).order_by(KnowledgeFile.file_name)
    return [FileRecord.of(row) for row in session.scalars(query)]


def save_file(session: Session, kb_id: int, file_name: str, docs: DocRows, fields: FileFields) -> FileRecord:
    """Create or update a file row with its chunk rows replaced by ``docs``."""
    row = _file_row(session, kb_id, file_name)
    if row is None:
        row = KnowledgeFile(kb_id=kb_id, file_name=file_name)
        session.add(row)
    for key, value in asdict(fields).items():
        setattr(row, key, value)
    session.flush()
    _replace_docs(session, row, docs)
    _refresh_counts(session, kb_id)
    return FileRecord.of(row)


def mark_file_failed(session: Session, kb_id: int, file_name: str, error: str) -> bool:
    """Turn a file row into an error with no chunks (its chunks are gone); False if there is no such row."""
    row = _file_row(session, kb_id, file_name)
    if row is None:
        return False
    row.status, row.error = "error", error
    _replace_docs(session, row, [])
    _refresh_counts(session, kb_id)
    return True


def _replace_docs(session: Session, row: KnowledgeFile, docs: DocRows) -> None:
    session.execute(delete(FileDoc).where(FileDoc.file_id == row.id))
    session.add_all(FileDoc(kb_id=row.kb_id, file_id=row.id, doc_id=doc_id, meta=meta) for doc_id, meta in docs)
    row.chunk_count = len(docs)
    session.flush()


def delete_file(session: Session, kb_id: int, file_name: str) -> bool:
    row = _file_row(session, kb_id, file_name)
    if row is None:
        return False
    session.execute(delete(FileDoc).where(FileDoc.file_id == row.id))
    session.delete(row)
    session.flush()
    _refresh_counts(session, kb_id)
    return True


def replace_all_files(session: Session, kb_id: int, files: list[tuple[str, DocRows, FileFields]],
                      embed_model: str) -> KBRecord:
    """Replace every file row of a knowledge base (a rebuild) and record the model its store now uses."""
    session.execute(delete(FileDoc).where(FileDoc.kb_id == kb_id))
    session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id))
    session.flush()
    for name, docs, fields in files:
        save_file(session, kb_id, name, docs, fields)
    kb = _refresh_counts(session, kb_id)
    kb.embed_model = embed_model
    session.flush()
    return KBRecord.of(kb)


# ----- chunks
def doc_files(session: Session, kb_id: int) -> dict[str, str]:
    """Every chunk id of a knowledge base with the name of its file."""
    query = select(FileDoc.doc_id, KnowledgeFile.file_name).join(KnowledgeFile, FileDoc.file_id == KnowledgeFile.id)
    return {doc_id: name for doc_id, name in session.execute(query.where(FileDoc.kb_id == kb_id)).all()}


def delete_doc(session: Session, kb_id: int, doc_id: str) -> bool:
    """Remove one chunk row and update its file's and knowledge base's counts."""
    doc = session.scalar(select(FileDoc).where(FileDoc.kb_id == kb_id, FileDoc.doc_id == doc_id))
    if doc is None:
        return False
    file_row = session.get(KnowledgeFile, doc.file_id)
    session.delete(doc)
    session.flush()
    if file_row is not None:
        file_row.chunk_count = session.scalar(select(func.count()).where(FileDoc.file_id == file_row.id)) or 0
    _refresh_counts(session, kb_id)
    return True
