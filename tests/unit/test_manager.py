"""KnowledgeBaseManager: ingestion, search, files, chunks, failures that lose nothing, and name checks."""

from __future__ import annotations

import errno

import json
import threading

import pytest

from configs import Settings
from server.db import Database
from server.errors import Conflict, InvalidInput, NotFound, UnsupportedMediaType
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.names import validate_file_name, validate_kb_name
from server.knowledge_base.vector_store import EmbedModelMismatch

CONTRACT = "第十条 建立劳动关系，应当订立书面劳动合同。\n\n第十九条 试用期最长不得超过六个月。".encode()
TRAFFIC = "# 道路交通\n\n## 第四章 道路通行规定\n\n机动车、非机动车实行右侧通行。饮酒后不得驾驶机动车。".encode()
ENGLISH = b"The tenant must pay the rent on the first day of every month.\n\nPets are not allowed."
THREE_FILES = [("a.txt", "第一份文件。".encode()), ("b.txt", "第二份文件。".encode()), ("c.txt", "第三份文件。".encode())]


@pytest.fixture
def filled(manager):
    manager.create_kb("docs", "test documents")
    results = manager.add_files("docs", [("劳动.txt", CONTRACT), ("traffic.md", TRAFFIC), ("lease.txt", ENGLISH)])
    assert [r.status for r in results] == ["indexed"] * 3
    return manager


@pytest.fixture
def encode_calls(manager, monkeypatch):
    embedder = manager.embeddings.get(None)
    calls: list[str] = []
    real = embedder._encode

    def counting(texts, *, is_query):
        if not is_query:
            calls.extend(texts)
        return real(texts, is_query=is_query)

    monkeypatch.setattr(embedder, "_encode", counting)
    return calls


@pytest.mark.parametrize("mode", ["vector", "bm25", "hybrid"])
def test_ingested_files_are_found_by_search(filled, mode):
    hits = filled.search("docs", "喝了酒能开车吗 饮酒 驾驶", mode=mode, top_k=2)
    assert hits[0].metadata["source"] == "traffic.md"
    assert hits[0].metadata["heading_path"][-1] == "第四章 道路通行规定"
    assert "饮酒" in hits[0].text and not hits[0].text.startswith("道路交通")  # stored text has no heading prefix
    english = filled.search("docs", "when is the rent due", mode=mode, top_k=1)
    assert english[0].metadata["source"] == "lease.txt"


def test_counts_are_kept_for_knowledge_base_and_files(filled):
    info = filled.get_kb("docs")
    files = {f.file_name: f for f in filled.list_files("docs")}
    assert info.file_count == 3 and info.chunk_count == sum(f.chunk_count for f in files.values())
    assert files["劳动.txt"].status == "indexed" and files["劳动.txt"].loader == "text"
    assert files["劳动.txt"].splitter == "structure-recursive:500/50:chars"


def test_unchanged_file_is_skipped_and_override_reuses_cached_vectors(filled, encode_calls):
    skipped = filled.add_files("docs", [("劳动.txt", CONTRACT)])
    assert skipped[0].status == "skipped" and "unchanged" in skipped[0].error
    redone = filled.add_files("docs", [("劳动.txt", CONTRACT)], override=True)
    assert redone[0].status == "indexed"
    assert encode_calls == []  # same chunk texts: every vector came from the cache
    assert filled.get_kb("docs").chunk_count == sum(f.chunk_count for f in filled.list_files("docs"))


def test_different_file_with_same_name_needs_override(filled):
    result = filled.add_files("docs", [("劳动.txt", "完全不同的内容。".encode())])[0]
    assert result.status == "skipped" and "override" in result.error
    assert filled.file_path("docs", "劳动.txt").read_bytes() == CONTRACT


def test_failed_override_keeps_previous_file_and_chunks(filled):
    filled.add_files("docs", [("data.json", json.dumps({"title": "保修期", "body": "保修期为两年"}).encode())])
    before = filled.list_chunks("docs", "data.json")
    result = filled.add_files("docs", [("data.json", b"{broken json")], override=True)[0]
    assert result.status == "error" and "data.json" in result.error
    assert filled.file_path("docs", "data.json").read_bytes().startswith(b'{"title"')
    assert [c.doc_id for c in filled.list_chunks("docs", "data.json")] == [c.doc_id for c in before]
    assert filled.search("docs", "保修期", mode="bm25")[0].metadata["source"] == "data.json"


