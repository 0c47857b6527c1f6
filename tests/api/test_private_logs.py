"""What the logs may hold: no secret at any level, and no document or conversation text at INFO and above.

A whole session runs through the API with every secret set: upload, search, a KB answer, a web search
answer, an export, the public settings. Every log record of every logger is then searched.
"""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.logs import QUIET_LOGGERS, configure_logging
from tests.chat_support import chat_settings

API_KEY = "srv-key-5b1f0c2e"
MODEL_KEY = "sk-model-9d7a11aa"
RERANK_KEY = "rr-key-44c0ffee"
DOC_PHRASE = "the orchid greenhouse is watered at dawn"
QUESTION_PHRASE = "when is the orchid greenhouse watered"
ANSWER_PHRASE = "Orchids get water at dawn"


@pytest.fixture
def app_logging():
    """Logging as kbchat's entry points set it up (INFO, chatty libraries at WARNING), restored afterwards."""
    saved = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    configure_logging("INFO")
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def session_logs(tmp_path, fake, search, caplog, app_logging):
    settings = chat_settings(tmp_path, fake.base_url, model={"api_key": MODEL_KEY},
                             server={"api_key": API_KEY},
                             chat={"search": {"default_engine": "bing", "bing_url": search.bing_url,
                                              "bing_key": search.bing_key}},
                             kb={"rerank": {"kind": "api", "url": f"{search.url}/rerank", "api_key": RERANK_KEY}})
    headers = {"Authorization": f"Bearer {API_KEY}"}
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings), headers=headers) as client:
        assert client.post("/kbs", json={"name": "garden"}).status_code == 201
        upload = client.post("/kbs/garden/files", files=[("files", ("orchids.txt", f"In spring {DOC_PHRASE}.".encode()))])
        assert upload.status_code == 200 and upload.json()["results"][0]["status"] == "indexed"
        assert client.post("/kbs/garden/search", json={"query": QUESTION_PHRASE}).status_code == 200
        fake.queue(ANSWER_PHRASE + " [1].")
        kb = client.post("/chat/kb", json={"query": QUESTION_PHRASE, "kb_name": "garden", "stream": False})
        assert kb.status_code == 200 and ANSWER_PHRASE in kb.json()["answer"]
        fake.queue(ANSWER_PHRASE + " [1].")
        web = client.post("/chat/search", json={"query": QUESTION_PHRASE, "stream": False})
        assert web.status_code == 200
        conversation = kb.json()["conversation_id"]
        assert client.get(f"/conversations/{conversation}/export", params={"format": "md"}).status_code == 200
        public = client.get("/settings/public").text
        assert client.get("/kbs", headers={"Authorization": "Bearer wrong-key"}).status_code == 401
    return caplog.records, public


def _text(record: logging.LogRecord) -> str:
    return record.getMessage() + (record.exc_text or "")


def test_no_secret_is_logged_or_published(session_logs):
    records, public = session_logs
    assert len(records) > 20  # the session did log
    for secret in (API_KEY, MODEL_KEY, RERANK_KEY, "test-bing-key", "wrong-key"):
        assert secret not in public
        leaked = [_text(r) for r in records if secret in _text(r)]
        assert leaked == [], secret


def test_info_logs_carry_no_document_question_or_answer_text(session_logs):
    records, _ = session_logs
    for phrase in (DOC_PHRASE, QUESTION_PHRASE, ANSWER_PHRASE, "orchid"):
        leaked = [f"{r.name}: {_text(r)}" for r in records if r.levelno >= logging.INFO and phrase in _text(r)]
        assert leaked == [], phrase
