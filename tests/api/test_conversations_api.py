"""Conversation, feedback, export and public-settings routes."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.chat_support import chat_settings, parse_sse

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path, fake):
    settings = chat_settings(tmp_path, fake.base_url, kb={"top_k": 7, "chunk_size": 321})
    with TestClient(create_app(settings)) as client:
        yield client


def ask(client, fake, query, answer="An answer.", **body):
    fake.queue(answer)
    events = parse_sse(client.post("/chat/llm", json={"query": query, **body}).text)
    assert events[-2]["type"] == "done", events
    return events[0], events[-2]


def test_create_get_rename_and_delete(client):
    created = client.post("/conversations", json={"title": "  Garden   plans ", "mode": "kb"})
    assert created.status_code == 201
    conv = created.json()
    assert conv["title"] == "Garden plans" and conv["mode"] == "kb" and conv["message_count"] == 0
    fetched = client.get(f"/conversations/{conv['id']}").json()
    assert fetched["messages"] == [] and fetched["title"] == "Garden plans"
    renamed = client.patch(f"/conversations/{conv['id']}", json={"title": "Vegetables"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Vegetables"
    assert client.delete(f"/conversations/{conv['id']}").status_code == 204
    assert client.get(f"/conversations/{conv['id']}").status_code == 404
    assert client.delete(f"/conversations/{conv['id']}").json()["error"]["code"] == "not_found"


def test_bad_conversation_input_is_rejected_and_changes_nothing(client):
    conv = client.post("/conversations", json={}).json()
    assert conv["title"] == ""
    for body in ({"title": ""}, {"title": "x" * 201}, {}):
        response = client.patch(f"/conversations/{conv['id']}", json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"
    assert client.patch(f"/conversations/{conv['id']}", json={"title": "   "}).status_code == 422
    assert client.post("/conversations", json={"mode": "telepathy"}).status_code == 422
    assert client.patch("/conversations/missing", json={"title": "x"}).status_code == 404
    assert client.get(f"/conversations/{conv['id']}").json()["title"] == ""


def test_list_is_newest_first_and_paged(client, fake):
    ids = [ask(client, fake, f"Question {n}")[0]["conversation_id"] for n in range(3)]
    # Answering in the oldest conversation makes it the most recent.
    ask(client, fake, "Follow-up", conversation_id=ids[0])
    body = client.get("/conversations", params={"page": 1, "size": 2}).json()
    assert body["total"] == 3 and body["page"] == 1 and body["size"] == 2
    assert [c["id"] for c in body["items"]] == [ids[0], ids[2]]
    assert body["items"][0]["message_count"] == 4 and body["items"][0]["title"] == "Question 0"
    assert [c["id"] for c in client.get("/conversations?page=2&size=2").json()["items"]] == [ids[1]]
    assert client.get("/conversations?page=0").status_code == 422
    huge = client.get("/conversations?page=9223372036854775807")  # once an SQLite OverflowError (500)
    assert huge.status_code == 422 and huge.json()["error"]["code"] == "invalid_input"
    assert client.get("/conversations?size=1000").status_code == 422


def test_messages_carry_mode_model_latency_and_feedback(client, fake):
    start, done = ask(client, fake, "Rate this", "Rated answer.")
    first = client.post(f"/messages/{done['message_id']}/feedback", json={"score": "up"})
    assert first.status_code == 200 and first.json()["score"] == "up"
    second = client.post(f"/messages/{done['message_id']}/feedback", json={"score": -1, "reason": "too short"})
    assert second.json()["score"] == "down" and second.json()["reason"] == "too short"
    user, answer = client.get(f"/conversations/{start['conversation_id']}").json()["messages"]
    assert user["feedback"] is None and user["meta"]["mode"] == "llm"
    assert answer["feedback"] == {**answer["feedback"], "score": "down", "reason": "too short"}
    assert answer["meta"]["model"] == "fake" and answer["meta"]["latency_ms"] > 0


def test_feedback_errors(client, fake):
    start, done = ask(client, fake, "Feedback errors")
    user_reply = client.post(f"/messages/{start['message_id']}/feedback", json={"score": "up"})
    assert user_reply.status_code == 400 and user_reply.json()["error"]["code"] == "bad_request"
    assert client.post("/messages/nope/feedback", json={"score": "up"}).status_code == 404
    for body in ({"score": "sideways"}, {"score": 0}, {"score": True}, {}, {"score": "up", "reason": "x" * 1001}):
        response = client.post(f"/messages/{done['message_id']}/feedback", json=body)
        assert response.status_code == 422, body
    stored = client.get(f"/conversations/{start['conversation_id']}").json()["messages"][-1]
    assert stored["feedback"] is None


def test_export_markdown_and_json_as_downloads(client, fake):
    start, done = ask(client, fake, "What grows in shade?", "Ferns and hostas.")
    client.patch(f"/conversations/{start['conversation_id']}", json={"title": "Shade 花园"})
    client.post(f"/messages/{done['message_id']}/feedback", json={"score": "up", "reason": "useful"})
    md = client.get(f"/conversations/{start['conversation_id']}/export", params={"format": "md"})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    disposition = md.headers["content-disposition"]
    assert disposition.startswith("attachment;") and unquote(disposition.split("UTF-8''")[1]) == "Shade_花园.md"
    text = md.text
    assert text.startswith("# Shade 花园\n") and "What grows in shade?" in text and "Ferns and hostas." in text
    assert "**Feedback:** up: useful" in text
    exported = client.get(f"/conversations/{start['conversation_id']}/export?format=json")
    assert exported.headers["content-type"] == "application/json"
    assert json.loads(exported.content)["messages"][1]["content"] == "Ferns and hostas."
    assert client.get(f"/conversations/{start['conversation_id']}/export?format=pdf").status_code == 422
    assert client.get("/conversations/missing/export").status_code == 404


def test_public_settings_list_choices_and_defaults(client):
    client.app.state.services.kb.create_kb("notes")
    body = client.get("/settings/public").json()
    assert body["default_model"] == "fake" and [m["name"] for m in body["models"]] == ["fake"]
    assert [k["name"] for k in body["kbs"]] == ["notes"]
    assert {"default", "kb_default", "search_default", "agent_react", "title"} <= set(body["prompt_templates"])
    assert body["top_k"] == 7 and body["chunk_size"] == 321 and body["search_modes"] == ["vector", "bm25", "hybrid"]
    assert body["engines"] == ["duckduckgo", "searxng", "bing"] and body["default_engine"] == "duckduckgo"
    models = client.app.state.services.settings.kb.embed_models
    assert body["score_thresholds"] == {name: cfg.score_threshold for name, cfg in models.items()}
    assert body["modes"] == ["llm", "kb", "search", "agent"]
    for key in ("result_count", "history_turns", "temperature", "chunk_overlap", "max_upload_mb",
                "default_search_mode"):
        assert key in body
    assert "bing_key" not in json.dumps(body) and "api_key" not in json.dumps(body)
    assert body["vector_stores"] == ["faiss", "milvus"] and body["default_vector_store"] == "faiss"


def test_public_settings_offer_each_mode_its_own_templates(tmp_path, fake):
    shipped = (REPO_ROOT / "configs" / "prompts.yaml").read_text(encoding="utf-8")
    prompts = tmp_path / "prompts.yaml"
    extra = {"kb_strict": "Only quote {context}.", "search_brief": "Be brief.", "agent_planner": "Plan first.",
             "pirate": "Talk like a pirate."}
    prompts.write_text(shipped + "\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in extra.items()), "utf-8")
    settings = chat_settings(tmp_path, fake.base_url, chat={"prompts_file": prompts})
    with TestClient(create_app(settings)) as client:
        body = client.get("/settings/public").json()
        by_mode = body["prompt_templates_by_mode"]
        assert by_mode == {
            "llm": ["default", "pirate"],
            # kb_default_zh is kb_default's variant for Chinese questions, not a template of its own
            "kb": ["kb_classic", "kb_default", "kb_strict"],
            "search": ["search_brief", "search_default"],
            "agent": ["agent_planner"],
        }
        # the flat list keeps every name, internal ones included
        assert set(body["prompt_templates"]) == set(extra) | {
            "default", "kb_default", "search_default", "agent_tools", "agent_react", "translate_to_en",
            "translate_to_zh", "title", "title_zh", "passages_question", "kb_classic", "kb_default_zh", "kb_question",
            "kb_question_zh", "kb_no_match", "kb_no_match_zh", "kb_unsupported", "kb_unsupported_zh",
            "kb_unsupported_closest", "kb_unsupported_closest_zh", "kb_unsupported_code", "kb_unsupported_code_zh",
            "condense_question", "condense_question_zh", "hypothetical_answer", "hypothetical_answer_zh", "kb_answer_lead",
            "kb_answer_lead_zh", "kb_answer_quote", "kb_answer_quote_zh", "kb_unverified_figures",
            "kb_unverified_figures_zh", "kb_answer_quote_more", "kb_answer_quote_more_zh", "kb_answer_quotes_end",
            "kb_answer_quotes_end_zh", "conversation_files", "conversation_files_zh", "kb_cited_elsewhere",
            "kb_cited_elsewhere_zh",
        }
        # an offered template is accepted by its mode
        fake.queue("Arr, a fine answer.")
        events = parse_sse(client.post("/chat/llm", json={"query": "Hi", "prompt_template": "pirate"}).text)
        assert events[-2]["type"] == "done", events
        assert fake.requests[-1]["messages"][0]["content"] == "Talk like a pirate."
