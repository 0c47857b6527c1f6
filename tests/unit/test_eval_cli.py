"""`kbchat eval`: a user's own questions scored against a real knowledge base, per search mode."""

from __future__ import annotations

import json

import pytest

from server.cli import main
from server.knowledge_base.evaluation import EvalQuestion, parse_questions
from server.errors import InvalidInput
from tests.chat_support import GARDEN_FILES


@pytest.fixture
def garden(tmp_path, monkeypatch):
    monkeypatch.setenv("KBCHAT_PATHS__DATA_ROOT", str(tmp_path))
    for name, text in GARDEN_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert main(["kb", "create", "garden"]) == 0
    assert main(["kb", "add", "garden", str(tmp_path / "garden.md"), str(tmp_path / "bees.txt")]) == 0
    return tmp_path


def test_eval_prints_hits_per_mode_and_lists_misses(garden, capsys):
    questions = garden / "questions.jsonl"
    rows = [
        {"id": "q1", "question": "how often should I turn my compost pile", "file": "garden.md",
         "evidence": "every two weeks"},
        {"id": "q2", "question": "which flowers do honey bees like", "file": "bees.txt"},
        {"id": "q3", "question": "when do I water tomatoes", "evidence": "in the early morning"},
        {"id": "q4", "question": "how many bees in a hive", "file": "no-such-file.md"},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["eval", "garden", str(questions), "--json"]) == 0
    reports = {r["label"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(reports) == {"vector", "bm25", "hybrid"}
    for report in reports.values():
        assert report["questions"] == 4 and report["misses@5"][-1] == "q4"
        assert report["hit@5"] <= 0.75 and report["hit@10"] <= 0.75
    assert reports["hybrid"]["hit@5"] == 0.75 and reports["hybrid"]["MRR@10"] > 0.5
    assert main(["eval", "garden", str(questions), "--modes", "bm25", "--misses"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("mode | questions | hit@1") and out[1].startswith("bm25 | 4 |")
    assert "bm25 missed q4: how many bees in a hive" in out


def test_eval_explains_a_bad_question_file_and_an_unknown_kb(garden, capsys):
    bad = garden / "bad.jsonl"
    bad.write_text('{"question": "fine", "file": "garden.md"}\n{"question": "no gold"}\n', encoding="utf-8")
    assert main(["eval", "garden", str(bad)]) == 1
    assert "line 2 needs \"file\" or \"evidence\"" in capsys.readouterr().err
    good = garden / "good.jsonl"
    good.write_text('{"question": "compost", "file": "garden.md"}\n', encoding="utf-8")
    assert main(["eval", "absent", str(good)]) == 1
    assert "absent" in capsys.readouterr().err


def test_evidence_cut_by_a_chunk_boundary_still_counts():
    question = EvalQuestion("q", "?", "a.md", "alpha beta gamma delta epsilon zeta eta theta")
    assert question.is_hit("a.md", "... Alpha  beta gamma delta epsilon zeta ...")
    assert not question.is_hit("b.md", "alpha beta gamma delta epsilon zeta eta theta")
    assert not question.is_hit("a.md", "something else entirely")
    with pytest.raises(InvalidInput, match="line 1 is not JSON"):
        parse_questions(["{oops"])


def test_eval_with_rewrite_searches_with_the_models_hypothetical_answer(garden, capsys, monkeypatch, fake_openai):
    """--rewrite adds a "<mode> + rewrite" row per mode, searched with the question and the answer the chat model
    imagines (here a fake OpenAI-compatible model), as KB chat's rewrite_query does."""
    monkeypatch.setenv("KBCHAT_LLM__DEFAULT_MODEL", "fake")
    monkeypatch.setenv("KBCHAT_LLM__MODELS", json.dumps(
        {"fake": {"kind": "openai_compatible", "base_url": fake_openai.base_url, "model": "fake-model"}}))
    questions = garden / "questions.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": "how do I look after my scraps pile?",
                                     "evidence": "every two weeks"}) + "\n", encoding="utf-8")
    fake_openai.default_reply = "Turn the compost pile every two weeks so it gets air."
    capsys.readouterr()
    assert main(["eval", "garden", str(questions), "--modes", "bm25", "--json", "--rewrite"]) == 0
    captured = capsys.readouterr()
    reports = {r["label"]: r for r in json.loads(captured.out)}
    assert set(reports) == {"bm25", "bm25 + rewrite"}
    assert reports["bm25 + rewrite"]["hit@1"] == 1.0 and reports["bm25"]["hit@1"] < 1.0
    assert "rewrites: 1 of 1 questions" in captured.err
    sent = fake_openai.requests[-1]["messages"]
    assert sent[-1]["content"] == "how do I look after my scraps pile?"


def test_eval_with_rewrite_says_when_the_model_is_not_running(garden, capsys, monkeypatch):
    from tests.fakes.fixtures import free_port

    monkeypatch.setenv("KBCHAT_LLM__LOCAL__PORT", str(free_port()))
    questions = garden / "questions.jsonl"
    questions.write_text('{"question": "compost", "file": "garden.md"}\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["eval", "garden", str(questions), "--rewrite"]) == 1
    err = capsys.readouterr().err
    assert "wrote no hypothetical answer" in err and "kbchat llm serve" in err
