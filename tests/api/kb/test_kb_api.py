"""The knowledge-base HTTP API: every route's success and error statuses with JSON error bodies."""

from __future__ import annotations

import json

import pytest

from configs import Settings
from server.llm.registry import LLMRegistry
from tests.api.kb_support import LEASE, NOTE, assert_error

def sse_events(response) -> list:
    lines = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


# ----- knowledge bases
def test_create_list_get_and_delete_kb(client):
    created = client.post("/kbs", json={"name": "法律", "description": "laws"})
    assert created.status_code == 201 and created.json()["embed_model"] == "multilingual-e5-small"
    assert [k["name"] for k in client.get("/kbs").json()] == ["法律"]
    assert client.get("/kbs/法律").json()["description"] == "laws"
    assert client.delete("/kbs/法律").status_code == 204
    assert client.get("/kbs").json() == []


def test_create_existing_kb_is_409(client):
    client.post("/kbs", json={"name": "docs"})
    assert_error(client.post("/kbs", json={"name": "docs"}), 409, "kb_exists")


@pytest.mark.parametrize("body", [{"name": "bad name"}, {"name": ".hidden"}, {"name": ""}, {},
                                  {"name": "ok", "embed_model": "nope"}, {"name": "ok", "vector_store": "chroma"},
                                  {"name": "ok", "unexpected": 1}])
def test_create_kb_with_bad_body_is_422(client, body):
    assert_error(client.post("/kbs", json=body), 422)
    assert client.get("/kbs").json() == []


def test_unknown_kb_is_404_everywhere(client):
    assert_error(client.get("/kbs/nope"), 404, "kb_not_found")
    assert_error(client.delete("/kbs/nope"), 404)
    assert_error(client.get("/kbs/nope/files"), 404)
    assert_error(client.post("/kbs/nope/files", files=[("files", ("a.txt", b"x"))]), 404)
    assert_error(client.post("/kbs/nope/search", json={"query": "x"}), 404)
    assert_error(client.post("/kbs/nope/rebuild"), 404)
    assert_error(client.delete("/kbs/nope/chunks/abc"), 404)


# ----- uploads
def test_upload_returns_results_and_kb_counts(client, kb):
    response = client.post("/kbs/docs/files", files=[("files", ("劳动 合同.md", "# 标题\n\n劳动合同".encode()))],
                           data={"chunk_size": "200", "chunk_overlap": "20"})
    body = response.json()
    assert body["results"] == [{"file_name": "劳动 合同.md", "status": "indexed", "chunks": 1, "error": "", "code": ""}]
    assert body["kb"]["file_count"] == 3
    files = {f["file_name"]: f for f in client.get("/kbs/docs/files").json()}
    assert files["劳动 合同.md"]["splitter"] == "structure-recursive:200/20:chars"