def test_one_bad_file_does_not_stop_the_batch(filled):
    batch = [("broken.pdf", b"not a pdf"), ("tool.exe", b"MZ"), ("ok.txt", "正常的文件".encode())]
    results = filled.add_files("docs", batch)
    statuses = {r.file_name: r.status for r in results}
    assert statuses == {"broken.pdf": "error", "tool.exe": "error", "ok.txt": "indexed"}
    files = {f.file_name: f for f in filled.list_files("docs")}
    assert files["broken.pdf"].status == "error" and "broken.pdf" in files["broken.pdf"].error
    assert "tool.exe" not in files  # unsupported files are never stored


def test_a_batch_is_saved_once(filled):
    version = filled.pool.get("docs").version
    batch = THREE_FILES
    assert [r.status for r in filled.add_files("docs", batch)] == ["indexed"] * 3
    assert filled.pool.get("docs").version == version + 1
    filled.pool.clear()  # what was saved, read back from disk
    assert {h.metadata["source"] for h in filled.search("docs", "文件", mode="bm25", top_k=10)} >= {"a.txt", "c.txt"}


def test_a_failed_save_fails_the_whole_batch_and_keeps_what_was_stored(filled, monkeypatch):
    before = {f.file_name: f.chunk_count for f in filled.list_files("docs")}
    store = filled.pool.get("docs")

    def disk_full():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "save", disk_full)
    events = []
    batch = [("new.txt", "新的文件内容。".encode()), ("劳动.txt", "改过的劳动合同。".encode())]
    results = filled.add_files("docs", batch, override=True, progress=events.append)
    assert [r.status for r in results] == ["error", "error"]
    assert all("No space left on device" in r.error for r in results)
    failed = [e for e in events if e.stage == "error"]
    assert sorted(e.file_name for e in failed) == ["new.txt", "劳动.txt"]
    assert events[-1].stage == "done" and "2 error" in events[-1].message
    monkeypatch.undo()
    # Nothing of the batch is visible: files, rows and chunks are as they were, and no staged copy is left.
    assert {f.file_name: f.chunk_count for f in filled.list_files("docs")} == before
    assert not (filled.content_dir("docs") / "new.txt").exists()
    assert filled.file_path("docs", "劳动.txt").read_bytes() == CONTRACT
    assert filled.search("docs", "试用期", mode="bm25")[0].metadata["source"] == "劳动.txt"
    assert filled.search("docs", "新的文件", mode="bm25") == []
    assert not any((filled.kb_dir("docs") / ".staging").iterdir())
    assert filled.add_files("docs", batch[:1])[0].status == "indexed"  # the next upload works


def test_a_disk_filling_up_in_the_middle_of_a_save_keeps_the_previous_version_serving(filled, monkeypatch):
    from server.db.engine import Database
    from server.knowledge_base.bm25 import BM25Index
    from server.knowledge_base.manager import KnowledgeBaseManager

    store_root = filled.store_dir("docs")
    versions_before = sorted(p.name for p in store_root.iterdir())

    def disk_full(self, folder):
        # The index and the chunks of the new version are written by now; the BM25 files no longer fit.
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bm25.partial").write_bytes(b"\0" * 1024)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BM25Index, "save", disk_full)
    results = filled.add_files("docs", [("new.txt", "磁盘满了之前的新文件。".encode())])
    assert results[0].status == "error" and "No space left on device" in results[0].error
    monkeypatch.undo()
    # The half-written version is gone and CURRENT still names the previous one, which a new process loads.
    assert sorted(p.name for p in store_root.iterdir()) == versions_before
    fresh = KnowledgeBaseManager(filled.settings, Database(filled.settings.paths.database_url))
    try:
        assert fresh.search("docs", "试用期", mode="bm25")[0].metadata["source"] == "劳动.txt"
        assert fresh.search("docs", "试用期", mode="vector")[0].metadata["source"] == "劳动.txt"
        assert "new.txt" not in {f.file_name for f in fresh.list_files("docs")}
    finally:
        fresh.close()
    assert filled.add_files("docs", [("new.txt", "磁盘满了之前的新文件。".encode())])[0].status == "indexed"


