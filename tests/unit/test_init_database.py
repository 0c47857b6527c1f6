"""`kbchat init` / init_database.py flags and the `kbchat kb` commands, on temporary data folders."""

from __future__ import annotations

import argparse
import shutil

import pytest

import init_database
from configs import Settings
from server.cli import init as cli_init
from server.cli import main as kbchat_main
from server.db import Database
from server.knowledge_base.manager import KnowledgeBaseManager

GUIDE = "# 使用说明\n\n## 上传\n\n在知识库页面上传文件，支持 PDF 和 Word。".encode()
FAQ = b"# FAQ\n\nQ: Where are files stored?\nA: In the content folder of each knowledge base."


@pytest.fixture
def samples(tmp_path, monkeypatch):
    """A small sample folder standing in for knowledge_base/samples/content."""
    folder = tmp_path / "sample-source"
    folder.mkdir()
    (folder / "guide.md").write_bytes(GUIDE)
    (folder / "faq.md").write_bytes(FAQ)
    monkeypatch.setattr(cli_init, "SAMPLES_SOURCE", folder)
    return folder


@pytest.fixture
def settings(tmp_path, tmp_path_factory) -> Settings:
    cache = tmp_path_factory.getbasetemp() / "kb-embedding-cache"
    return Settings(paths={"data_root": tmp_path / "data", "cache_dir": cache})


def init(settings: Settings, *flags: str, answer: str = "n") -> int:
    parser = argparse.ArgumentParser()
    cli_init.add_init_arguments(parser)
    return cli_init.run_init(parser.parse_args(list(flags)), settings, ask=lambda _q: answer)


def inspect(settings: Settings):
    """A fresh manager on the same folders, to look at what init left behind."""
    db = Database(settings.paths.database_url)
    db.create_tables()
    return KnowledgeBaseManager(settings, db)


def doc_ids(settings: Settings, kb: str, file_name: str) -> list[str]:
    manager = inspect(settings)
    try:
        return [c.doc_id for c in manager.list_chunks(kb, file_name)]
    finally:
        manager.close()


def file_status(settings: Settings, kb: str) -> dict[str, str]:
    manager = inspect(settings)
    try:
        return {f.file_name: f.status for f in manager.list_files(kb)}
    finally:
        manager.close()


def test_default_init_creates_the_sample_kb_and_rerunning_changes_nothing(settings, samples):
    assert init(settings) == 0
    assert file_status(settings, "samples") == {"faq.md": "indexed", "guide.md": "indexed"}
    before = doc_ids(settings, "samples", "guide.md")
    assert init(settings) == 0
    assert doc_ids(settings, "samples", "guide.md") == before


def test_default_init_reingests_changed_sample_files_only(settings, samples):
    init(settings)
    guide, faq = doc_ids(settings, "samples", "guide.md"), doc_ids(settings, "samples", "faq.md")
    content = settings.paths.kb_root / "samples" / "content"
    (content / "faq.md").write_bytes(FAQ + b"\n\nQ: Is it offline?\nA: Yes.")
    init(settings)
    assert doc_ids(settings, "samples", "guide.md") == guide
    assert doc_ids(settings, "samples", "faq.md") != faq


def test_default_init_ships_the_real_sample_documents(settings):
    assert init(settings) == 0
    statuses = file_status(settings, "samples")
    assert statuses and set(statuses.values()) == {"indexed"}
    assert set(statuses) == {p.name for p in cli_init.SAMPLES_SOURCE.iterdir() if p.is_file()}


def test_increment_ingests_only_files_new_to_the_database(settings, samples):
    init(settings)
    before = doc_ids(settings, "samples", "guide.md")
    content = settings.paths.kb_root / "samples" / "content"
    (content / "new.txt").write_text("新增加的文件", encoding="utf-8")
    assert init(settings, "--increment", "-n", "samples") == 0
    assert file_status(settings, "samples")["new.txt"] == "indexed"
    assert doc_ids(settings, "samples", "guide.md") == before


def test_update_in_db_reingests_recorded_files(settings, samples):
    init(settings)
    before = doc_ids(settings, "samples", "guide.md")
    assert init(settings, "--update-in-db") == 0
    after = doc_ids(settings, "samples", "guide.md")
    assert after and after != before


def test_prune_db_forgets_files_that_vanished(settings, samples):
    init(settings)
    (settings.paths.kb_root / "samples" / "content" / "faq.md").unlink()
    assert init(settings, "--prune-db") == 0
    assert file_status(settings, "samples") == {"guide.md": "indexed"}


