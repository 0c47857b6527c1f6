"""A knowledge base on the milvus vector store through the API and the command line: its vectors in the default
milvus-lite file, BM25 on kbchat's side for hybrid search, and its collection gone with it."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from server.app import create_app
from server.cli import main as kbchat_main
from server.knowledge_base.vector_store.milvus_store import NEVER, client_for, collection_name, dispose_clients
from tests.api.transport_support import fake_llm_settings
from tests.chat_support import GARDEN_FILES

QUESTION = "How often should compost be turned?"


def live_rows(uri: str, kb: str) -> dict[str, int]:
    """Vectors the KB's collection holds in its current version, by file."""
    found = client_for(uri, None).query(collection_name(kb, 384), filter=f"removed_in == {NEVER}",
                                        output_fields=["file"])
    counts: dict[str, int] = {}
    for row in found:
        counts[row["file"]] = counts.get(row["file"], 0) + 1
    return counts


def test_a_milvus_kb_is_searched_through_the_api_and_deleted_with_its_collection(tmp_path, fake):
    settings = fake_llm_settings(tmp_path, fake.base_url)
    uri = str(settings.paths.kb_root / ".milvus.db")
    try:
        with TestClient(create_app(settings)) as client:
            assert "milvus" in client.get("/settings/public").json()["vector_stores"]
            created = client.post("/kbs", json={"name": "garden", "vector_store": "milvus"})
            assert created.status_code == 201 and created.json()["vector_store"] == "milvus"
            upload = client.post("/kbs/garden/files", files=[("files", (name, body.encode()))
                                                             for name, body in GARDEN_FILES.items()])
            assert upload.status_code == 200, upload.text
            chunks = client.get("/kbs/garden").json()["chunk_count"]
            assert sum(live_rows(uri, "garden").values()) == chunks > 0
            for mode in ("vector", "hybrid"):
                hits = client.post("/kbs/garden/search", json={"query": QUESTION, "mode": mode, "top_k": 2}).json()
                assert hits[0]["metadata"]["source"] == "garden.md" and "every two weeks" in hits[0]["text"], mode
                assert all(0 <= h["score"] <= 1 for h in hits)
            only_bees = client.post("/kbs/garden/search", json={"query": QUESTION, "mode": "vector",
                                                                 "score_threshold": 0.0, "file_name": "bees.txt"})
            only_bees = only_bees.json()
            assert only_bees and {h["metadata"]["source"] for h in only_bees} == {"bees.txt"}
            assert client.delete("/kbs/garden/files/garden.md").status_code == 204
            assert set(live_rows(uri, "garden")) == {"bees.txt"}
            hits = client.post("/kbs/garden/search", json={"query": QUESTION, "mode": "hybrid",
                                                            "score_threshold": 0.0}).json()
            assert {h["metadata"]["source"] for h in hits} == {"bees.txt"}
            assert client.delete("/kbs/garden").status_code == 204
            assert client_for(uri, None).list_collections() == []
    finally:
        dispose_clients()


def test_kbchat_kb_create_chooses_milvus(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KBCHAT_PATHS__DATA_ROOT", str(tmp_path))
    (tmp_path / "bees.txt").write_text(GARDEN_FILES["bees.txt"], encoding="utf-8")
    try:
        assert kbchat_main(["kb", "create", "notes", "-s", "milvus"]) == 0
        assert kbchat_main(["kb", "add", "notes", str(tmp_path / "bees.txt")]) == 0
        capsys.readouterr()
        assert kbchat_main(["kb", "search", "notes", "Which flowers do bees visit?", "-k", "1"]) == 0
        assert "bees.txt" in capsys.readouterr().out
        store = tmp_path / "knowledge_base" / "notes" / "vector_store"
        sidecar = json.loads((store / (store / "CURRENT").read_text() / "store.json").read_text())
        assert sidecar["kind"] == "milvus" and (tmp_path / "knowledge_base" / ".milvus.db").is_dir()
    finally:
        dispose_clients()


def test_an_unusable_milvus_uri_is_a_422_naming_the_setting(tmp_path, fake):
    settings = fake_llm_settings(tmp_path, fake.base_url, kb={"milvus_uri": str(tmp_path / "vectors.sqlite")})
    with TestClient(create_app(settings)) as client:
        assert client.get("/settings/public").json()["vector_stores"] == ["faiss"]
        response = client.post("/kbs", json={"name": "garden", "vector_store": "milvus"})
        assert response.status_code == 422
        assert "kb.milvus_uri" in response.json()["error"]["message"]
        assert client.get("/kbs").json() == []