def test_a_store_failing_midway_fails_the_files_pending_in_it_and_the_batch_goes_on(filled, monkeypatch):
    store = filled.pool.get("docs")
    real_add, calls = store.add, []

    def add_failing_on_the_second_file(docs, vectors, sentence_vectors=None):
        calls.append(len(docs))
        if len(calls) == 2:
            raise MemoryError("out of memory")
        return real_add(docs, vectors, sentence_vectors)

    monkeypatch.setattr(store, "add", add_failing_on_the_second_file)
    batch = THREE_FILES
    results = {r.file_name: r for r in filled.add_files("docs", batch)}
    assert results["a.txt"].status == "error" and "while adding b.txt" in results["a.txt"].error
    assert results["b.txt"].status == "error" and "MemoryError" in results["b.txt"].error
    assert results["c.txt"].status == "indexed"
    assert filled.pool.get("docs") is not store  # the failed store object was dropped
    filled.pool.clear()
    names = {f.file_name for f in filled.list_files("docs")}
    assert "c.txt" in names and not names & {"a.txt", "b.txt"}
    found = {h.metadata["source"] for h in filled.search("docs", "文件", mode="bm25", top_k=10)}
    assert "c.txt" in found and not found & {"a.txt", "b.txt"}


def test_batch_of_only_unsupported_files_is_refused(filled):
    with pytest.raises(UnsupportedMediaType):
        filled.add_files("docs", [("a.exe", b"x"), ("b.bin", b"y")])


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd.txt", "a/b.txt", "a\\b.txt", "nul\x00.txt", ".hidden.txt",
                                  "", "CON.txt", "x" * 300 + ".txt", "line\nbreak.txt"])
def test_unsafe_file_names_are_refused_before_storing(filled, name):
    with pytest.raises(InvalidInput):
        filled.add_files("docs", [(name, b"text")])
    assert not (filled.kb_root / "evil.txt").exists()


def test_chinese_and_spaced_file_names_are_allowed():
    assert validate_file_name("劳动合同 说明(2024).txt") == "劳动合同 说明(2024).txt"


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "a b", "x" * 51, "..", "名字?"])
def test_bad_kb_names_are_refused(name):
    with pytest.raises(InvalidInput):
        validate_kb_name(name)


def test_kb_names_allow_cjk_digits_and_punctuation():
    assert validate_kb_name("法律_2024-v1.0") == "法律_2024-v1.0"


def test_create_kb_errors(manager):
    manager.create_kb("k1")
    with pytest.raises(Conflict):
        manager.create_kb("k1")
    with pytest.raises(InvalidInput):
        manager.create_kb("k2", embed_model="no-such-model")
    with pytest.raises(InvalidInput):
        manager.create_kb("k3", vector_store="chroma")
    assert [kb.name for kb in manager.list_kbs()] == ["k1"]


def test_unknown_kb_is_not_found(manager):
    for call in (lambda: manager.get_kb("nope"), lambda: manager.search("nope", "q"),
                 lambda: manager.add_files("nope", [("a.txt", b"x")]), lambda: manager.delete_kb("nope")):
        with pytest.raises(NotFound):
            call()


def test_delete_file_removes_chunks_and_optionally_the_file(filled):
    filled.delete_file("docs", "traffic.md")
    assert all(h.metadata["source"] != "traffic.md" for h in filled.search("docs", "饮酒 驾驶", top_k=10))
    assert filled.file_path("docs", "traffic.md").is_file()
    assert {f.file_name: f.status for f in filled.list_files("docs")}["traffic.md"] == "pending"
    filled.delete_file("docs", "traffic.md", delete_content=True)
    with pytest.raises(NotFound):
        filled.file_path("docs", "traffic.md")
    with pytest.raises(NotFound):
        filled.delete_file("docs", "traffic.md")


