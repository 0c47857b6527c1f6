"""The API with its metadata and history on PostgreSQL: a knowledge base is made, a file uploaded and a
chat answered, and everything lands in the PostgreSQL database (nothing in a SQLite file)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from server.app import create_app
from tests.api.transport_support import fake_llm_settings
from tests.chat_support import GARDEN_FILES, parse_sse


def test_a_kb_upload_and_a_kb_chat_are_stored_on_postgresql(tmp_path, fake, pg_url):
    settings = fake_llm_settings(tmp_path, fake.base_url, paths={"database_url": pg_url})
    fake.queue("Turn the heap every two weeks [1].")
    with TestClient(create_app(settings)) as client:
        assert client.post("/kbs", json={"name": "garden", "description": "garden notes"}).status_code == 201
        upload = client.post("/kbs/garden/files", files=[("files", (name, body.encode()))
                                                         for name, body in GARDEN_FILES.items()])
        assert upload.status_code == 200, upload.text
        response = client.post("/chat/kb", json={"query": "How often should the compost heap be turned?",
                                                 "kb_name": "garden", "top_k": 2})
        assert response.status_code == 200, response.text
        events = parse_sse(response.text)[:-1]
        sources = next(e for e in events if e["type"] == "sources")["sources"]
        assert sources[0]["file"] == "garden.md" and "every two weeks" in sources[0]["text"]
        conversation_id = events[-1]["conversation_id"]
        listed = client.get("/conversations").json()
    assert conversation_id in [c["id"] for c in listed["items"]]
    assert not list(tmp_path.rglob("*.db")), "metadata went to a SQLite file instead of PostgreSQL"
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        kb = conn.execute(text("SELECT file_count, chunk_count, vector_store FROM knowledge_base "
                               "WHERE name = 'garden'")).one()
        files = conn.execute(text("SELECT file_name FROM knowledge_file ORDER BY file_name")).scalars().all()
        messages = conn.execute(text("SELECT role, content FROM message WHERE conversation_id = :c ORDER BY seq"),
                                {"c": conversation_id}).all()
        chunk_rows = conn.execute(text("SELECT count(*) FROM file_doc")).scalar()
    engine.dispose()
    assert kb.file_count == 2 and kb.chunk_count == chunk_rows > 0 and kb.vector_store == "faiss"
    assert files == sorted(GARDEN_FILES)
    assert [tuple(m) for m in messages] == [("user", "How often should the compost heap be turned?"),
                                            ("assistant", "Turn the heap every two weeks [1].")]


def test_a_pgvector_kb_is_searched_through_the_api_and_deleted_with_its_vectors(tmp_path, fake, pg_url):
    settings = fake_llm_settings(tmp_path, fake.base_url, paths={"database_url": pg_url})
    with TestClient(create_app(settings)) as client:
        assert client.get("/settings/public").json()["vector_stores"] == ["faiss", "milvus", "pgvector"]
        created = client.post("/kbs", json={"name": "garden", "vector_store": "pgvector"})
        assert created.status_code == 201 and created.json()["vector_store"] == "pgvector"
        upload = client.post("/kbs/garden/files", files=[("files", (name, body.encode()))
                                                         for name, body in GARDEN_FILES.items()])
        assert upload.status_code == 200, upload.text
        hits = client.post("/kbs/garden/search", json={"query": "How often should compost be turned?",
                                                        "mode": "vector", "top_k": 2}).json()
        assert hits[0]["metadata"]["source"] == "garden.md" and "every two weeks" in hits[0]["text"]
        assert 0 < hits[0]["score"] <= 1
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            table = conn.scalar(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'kbchat_vectors_%'"))
            stored = conn.scalar(text(f"SELECT count(*) FROM {table} WHERE kb = 'garden' AND removed_in IS NULL"))
            chunks = conn.scalar(text("SELECT chunk_count FROM knowledge_base WHERE name = 'garden'"))
        assert table == "kbchat_vectors_384" and stored == chunks > 0
        assert client.delete("/kbs/garden").status_code in (200, 204)
        with engine.connect() as conn:
            assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == 0
        engine.dispose()


def test_pgvector_without_a_postgresql_database_is_a_422_naming_the_setting(tmp_path, fake):
    with TestClient(create_app(fake_llm_settings(tmp_path, fake.base_url))) as client:
        assert client.get("/settings/public").json()["vector_stores"] == ["faiss", "milvus"]
        response = client.post("/kbs", json={"name": "garden", "vector_store": "pgvector"})
        assert response.status_code == 422
        assert "kb.pgvector_url" in response.json()["error"]["message"]
        assert client.get("/kbs").json() == []