def test_prune_folder_deletes_files_unknown_to_the_database(settings, samples):
    init(settings)
    stray = settings.paths.kb_root / "samples" / "content" / "stray.txt"
    stray.write_text("stray", encoding="utf-8")
    assert init(settings, "--prune-folder", "-n", "samples") == 0
    assert not stray.exists() and (stray.parent / "guide.md").exists()


def test_recreate_vs_rebuilds_a_lost_index_and_adopts_new_folders(settings, samples):
    init(settings)
    shutil.rmtree(settings.paths.kb_root / "samples" / "vector_store")
    extra = settings.paths.kb_root / "manuals" / "content"
    extra.mkdir(parents=True)
    (extra / "m.txt").write_text("The printer needs A4 paper.", encoding="utf-8")
    assert init(settings, "--recreate-vs") == 0
    manager = inspect(settings)
    try:
        assert manager.search("samples", "知识库 上传", top_k=1)[0].metadata["source"] == "guide.md"
        assert manager.search("manuals", "printer paper", top_k=1)[0].metadata["source"] == "m.txt"
    finally:
        manager.close()


def test_clear_tables_asks_first_and_recreate_vs_restores(settings, samples):
    init(settings)
    assert init(settings, "--clear-tables", answer="n") == 1
    assert file_status(settings, "samples")  # nothing was dropped
    assert init(settings, "--clear-tables", "-y") == 0
    manager = inspect(settings)
    assert manager.list_kbs() == []
    manager.close()
    assert init(settings, "--recreate-vs", "-n", "samples") == 0
    assert file_status(settings, "samples") == {"faq.md": "indexed", "guide.md": "indexed"}


def test_unknown_embedding_model_fails_cleanly(settings, samples, capsys):
    assert init(settings, "-e", "no-such-model") == 1
    assert "no-such-model" in capsys.readouterr().err


def test_switching_model_without_recreate_is_refused(settings, samples, capsys):
    init(settings)
    assert init(settings, "-e", "all-MiniLM-L6-v2") == 1
    assert "--recreate-vs" in capsys.readouterr().err


def test_create_tables_only_creates_tables(settings, samples):
    assert init(settings, "--create-tables") == 0
    manager = inspect(settings)
    assert manager.list_kbs() == []
    manager.close()


def test_init_database_script_reads_settings_from_the_environment(settings, samples, monkeypatch):
    monkeypatch.setenv("KBCHAT_PATHS__DATA_ROOT", str(settings.paths.data_root))
    monkeypatch.setenv("KBCHAT_PATHS__CACHE_DIR", str(settings.paths.cache_dir))
    assert init_database.main(["--create-tables"]) == 0
    assert init_database.main([]) == 0
    assert file_status(settings, "samples") == {"faq.md": "indexed", "guide.md": "indexed"}


def test_kb_commands_add_search_and_list(settings, samples, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("KBCHAT_PATHS__DATA_ROOT", str(settings.paths.data_root))
    monkeypatch.setenv("KBCHAT_PATHS__CACHE_DIR", str(settings.paths.cache_dir))
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "law.md").write_text("# 劳动法\n\n## 第四章 工作时间\n\n第四十一条 每月加班不得超过三十六小时。", encoding="utf-8")
    (docs / "sub" / "note.txt").write_text("Meeting moved to Friday.", encoding="utf-8")
    (docs / "skip.bin").write_bytes(b"\x00")
    assert kbchat_main(["kb", "create", "work", "-d", "labour"]) == 0
    assert kbchat_main(["kb", "add", "work", str(docs)]) == 0
    out = capsys.readouterr().out
    assert "indexed  law.md" in out and "note.txt" in out and "skip.bin" not in out
    assert kbchat_main(["kb", "search", "work", "加班最多多少小时", "-k", "1"]) == 0
    out = capsys.readouterr().out
    assert "[1]" in out and "law.md" in out and "第四章 工作时间" in out
    assert kbchat_main(["kb", "files", "work"]) == 0
    assert "indexed  law.md" in capsys.readouterr().out
    assert kbchat_main(["kb", "search", "missing", "x"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert kbchat_main(["kb", "rebuild", "work"]) == 0
    assert kbchat_main(["kb", "delete", "work", "-y"]) == 0
    assert kbchat_main(["kb", "list"]) == 0
    assert "no knowledge bases" in capsys.readouterr().out