def test_chunks_can_be_listed_edited_and_deleted(filled):
    chunks = filled.list_chunks("docs", "lease.txt")
    assert chunks and chunks[0].metadata["chunk_index"] == 0
    edited = filled.update_chunk("docs", chunks[0].doc_id, "Dogs and cats may stay in the garden flat.")
    assert edited.doc_id == chunks[0].doc_id and edited.metadata["source"] == "lease.txt"
    hits = filled.search("docs", "garden flat", mode="bm25", top_k=1)
    assert hits[0].doc_id == chunks[0].doc_id
    filled.delete_chunk("docs", chunks[0].doc_id)
    assert chunks[0].doc_id not in {c.doc_id for c in filled.list_chunks("docs", "lease.txt")}
    assert filled.get_kb("docs").chunk_count == sum(f.chunk_count for f in filled.list_files("docs"))
    with pytest.raises(NotFound):
        filled.update_chunk("docs", "missing", "text")
    with pytest.raises(InvalidInput):
        filled.update_chunk("docs", chunks[-1].doc_id, "   ")


def test_stored_only_files_have_no_chunks(manager):
    manager.create_kb("k")
    version = manager.pool.get("k").version
    result = manager.add_files("k", [("a.txt", "只保存不索引".encode())], to_vector_store=False)[0]
    assert result.status == "stored" and result.chunks == 0
    assert manager.pool.get("k").version == version  # nothing changed in the store, so nothing was saved
    assert manager.search("k", "保存", mode="bm25") == []
    assert manager.reingest_file("k", "a.txt").status == "indexed"
    assert manager.search("k", "保存", mode="bm25")[0].metadata["source"] == "a.txt"


def test_rebuild_recreates_a_lost_vector_store(filled):
    import shutil

    shutil.rmtree(filled.store_dir("docs"))
    filled.pool.clear()
    assert filled.search("docs", "rent") == []
    events = []
    results = filled.rebuild("docs", events.append)
    assert {r.status for r in results} == {"indexed"}
    assert filled.search("docs", "rent", top_k=1)[0].metadata["source"] == "lease.txt"
    assert events[-1].stage == "done" and events[-1].files_done == 3
    assert events[-2].stage == "saving"


def test_store_built_with_another_model_is_refused(filled):
    from sqlalchemy import update

    from server.db.models import KnowledgeBase

    with filled.db.unit_of_work() as session:
        session.execute(update(KnowledgeBase).where(KnowledgeBase.name == "docs").values(embed_model="all-MiniLM-L6-v2"))
    filled.pool.clear()
    with pytest.raises(EmbedModelMismatch) as info:
        filled.search("docs", "rent")
    assert "multilingual-e5-small" in info.value.message


def test_progress_events_follow_files_and_chunks(manager):
    manager.create_kb("k")
    events = []
    manager.add_files("k", [("a.txt", CONTRACT), ("b.txt", ENGLISH)], progress=events.append)
    stages = [e.stage for e in events]
    assert stages[0] == "file_start" and stages[-1] == "done" and "chunks" in stages
    assert stages[-3:] == ["file_done", "saving", "done"]  # one save for the batch, after its last file
    assert [e.files_done for e in events if e.stage == "file_done"] == [1, 2]
    assert all(e.files_total == 2 for e in events)


def test_search_rejects_bad_parameters(filled):
    for kwargs in ({"query": ""}, {"query": "x", "top_k": 0}, {"query": "x", "mode": "magic"},
                   {"query": "x", "score_threshold": 1.5}):
        with pytest.raises(InvalidInput):
            filled.search("docs", **kwargs)
    with pytest.raises(NotFound):
        filled.search("docs", "x", file_name="absent.txt")


def test_delete_kb_removes_its_folder(filled):
    folder = filled.kb_dir("docs")
    filled.delete_kb("docs")
    assert not folder.exists() and filled.list_kbs() == []
    filled.create_kb("docs")  # the name is free again, with an empty store
    assert filled.search("docs", "rent") == []


