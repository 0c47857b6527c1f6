"""Moving a knowledge base between vector stores (faiss -> pgvector -> faiss, faiss -> milvus -> faiss -> milvus)
without re-embedding: the same chunks, the same rankings and scores, and the source's vectors gone."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from configs import Settings
from server.cli import main as kbchat_main
from server.db import Database
from server.errors import InvalidInput
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.vector_store.milvus_store import client_for, dispose_clients
from server.knowledge_base.vector_store.pgvector_store import dispose_engines
from tests.chat_support import GARDEN_FILES

QUESTIONS = ["How often should the compost heap be turned?", "Which flowers do bees visit?", "tomato watering"]


@pytest.fixture
def settings(tmp_path, tmp_path_factory, pg_url) -> Settings:
    cache = tmp_path_factory.getbasetemp() / "kb-embedding-cache"
    return Settings(paths={"data_root": tmp_path, "cache_dir": cache, "database_url": pg_url})


@pytest.fixture
def manager(settings):
    db = Database(settings.paths.database_url)
    db.create_tables()
    mgr = KnowledgeBaseManager(settings, db)
    yield mgr
    mgr.close()
    db.dispose()
    dispose_engines()


def rankings(manager, mode: str) -> list[list[tuple[str, float]]]:
    return [[(h.doc_id, round(h.score, 4)) for h in manager.search("garden", q, top_k=4, mode=mode,
                                                                     score_threshold=0.0)]
            for q in QUESTIONS]


def pg_rows(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'kbchat_vectors_%'")).all()
        count = sum(conn.scalar(text(f"SELECT count(*) FROM {t} WHERE removed_in IS NULL")) or 0 for t in tables)
    engine.dispose()
    return int(count)


def test_a_kb_moves_to_pgvector_and_back_with_the_same_rankings_and_no_embedding(manager, settings, pg_url,
                                                                                 monkeypatch):
    manager.create_kb("garden")
    assert all(r.status == "indexed" for r in manager.add_files("garden", [(n, t.encode()) for n, t in
                                                                           GARDEN_FILES.items()]))
    before = {mode: rankings(manager, mode) for mode in ("vector", "hybrid")}
    assert all(len(hits) >= 2 for hits in before["vector"])
    sentences = manager.pool.get("garden").sentence_count
    embedder = manager.embeddings.get(None)

    def no_passages(texts, *, is_query):
        assert is_query, "a migration must not embed passages again"
        return real(texts, is_query=is_query)

    real = embedder._encode
    monkeypatch.setattr(embedder, "_encode", no_passages)
    info = manager.migrate_kb("garden", "pgvector")
    assert info.vector_store == "pgvector" and pg_rows(pg_url) == info.chunk_count > 0
    assert {mode: rankings(manager, mode) for mode in before} == before
    assert manager.pool.get("garden").sentence_count == sentences
    with pytest.raises(InvalidInput, match="already uses"):
        manager.migrate_kb("garden", "pgvector")
    monkeypatch.undo()

    # The command line, as another process would: it reads the KB from PostgreSQL and moves it back.
    monkeypatch.setenv("KBCHAT_PATHS__DATA_ROOT", str(settings.paths.data_root))
    monkeypatch.setenv("KBCHAT_PATHS__CACHE_DIR", str(settings.paths.cache_dir))
    monkeypatch.setenv("KBCHAT_PATHS__DATABASE_URL", pg_url)
    assert kbchat_main(["kb", "migrate", "garden", "--to", "faiss"]) == 0
    assert pg_rows(pg_url) == 0
    manager.pool.clear()
    assert manager.get_kb("garden").vector_store == "faiss"
    assert {mode: rankings(manager, mode) for mode in before} == before


@pytest.fixture
def lite_manager(tmp_path, tmp_path_factory):
    """A manager on SQLite whose milvus knowledge bases live in the default milvus-lite file."""
    cache = tmp_path_factory.getbasetemp() / "kb-embedding-cache"
    settings = Settings(paths={"data_root": tmp_path, "cache_dir": cache})
    db = Database(settings.paths.database_url)
    db.create_tables()
    mgr = KnowledgeBaseManager(settings, db)
    yield mgr
    mgr.close()
    db.dispose()
    dispose_clients()


def milvus_rows(manager) -> int:
    uri = str(manager.ctx.store_options.milvus_uri)
    client = client_for(uri, None)
    return sum(client.query(name, filter=f"removed_in == {2**62}", output_fields=["count(*)"])[0]["count(*)"]
               for name in client.list_collections())


def test_a_kb_moves_to_milvus_and_back_with_the_same_rankings_and_no_embedding(lite_manager, monkeypatch):
    manager = lite_manager
    manager.create_kb("garden")
    assert all(r.status == "indexed" for r in manager.add_files("garden", [(n, t.encode()) for n, t in
                                                                           GARDEN_FILES.items()]))
    before = {mode: rankings(manager, mode) for mode in ("vector", "hybrid")}
    assert all(len(hits) >= 2 for hits in before["vector"])
    embedder = manager.embeddings.get(None)

    def no_passages(texts, *, is_query):
        assert is_query, "a migration must not embed passages again"
        return real(texts, is_query=is_query)

    real = embedder._encode
    monkeypatch.setattr(embedder, "_encode", no_passages)
    info = manager.migrate_kb("garden", "milvus")
    assert info.vector_store == "milvus" and milvus_rows(manager) == info.chunk_count > 0
    assert {mode: rankings(manager, mode) for mode in before} == before
    monkeypatch.undo()

    # The command line (in this process: a milvus-lite file serves one process) moves it back, then again.
    settings = manager.settings
    monkeypatch.setenv("KBCHAT_PATHS__DATA_ROOT", str(settings.paths.data_root))
    monkeypatch.setenv("KBCHAT_PATHS__CACHE_DIR", str(settings.paths.cache_dir))
    assert kbchat_main(["kb", "migrate", "garden", "--to", "faiss"]) == 0
    assert milvus_rows(manager) == 0
    assert kbchat_main(["kb", "migrate", "garden", "--to", "milvus"]) == 0
    manager.pool.clear()
    assert manager.get_kb("garden").vector_store == "milvus" and milvus_rows(manager) == info.chunk_count
    assert {mode: rankings(manager, mode) for mode in before} == before
