"""The repository functions on each database engine (SQLite and PostgreSQL): knowledge bases, files, chunk
rows, conversations, messages and feedback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from server.db import Database
from server.db import chat_repository as chats
from server.db import kb_repository as repo
from server.db.records import FileFields
from server.errors import BadRequest, NotFound


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


def _fields(size: int = 10, **extra) -> FileFields:
    values = {"ext": ".md", "size": size, "mtime": 1767607200.25, "content_hash": "ab" * 32, "status": "indexed",
              "error": "", "loader": "markdown", "splitter": "structure-recursive:500/50:chars",
              "chunk_size": 500, "chunk_overlap": 50, "chunk_unit": "chars", **extra}
    return FileFields(**values)


def test_files_and_chunks_keep_their_counts(db):
    with db.unit_of_work() as session:
        kb = repo.add_kb(session, "法律", "labour law", "faiss", "multilingual-e5-small")
        repo.save_file(session, kb.id, "劳动法.md", [("d1", {"page": 1}), ("d2", {"page": 2})], _fields())
        repo.save_file(session, kb.id, "notes.txt", [("d3", {"source": "notes.txt"})], _fields(3, ext=".txt"))
    with db.unit_of_work() as session:
        kb = repo.require_kb(session, "法律")
        assert (kb.file_count, kb.chunk_count) == (2, 3)
        law = repo.get_file(session, kb.id, "劳动法.md")
        assert law is not None and law.chunk_count == 2 and law.mtime == 1767607200.25 and law.chunk_unit == "chars"
        assert repo.doc_files(session, kb.id) == {"d1": "劳动法.md", "d2": "劳动法.md", "d3": "notes.txt"}
        assert repo.delete_doc(session, kb.id, "d2") and not repo.delete_doc(session, kb.id, "d2")
        assert repo.mark_file_failed(session, kb.id, "notes.txt", "unreadable")
    with db.unit_of_work() as session:
        kb = repo.require_kb(session, "法律")
        assert (kb.file_count, kb.chunk_count) == (2, 1)
        notes = repo.get_file(session, kb.id, "notes.txt")
        assert notes is not None and (notes.status, notes.error, notes.chunk_count) == ("error", "unreadable", 0)
        assert repo.delete_file(session, kb.id, "劳动法.md")
        assert [f.file_name for f in repo.list_files(session, kb.id)] == ["notes.txt"]


def test_a_rebuild_replaces_every_file_and_records_the_model(db):
    with db.unit_of_work() as session:
        kb = repo.add_kb(session, "docs", "", "faiss", "old-model")
        repo.save_file(session, kb.id, "a.md", [("a1", {})], _fields())
        rebuilt = repo.replace_all_files(session, kb.id, [("b.md", [("b1", {}), ("b2", {})], _fields())], "new-model")
    assert (rebuilt.embed_model, rebuilt.file_count, rebuilt.chunk_count) == ("new-model", 1, 2)
    with db.unit_of_work() as session:
        assert repo.doc_files(session, kb.id) == {"b1": "b.md", "b2": "b.md"}


def test_a_deleted_kb_takes_its_rows_and_names_stay_unique(db):
    with db.unit_of_work() as session:
        kb = repo.add_kb(session, "docs", "", "faiss", "m")
        repo.save_file(session, kb.id, "a.md", [("a1", {})], _fields())
    with pytest.raises(IntegrityError), db.unit_of_work() as session:
        repo.add_kb(session, "docs", "", "faiss", "m")
    with db.unit_of_work() as session:
        assert repo.delete_kb(session, "docs") and not repo.delete_kb(session, "docs")
        assert repo.list_kbs(session) == [] and repo.doc_files(session, kb.id) == {}
        with pytest.raises(NotFound):
            repo.require_kb(session, "docs")


def test_conversations_keep_message_order_feedback_and_paging(db):
    with db.unit_of_work() as session:
        first = chats.create_conversation(session, "first", "llm")
        second = chats.create_conversation(session, "second", "kb")
        question = chats.add_message(session, first.id, "user", "How long may probation last?", "kb", {})
        answer = chats.add_message(session, first.id, "assistant", "Six months.", "kb", {"sources": [{"n": 1}]})
        chats.set_feedback(session, answer.id, 1, "")
        with pytest.raises(BadRequest):
            chats.set_feedback(session, question.id, 1, "")
    with db.unit_of_work() as session:
        chats.set_feedback(session, answer.id, -1, "too short")
        assert chats.set_title_if(session, first.id, "Probation", "first")
        assert not chats.set_title_if(session, second.id, "Other", "first")
    with db.unit_of_work() as session:
        page, total = chats.list_conversations(session, 1, 1)
        assert total == 2 and [(c.id, c.title, c.message_count) for c in page] == [(first.id, "Probation", 2)]
        stored = chats.get_conversation(session, first.id)
        assert stored.messages is not None
        assert [(m.role, m.content) for m in stored.messages] == [("user", question.content),
                                                                  ("assistant", "Six months.")]
        assert datetime.fromisoformat(stored.messages[0].created_at or "").tzinfo == UTC
        assert stored.messages[1].meta == {"sources": [{"n": 1}]}
        feedback = stored.messages[1].feedback
        assert feedback is not None and (feedback.score, feedback.reason) == ("down", "too short")
        assert [m.id for m in chats.recent_messages(session, first.id, 1)] == [answer.id]
        chats.delete_conversation(session, first.id)
    with db.unit_of_work() as session:
        with pytest.raises(NotFound):
            chats.get_conversation(session, first.id)
        assert chats.list_conversations(session, 1, 10)[1] == 1