def test_concurrent_ingestion_and_search_stay_consistent(filled):
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            filled.add_files("docs", [(f"note{i}.txt", f"第{i}号通知：会议改到星期{i}。".encode())])
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    def search() -> None:
        try:
            for _ in range(5):
                filled.search("docs", "会议通知", mode="bm25")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(3)] + [threading.Thread(target=search)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = filled.list_files("docs")
    assert filled.get_kb("docs").chunk_count == sum(f.chunk_count for f in files)
    assert len(filled.search("docs", "会议通知", mode="bm25", top_k=10)) == 3


def test_faiss_runs_with_the_configured_thread_count(tmp_path):
    import faiss

    before = faiss.omp_get_max_threads()
    try:
        for threads, expected in ((2, 2), (1, 1), (0, 1)):  # 0 leaves the current count alone
            settings = Settings(paths={"data_root": tmp_path}, kb={"faiss_threads": threads})
            db = Database(settings.paths.database_url)
            KnowledgeBaseManager(settings, db).close()
            db.dispose()
            assert faiss.omp_get_max_threads() == expected
    finally:
        faiss.omp_set_num_threads(before)


def test_composed_and_decomposed_spellings_of_a_name_are_one_file(manager):
    import unicodedata

    manager.create_kb("docs")
    composed, decomposed = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    assert composed != decomposed
    manager.add_files("docs", [(decomposed, "Le café ouvre à huit heures du matin.".encode())])
    again = manager.add_files("docs", [(composed, "Le café ouvre à huit heures du matin.".encode())])
    assert again[0].status == "skipped"  # the same file, unchanged
    assert [f.file_name for f in manager.list_files("docs")] == [composed]
    assert manager.list_chunks("docs", decomposed)[0].metadata["source"] == composed
    with pytest.raises(InvalidInput, match="more than once"):
        manager.add_files("docs", [(composed, b"a"), (decomposed, b"b")])
    manager.delete_file("docs", decomposed, delete_content=True)
    assert manager.list_files("docs") == []


def test_a_zip_bomb_posing_as_a_document_is_refused_before_it_is_unpacked(manager, tmp_path):
    import io
    import zipfile

    manager.create_kb("docs")
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("[Content_Types].xml", "<Types/>")
        bomb.writestr("word/document.xml", b"\0" * (64 * 1024 * 1024))
    assert len(packed.getvalue()) < 1024 * 1024  # a small upload ...
    result = manager.add_files("docs", [("report.docx", packed.getvalue()), ("ok.txt", "一份正常的文件。".encode())])
    by_name = {r.file_name: r for r in result}
    assert by_name["report.docx"].status == "error" and "zip bomb" in by_name["report.docx"].error
    assert by_name["ok.txt"].status == "indexed"  # ... that stops nothing else


def test_search_reports_the_score_threshold_it_applied(filled):
    calibrated = filled.settings.kb.embed_models["multilingual-e5-small"].score_threshold
    assert filled.search("docs", "rent", mode="vector").threshold_applied == calibrated
    assert filled.search("docs", "rent", score_threshold=0.2).threshold_applied == 0.2
    assert filled.score_threshold("docs") == calibrated and filled.score_threshold("docs", 0.3) == 0.3


def test_rebuild_keeps_each_files_chunk_parameters(filled):
    filled.add_files("docs", [("long.txt", ("很长的一段文字。" * 60).encode())], chunk_size=100, chunk_overlap=10)
    filled.rebuild("docs")
    files = {f.file_name: f for f in filled.list_files("docs")}
    assert files["long.txt"].splitter == "structure-recursive:100/10:chars"
    assert files["lease.txt"].splitter == "structure-recursive:500/50:chars"


@pytest.mark.parametrize("name, data", [
    ("二进制.txt", bytes(range(256)) * 10),  # binary junk: no text encoding fits
    ("合同.pdf", b"%PDF-1.4 garbage"),
    ("表.xlsx", b"PK\x03\x04junk"),
    ("空.txt", b""),
])
def test_an_unreadable_upload_is_reported_under_the_users_file_name(manager, name, data):
    manager.create_kb("t")
    result = manager.add_files("t", [(name, data)])[0]
    assert result.status == "error" and result.error.startswith(f"cannot load {name!r}: "), result.error