def test_upload_stream_sends_progress_then_results_then_done(client, kb):
    response = client.post("/kbs/docs/files", files=[("files", ("new.txt", "新的通知".encode()))],
                           data={"stream": "true"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    stages = [e["stage"] for e in events]
    assert stages[0] == "file_start" and "file_done" in stages and stages[-2:] == ["done", "result"]
    assert events[-1]["results"][0]["status"] == "indexed"


def test_upload_reports_per_file_errors_inside_results(client, kb):
    response = client.post("/kbs/docs/files", files=[("files", ("bad.pdf", b"not a pdf")),
                                                     ("files", ("ok.txt", "好的".encode()))])
    assert response.status_code == 200
    statuses = {r["file_name"]: r["status"] for r in response.json()["results"]}
    assert statuses == {"bad.pdf": "error", "ok.txt": "indexed"}


def test_upload_larger_than_limit_is_413_and_stores_nothing(client, kb, tmp_path):
    big = b"a" * (1024 * 1024 + 10)
    assert_error(client.post("/kbs/docs/files", files=[("files", ("big.txt", big))]), 413, "payload_too_large")
    assert "big.txt" not in {f["file_name"] for f in client.get("/kbs/docs/files").json()}
    uploads = client.app.state.settings.paths.cache_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_an_upload_larger_in_all_than_the_request_limit_is_413_and_stores_nothing(client, kb):
    part = b"b" * (800 * 1024)  # each file is under the 1 MiB file limit; three are over the 2 MiB in all
    files = [("files", (f"part{n}.txt", part)) for n in range(3)]
    response = client.post("/kbs/docs/files", files=files)
    assert_error(response, 413, "payload_too_large")
    assert "in all" in response.json()["error"]["message"]
    assert not {"part0.txt", "part1.txt"} & {f["file_name"] for f in client.get("/kbs/docs/files").json()}
    uploads = client.app.state.settings.paths.cache_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_upload_of_only_unsupported_types_is_415(client, kb):
    assert_error(client.post("/kbs/docs/files", files=[("files", ("a.exe", b"MZ"))]), 415)


@pytest.mark.parametrize("name", ["../evil.txt", "..\\evil.txt", "a/b.txt", ".env.txt", "CON.txt"])
def test_upload_with_unsafe_file_name_is_422(client, kb, name, tmp_path):
    assert_error(client.post("/kbs/docs/files", files=[("files", (name, b"x"))]), 422)
    assert not (tmp_path / "knowledge_base" / "evil.txt").exists()
    assert len(client.get("/kbs/docs/files").json()) == 2


@pytest.mark.parametrize("data", [{"chunk_size": "abc"}, {"chunk_size": "5"}, {"chunk_overlap": "-1"},
                                  {"chunk_size": "100", "chunk_overlap": "100"}, {"override": "maybe"},
                                  {"stream": "true", "chunk_size": "5"}])
def test_upload_with_bad_parameters_is_422(client, kb, data):
    assert_error(client.post("/kbs/docs/files", files=[("files", ("c.txt", b"c"))], data=data), 422)


def test_upload_needs_multipart_files(client, kb):
    assert_error(client.post("/kbs/docs/files", json={"files": []}), 422)
    assert_error(client.post("/kbs/docs/files", data={"override": "true"}), 415)  # a form body, not multipart
    assert_error(client.post("/kbs/docs/files", files=[("files", ("d.txt", b"1")), ("files", ("d.txt", b"2"))]), 422)


def test_upload_without_override_skips_existing_name(client, kb):
    response = client.post("/kbs/docs/files", files=[("files", ("note.txt", "另一个版本".encode()))])
    assert response.json()["results"][0]["status"] == "skipped"
    assert client.get("/kbs/docs/files/note.txt/download").content == NOTE
    replaced = client.post("/kbs/docs/files", files=[("files", ("note.txt", "另一个版本".encode()))],
                           data={"override": "true"})
    assert replaced.json()["results"][0]["status"] == "indexed"
    assert client.get("/kbs/docs/files/note.txt/download").content == "另一个版本".encode()


# ----- files
def test_download_returns_the_stored_bytes(client, kb):
    response = client.get("/kbs/docs/files/lease.txt/download")
    assert response.status_code == 200 and response.content == LEASE
    assert_error(client.get("/kbs/docs/files/absent.txt/download"), 404)
    assert_error(client.get("/kbs/docs/files/.secret/download"), 422)


def test_delete_file_then_its_chunks_are_gone(client, kb):
    assert client.delete("/kbs/docs/files/lease.txt").status_code == 204
    hits = client.post("/kbs/docs/search", json={"query": "rent", "mode": "bm25"}).json()
    assert hits == []
    assert client.delete("/kbs/docs/files/lease.txt?delete_content=true").status_code == 204
    assert_error(client.delete("/kbs/docs/files/lease.txt"), 404)
    assert_error(client.delete("/kbs/docs/files/lease.txt?delete_content=maybe"), 422)


def test_reingest_file(client, kb):
    response = client.post("/kbs/docs/files/note.txt/reingest")
    assert response.status_code == 200 and response.json()["status"] == "indexed"
    assert_error(client.post("/kbs/docs/files/absent.txt/reingest"), 404)


# ----- chunks
def test_list_edit_and_delete_chunks(client, kb):
    chunks = client.get("/kbs/docs/files/note.txt/chunks").json()
    assert chunks[0]["metadata"]["source"] == "note.txt"
    doc_id = chunks[0]["doc_id"]
    edited = client.put(f"/kbs/docs/chunks/{doc_id}", json={"text": "试用期最长六个月，工资不得低于八成。"})
    assert edited.status_code == 200 and edited.json()["text"].startswith("试用期最长六个月")
    assert_error(client.put(f"/kbs/docs/chunks/{doc_id}", json={"text": ""}), 422)
    assert_error(client.put("/kbs/docs/chunks/missing", json={"text": "x"}), 404, "chunk_not_found")
    assert client.delete(f"/kbs/docs/chunks/{doc_id}").status_code == 204
    assert_error(client.delete(f"/kbs/docs/chunks/{doc_id}"), 404)
    assert_error(client.get("/kbs/docs/files/absent.txt/chunks"), 404)


# ----- search and rebuild
def test_search_returns_ranked_hits_with_sources(client, kb):
    hits = client.post("/kbs/docs/search", json={"query": "试用期多长", "top_k": 2}).json()
    assert hits[0]["metadata"]["source"] == "note.txt" and hits[0]["rank"] == 1
    assert 0.0 <= hits[0]["score"] <= 1.0
    only = client.post("/kbs/docs/search", json={"query": "rent", "file_name": "lease.txt", "mode": "vector"}).json()
    assert {h["metadata"]["source"] for h in only} == {"lease.txt"}


@pytest.mark.parametrize("body", [{"query": ""}, {}, {"query": "x", "top_k": 0}, {"query": "x", "top_k": 101},
                                  {"query": "x", "mode": "fuzzy"}, {"query": "x", "score_threshold": 2}])
def test_search_with_bad_body_is_422(client, kb, body):
    assert_error(client.post("/kbs/docs/search", json=body), 422)


def test_eval_scores_each_mode_on_uploaded_questions_and_explains_bad_ones(client, kb):
    lines = [json.dumps({"question": "试用期多长", "file": "note.txt"}, ensure_ascii=False),
             json.dumps({"question": "when is the rent due", "file": "lease.txt"})]
    response = client.post("/kbs/docs/eval", json={"questions": "\n".join(lines), "modes": ["bm25", "hybrid"]})
    assert response.status_code == 200, response.text
    reports = response.json()["reports"]
    assert [r["label"] for r in reports] == ["bm25", "hybrid"]
    assert all(r["questions"] == 2 and r["hit@5"] == 1.0 and r["p50_ms"] is not None for r in reports)
    error = assert_error(client.post("/kbs/docs/eval", json={"questions": '{"question": "x"}'}), 422)
    assert "line 1" in error["message"]
    assert_error(client.post("/kbs/docs/eval", json={"questions": "not json"}), 422)
    assert_error(client.post("/kbs/absent/eval", json={"questions": lines[0]}), 404)


def test_eval_with_rewrite_adds_each_mode_searched_with_the_models_hypothetical_answer(client, kb, fake):
    """The KB page's evaluation with rewriting: the chat model (a fake OpenAI-compatible one here) writes an
    answer in the documents' words, and "<mode> + rewrite" searches with it."""
    services = client.app.state.services
    fake_settings = Settings(llm={"default_model": "fake", "models": {
        "fake": {"kind": "openai_compatible", "base_url": fake.base_url, "model": "fake-model"}}})
    services.llms = LLMRegistry(fake_settings)
    fake.default_reply = "The tenant must pay the rent on the first day of every month."
    line = json.dumps({"id": "q", "question": "by when do I owe my landlord money", "file": "lease.txt",
                       "evidence": "first day of every month"})
    response = client.post("/kbs/docs/eval", json={"questions": line, "modes": ["bm25"], "rewrite": True})
    assert response.status_code == 200, response.text
    reports = {r["label"]: r for r in response.json()["reports"]}
    assert set(reports) == {"bm25", "bm25 + rewrite"}
    assert reports["bm25"]["hit@1"] == 0.0 and reports["bm25 + rewrite"]["hit@1"] == 1.0
    assert reports["bm25 + rewrite"]["rewrite_s_p50"] >= 0 and "rewrite_s_p50" not in reports["bm25"]
    assert fake.requests[-1]["messages"][-1]["content"] == "by when do I owe my landlord money"

    fake.default_reply = ""  # a model that writes nothing: the evaluation says so instead of a silent copy
    error = assert_error(client.post("/kbs/docs/eval", json={"questions": line, "rewrite": True}), 503)
    assert "wrote no hypothetical answer" in error["message"]
    many = "\n".join(line for _ in range(201))
    error = assert_error(client.post("/kbs/docs/eval", json={"questions": many, "rewrite": True}), 422)
    assert "at most 200 questions" in error["message"]


def test_search_in_unknown_file_is_404(client, kb):
    assert_error(client.post("/kbs/docs/search", json={"query": "x", "file_name": "absent.txt"}), 404)


def test_rebuild_streams_progress_and_keeps_search_working(client, kb):
    response = client.post("/kbs/docs/rebuild")
    events = sse_events(response)
    assert [e["stage"] for e in events if e["stage"] == "file_done"] == ["file_done", "file_done"]
    assert [e["stage"] for e in events[-2:]] == ["saving", "done"]
    hits = client.post("/kbs/docs/search", json={"query": "rent", "mode": "bm25"}).json()
    assert hits[0]["metadata"]["source"] == "lease.txt"


NEW_FORMATS = ["unstructured_eng_spa_mult" + ext for ext in (".doc", ".ppt", ".odt", ".rtf", ".rst", ".org", ".xml")]


def test_upload_of_old_office_opendocument_and_markup_files_indexes_their_text(client, kb, shared_data):
    parity = shared_data / "docs" / "parity"
    files = [("files", (name, (parity / name).read_bytes())) for name in NEW_FORMATS]
    response = client.post("/kbs/docs/files", files=files)
    assert response.status_code == 200, response.text
    assert {r["file_name"]: r["status"] for r in response.json()["results"]} == dict.fromkeys(NEW_FORMATS, "indexed")
    listed = {f["file_name"]: f["loader"] for f in client.get("/kbs/docs/files").json()}
    assert listed["unstructured_eng_spa_mult.odt"] == "odt:odfpy"
    for name in NEW_FORMATS:
        chunks = client.get(f"/kbs/docs/files/{name}/chunks").json()
        assert any("Todos los seres humanos nacen libres" in c["text"] for c in chunks), name


def test_upload_of_an_image_is_read_by_ocr_with_page_progress_unless_ocr_is_off(client, kb, shared_data):
    image = (shared_data / "docs" / "zh" / "files" / "chatchat_ocr_test.jpg").read_bytes()
    refused = client.post("/kbs/docs/files", files=[("files", ("notice.jpg", image))], data={"ocr": "false"})
    error = assert_error(refused, 422, "unreadable_file")
    assert "notice.jpg" in error["message"] and "OCR" in error["message"] and "turned off" in error["message"]
    response = client.post("/kbs/docs/files", files=[("files", ("notice.jpg", image))],
                           data={"stream": "true", "override": "true"})
    events = sse_events(response)
    assert [(e["pages_done"], e["pages_total"]) for e in events if e["stage"] == "ocr"] == [(0, 1), (1, 1)]
    assert events[-1]["results"][0]["status"] == "indexed"
    hits = client.post("/kbs/docs/search", json={"query": "横向文本框", "top_k": 1}).json()
    assert hits[0]["metadata"]["source"] == "notice.jpg" and "横向文本框" in hits[0]["text"]
    assert hits[0]["metadata"]["ocr"] is True


def test_a_corrupt_file_of_a_new_format_is_a_readable_error_and_stores_nothing(client, kb):
    response = client.post("/kbs/docs/files", files=[("files", ("broken.odt", b"PK\x03\x04 not really")),
                                                     ("files", ("broken.rtf", b"plain text"))])
    error = assert_error(response, 422, "unreadable_file")
    assert "broken.odt" in error["message"] and "not a valid rtf file" in error["message"]
    assert client.get("/kbs/docs").json()["chunk_count"] == 2
