"""Repository functions for knowledge bases, their files and chunk rows; each takes a session first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.db.models import FileDoc, KnowledgeBase, KnowledgeFile
from server.errors import NotFound


def get_kb(session: Session, name: str) -> KnowledgeBase | None:
    return session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == name))


def require_kb(session: Session, name: str) -> KnowledgeBase:
    """The knowledge base, or NotFound."""
    kb = get_kb(session, name)
    if kb is None:
        raise NotFound(f"knowledge base {name!r} does not exist", code="kb_not_found")
    return kb


def list_kbs(session: Session) -> list[KnowledgeBase]:
    return list(session.scalars(select(KnowledgeBase).order_by(KnowledgeBase.name)))


def add_kb(session: Session, name: str, description: str, vector_store: str, embed_model: str) -> KnowledgeBase:
    kb = KnowledgeBase(name=name, description=description, vector_store=vector_store, embed_model=embed_model)
    session.add(kb)
    session.flush()
    return kb


def delete_kb(session: Session, name: str) -> bool:
    kb = get_kb(session, name)
    if kb is None:
        return False
    session.execute(delete(FileDoc).where(FileDoc.kb_id == kb.id))
    session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb.id))
    session.delete(kb)
    return True


def update_kb(session: Session, name: str, **fields: Any) -> KnowledgeBase:
    kb = require_kb(session, name)
    for key, value in fields.items():
        setattr(kb, key, value)
    session.flush()
    return kb


def refresh_kb_counts(session: Session, kb_id: int) -> KnowledgeBase:
    """Recount the files and chunks of a knowledge base from its rows."""
    kb = session.get(KnowledgeBase, kb_id)
    kb.file_count = session.scalar(select(func.count()).where(KnowledgeFile.kb_id == kb_id)) or 0
    kb.chunk_count = session.scalar(select(func.count()).where(FileDoc.kb_id == kb_id)) or 0
    session.flush()
    return kb


def get_file(session: Session, kb_id: int, file_name: str) -> KnowledgeFile | None:
    return session.scalar(
        select(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id, KnowledgeFile.file_name == file_name)
    )


def list_files(session: Session, kb_id: int) -> list[KnowledgeFile]:
    query = select(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id).order_by(KnowledgeFile.file_name)
    return list(session.scalars(query))


def save_file(
    session: Session,
    kb_id: int,
    file_name: str,
    docs: list[tuple[str, dict[str, Any]]] | None = None,
    **fields: Any,
) -> KnowledgeFile:
    """Create or update a file row; when ``docs`` is given, its chunk rows are replaced by them."""
    row = get_file(session, kb_id, file_name)
    if row is None:
        row = KnowledgeFile(kb_id=kb_id, file_name=file_name)
        session.add(row)
    for key, value in fields.items():
        setattr(row, key, value)
    session.flush()
    if docs is not None:
        session.execute(delete(FileDoc).where(FileDoc.file_id == row.id))
        session.add_all(FileDoc(kb_id=kb_id, file_id=row.id, doc_id=doc_id, meta=meta) for doc_id, meta in docs)
        row.chunk_count = len(docs)
        session.flush()
    refresh_kb_counts(session, kb_id)
    return row


def delete_file(session: Session, kb_id: int, file_name: str) -> bool:
    row = get_file(session, kb_id, file_name)
    if row is None:
        return False
    session.execute(delete(FileDoc).where(FileDoc.file_id == row.id))
    session.delete(row)
    session.flush()
    refresh_kb_counts(session, kb_id)
    return True


def delete_all_files(session: Session, kb_id: int) -> None:
    session.execute(delete(FileDoc).where(FileDoc.kb_id == kb_id))
    session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id))
    refresh_kb_counts(session, kb_id)


def file_doc_ids(session: Session, kb_id: int, file_name: str) -> list[str]:
    row = get_file(session, kb_id, file_name)
    if row is None:
        return []
    return list(session.scalars(select(FileDoc.doc_id).where(FileDoc.file_id == row.id).order_by(FileDoc.id)))


def doc_files(session: Session, kb_id: int) -> dict[str, str]:
    """Every chunk id of a knowledge base with the name of its file."""
    query = select(FileDoc.doc_id, KnowledgeFile.file_name).join(KnowledgeFile, FileDoc.file_id == KnowledgeFile.id)
    return {doc_id: name for doc_id, name in session.execute(query.where(FileDoc.kb_id == kb_id)).all()}


def find_doc(session: Session, kb_id: int, doc_id: str) -> tuple[FileDoc, KnowledgeFile] | None:
    """The chunk row and its file, or None."""
    doc = session.scalar(select(FileDoc).where(FileDoc.kb_id == kb_id, FileDoc.doc_id == doc_id))
    if doc is None:
        return None
    return doc, session.get(KnowledgeFile, doc.file_id)


def delete_doc(session: Session, kb_id: int, doc_id: str) -> bool:
    """Remove one chunk row and update its file's and knowledge base's counts."""
    found = find_doc(session, kb_id, doc_id)
    if found is None:
        return False
    doc, file_row = found
    session.delete(doc)
    session.flush()
    file_row.chunk_count = session.scalar(select(func.count()).where(FileDoc.file_id == file_row.id)) or 0
    refresh_kb_counts(session, kb_id)
    return True
