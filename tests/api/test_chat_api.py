"""POST /chat/{mode} end to end: SSE framing, JSON answers, errors, and every mode against local fakes."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.chat_support import build_garden_kb, chat_settings, parse_sse
from tests.fakes.fixtures import free_port


@pytest.fixture(scope="module")
def app(tmp_path_factory, fake, search_engines):
    settings = chat_settings(tmp_path_factory.mktemp("chat_api"), fake.base_url, tools=True,
                             chat={"search": search_engines})
    dead = settings.llm.models["fake"].model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}/v1"})
    settings.llm.models["dead"] = dead
    app = create_app(settings)
    build_garden_kb(app.state.services)
    return app


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as client:
        yield client


def sse(client, path_mode, /, **body):
    response = client.post(f"/chat/{path_mode}", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[-1] == "[DONE]"
    return events[:-1], response


def text_of(events):
    return "".join(e["text"] for e in events if e["type"] == "delta")


def test_llm_chat_streams_sse_events_ending_with_done(client, fake):
    fake.queue("Hello from the model.")
    events, response = sse(client, "llm", query="Say hello")
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
    assert response.text.endswith("data: [DONE]\n\n")
    assert [e["type"] for e in events][0] == "start" and events[-1]["type"] == "done"
    assert [e["type"] for e in events[1:-1]][0] == "status" and {e["type"] for e in events[2:-1]} == {"delta"}
    assert text_of(events) == "Hello from the model."
    conversation = client.get(f"/conversations/{events[-1]['conversation_id']}").json()
    assert [m["content"] for m in conversation["messages"]] == ["Say hello", "Hello from the model."]


def test_mode_in_the_path_wins_over_the_body(client, fake):
    fake.queue("Plain answer.")
    events, _ = sse(client, "llm", query="Which mode?", mode="kb")
    assert text_of(events) == "Plain answer."
    stored = client.get(f"/conversations/{events[-1]['conversation_id']}").json()["messages"][-1]
    assert stored["mode"] == "llm" and stored["meta"]["mode"] == "llm"


def test_stream_false_returns_one_json_answer(client, fake):
    fake.queue("One JSON body.")
    response = client.post("/chat/llm", json={"query": "No streaming", "stream": False})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["answer"] == "One JSON body." and body["error"] is None and body["sources"] == []
    assert body["message_id"] and body["conversation_id"] and body["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/chat/llm", {"query": ""}, "query"),
        ("/chat/llm", {"query": "x" * 20001}, "query"),
        ("/chat/llm", {"query": "hi", "temperature": 5}, "temperature"),
        ("/chat/kb", {"query": "hi", "top_k": 0}, "top_k"),
        ("/chat/llm", {"query": "hi", "search_mode": "psychic"}, "search_mode"),
        ("/chat/llm", {}, "query"),
        ("/chat/telepathy", {"query": "hi"}, "mode"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, path, body, field):
    response = client.post(path, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and field in error["message"]


def test_a_body_that_is_not_a_json_object_is_a_422(client):
    for content in (b"not json", b"[1, 2]"):
        response = client.post("/chat/llm", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("stream", [True, False])
def test_unknown_kb_is_a_404_before_anything_starts(client, fake, stream):
    response = client.post("/chat/kb", json={"query": "anything", "kb_name": "absent", "stream": stream})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found" and "absent" in response.json()["error"]["message"]
    assert fake.requests == []


def test_unreachable_model_is_a_502_without_streaming_and_an_error_event_with(client):
    response = client.post("/chat/llm", json={"query": "hello?", "model": "dead", "stream": False})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "llm_unreachable" and "cannot reach model server" in error["message"]
    events, _ = sse(client, "llm", query="hello?", model="dead")
    assert [e["type"] for e in events] == ["start", "status", "error"] and events[-1]["code"] == "llm_unreachable"


def test_model_dying_mid_stream_gives_an_error_event_and_an_incomplete_stored_answer(client, fake):
    fake.queue_drop_after("Half of this answer arrives", 2)
    events, _ = sse(client, "llm", query="Tell me everything")
    assert events[-1]["type"] == "error" and events[-1]["code"].startswith("llm_")
    assert text_of(events) == "Half of "
    stored = client.get(f"/conversations/{events[0]['conversation_id']}").json()["messages"][-1]
    assert stored["content"] == "Half of " and stored["meta"]["incomplete"] is True
    # The JSON variant fails with the model's status, and still returns the part written.
    fake.queue_drop_after("Half of this answer arrives", 2)
    response = client.post("/chat/llm", json={"query": "Again", "stream": False})
    assert response.status_code == 502
    body = response.json()
    assert body["answer"] == "Half of " and body["error"]["code"].startswith("llm_") and body["error"]["message"]
    stored = client.get(f"/conversations/{body['conversation_id']}").json()["messages"][-1]
    assert stored["content"] == "Half of " and stored["meta"]["incomplete"] is True


RULES_ZH = {"rules.md": "# 员工手册\n\n## 试用期\n\n劳动合同期限一年以上不满三年的，试用期不得超过二个月。"
            "试用期工资不得低于本单位相同岗位最低档工资的百分之八十。\n\n## 年休假\n\n职工连续工作满一年的，享受带薪年休假五天。\n"}


def with_rules_kb(app, client):
    if "rules_zh" not in [k["name"] for k in client.get("/kbs").json()]:
        app.state.services.kb.create_kb("rules_zh")
        app.state.services.kb.add_files("rules_zh", [(f, t.encode()) for f, t in RULES_ZH.items()])


@pytest.mark.parametrize(("kb", "far", "near", "says"), [
    ("garden", "How much does a garden shed cost?", "How often should the compost heap be turned?",
     'The knowledge base "garden" does not seem to answer this question'),
    ("rules_zh", "个人所得税起征点是多少？", "签了两年合同，试用期最长可以多久？", '知识库"rules_zh"中似乎没有能回答这个问题的内容'),
])
def test_kb_chat_says_the_kb_does_not_say_when_no_passage_is_close_without_asking_the_model(
        app, client, fake, kb, far, near, says):
    if kb == "rules_zh":
        with_rules_kb(app, client)
    asked = len(fake.requests)
    events, _ = sse(client, "kb", query=far, kb_name=kb)
    # The passages found are still shown, and the answer says the knowledge base does not say.
    assert next(e for e in events if e["type"] == "sources")["sources"]
    assert text_of(events).startswith(says) and len(fake.requests) == asked
    stored = client.get(f"/conversations/{events[0]['conversation_id']}").json()["messages"][-1]
    assert stored["content"] == text_of(events) and stored["meta"]["unsupported"] is True
    assert 0 < stored["meta"]["closest_score"] < 1
    # Asked anyway on request, and always for a question that a passage is close to.
    fake.queue("An answer [1].")
    events, _ = sse(client, "kb", query=far, kb_name=kb, refuse_unsupported=False)
    assert text_of(events) == "An answer [1]." and len(fake.requests) == asked + 1
    fake.queue("An answer [1].")
    events, _ = sse(client, "kb", query=near, kb_name=kb)
    assert text_of(events) == "An answer [1]." and len(fake.requests) == asked + 2


@pytest.mark.parametrize(("kb", "query", "wrong", "figures", "note", "right"), [
    ("garden", "How often should the compost heap be turned?", "Turn it every 3 weeks, 10 times a year [1].",
     ["3", "10"], "(Not found in the passages: 3, 10. Check the sources before relying on it.)",
     "Turn it every two weeks [1]."),
    ("rules_zh", "签了两年合同，试用期最长可以多久？", "试用期最长六个月，工资打8折[1]。", ["六个月", "8折"],
     "（资料中找不到答案里的“六个月”、“8折”，请以出处原文为准。）", "试用期不得超过2个月，工资不低于80%[1]。"),
    # A long list is cut: the first six, then how many more.
    ("garden", "How often should the compost heap be turned?", "Turn it 3, 4, 5, 6, 7, 8, 9 or 10 times [1].",
     ["3", "4", "5", "6", "7", "8", "9", "10"],
     "(Not found in the passages: 3, 4, 5, 6, 7, 8 and 2 more. Check the sources before relying on it.)",
     "Turn it every two weeks [1]."),
    ("rules_zh", "签了两年合同，试用期最长可以多久？", "试用期3个月、4个月、5个月、6个月、7个月、8个月或9个月[1]。",
     ["3个月", "4个月", "5个月", "6个月", "7个月", "8个月", "9个月"],
     "（资料中找不到答案里的“3个月”、“4个月”、“5个月”、“6个月”、“7个月”、“8个月”等7处，请以出处原文为准。）",
     "试用期不得超过2个月[1]。"),
])
def test_kb_chat_notes_the_figures_of_an_answer_that_the_passages_do_not_hold(
        app, client, fake, kb, query, wrong, figures, note, right):
    if kb == "rules_zh":
        with_rules_kb(app, client)
    fake.queue(wrong)
    events, _ = sse(client, "kb", query=query, kb_name=kb)
    assert text_of(events) == f"{wrong}\n\n{note}"
    stored = client.get(f"/conversations/{events[0]['conversation_id']}").json()["messages"][-1]
    assert stored["content"] == text_of(events) and stored["meta"]["unsupported_figures"] == figures
    # Figures the passages or the question hold, in whatever spelling, get no note.
    fake.queue(right)
    events, _ = sse(client, "kb", query=query, kb_name=kb)
    assert text_of(events) == right
    chat = app.state.services.settings.chat
    chat.check_figures = False
    try:
        fake.queue(wrong)
        events, _ = sse(client, "kb", query=query, kb_name=kb)
        assert text_of(events) == wrong
    finally:
        chat.check_figures = True


def test_kb_chat_notes_the_names_of_an_answer_that_the_passages_do_not_hold(client, fake):
    fake.queue("Turn it with a Bosch Shredder every two weeks [1].")
    events, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden")
    assert text_of(events).endswith("(Not found in the passages: Bosch Shredder. Check the sources before relying "
                                    "on it.)")
    stored = client.get(f"/conversations/{events[0]['conversation_id']}").json()["messages"][-1]
    assert stored["meta"]["unsupported_names"] == ["Bosch Shredder"] and "unsupported_figures" not in stored["meta"]
    assert stored["content"].endswith(stored["meta"]["note"])
    # The history a model reads later holds the answer as the model wrote it, without the note.
    fake.queue("You asked about compost.")
    sse(client, "llm", query="What did I ask?", conversation_id=events[0]["conversation_id"])
    assert fake.requests[-1]["messages"][-2] == {"role": "assistant",
                                                 "content": "Turn it with a Bosch Shredder every two weeks [1]."}
    # The passage's and the question's own words, capitalised or not, get no note.
    fake.queue("Turn the Compost Heap every two weeks [1].")
    events, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden")
    assert text_of(events) == "Turn the Compost Heap every two weeks [1]."


def test_kb_chat_shows_the_evidence_first_then_answers_from_its_sentences(client, fake):
    fake.queue("Turn the heap every two weeks [1].")
    events, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=2)
    kinds = [e["type"] for e in events]
    # Evidence first: the passages arrive before any answer text.
    assert kinds.index("sources") < kinds.index("delta")
    sources = next(e for e in events if e["type"] == "sources")["sources"]
    assert [s["index"] for s in sources] == list(range(1, len(sources) + 1)) and 1 <= len(sources) <= 2
    top = sources[0]
    assert top["file"] == "garden.md" and top["location"] == "§ Garden guide > Compost" and top["kb"] == "garden"
    assert "every two weeks" in top["text"] and 0 < top["score"] <= 1
    assert top["url"] == "/kbs/garden/files/garden.md/download"
    assert client.get(top["url"]).content.decode().startswith("# Garden guide")
    # The sentences that bear on the question are marked in the source text.
    marked = [top["text"][a:b] for a, b in top["highlights"]]
    assert any("every two weeks" in m for m in marked)
    # The system prompt stays the same from question to question; passages come with the question.
    system = fake.requests[-1]["messages"][0]["content"]
    assert "garden" in system and "Passages" not in system and "every two weeks" not in system
    asked = fake.requests[-1]["messages"][-1]["content"]
    assert "[1] Garden guide\n" in asked and "Question: How often should the compost heap be turned?" in asked
    assert all(m in asked for m in marked) and "[1], [2]" in asked
    conversation = client.get(f"/conversations/{events[0]['conversation_id']}").json()["messages"]
    assert conversation[-2]["content"] == "How often should the compost heap be turned?"
    stored = conversation[-1]
    assert stored["meta"]["sources"] == sources and stored["meta"]["kb_name"] == "garden"


def test_a_follow_up_is_rewritten_to_stand_alone_before_the_search(client, fake):
    fake.queue("Every two weeks [1].")
    first, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1)
    conv = first[0]["conversation_id"]
    # The follow-up alone would find nothing about tomatoes' watering: the model condenses it first.
    fake.queue("How often should tomato plants be watered?", "Twice a week [1].")
    events, _ = sse(client, "kb", query="And the tomatoes?", kb_name="garden", top_k=1, conversation_id=conv)
    first_answer, condense, answer = fake.requests[-3:]
    # The rewrite is asked as the conversation's next turn, after the first answer as the model read and wrote
    # it, so the model server reuses the prompt it computed for that answer.
    assert condense["messages"][:-2] == first_answer["messages"]
    assert condense["messages"][-2] == {"role": "assistant", "content": "Every two weeks [1]."}
    assert condense["messages"][-1]["content"].startswith(
        "My previous question was: How often should the compost heap be turned?\nNow I ask: And the tomatoes?\n")
    assert "standalone question" in condense["messages"][-1]["content"]
    assert next(e for e in events if e["type"] == "status")["stage"] == "rewriting"
    sources = next(e for e in events if e["type"] == "sources")["sources"]
    assert "twice a week" in sources[0]["text"]
    # The model answers the rewritten question alone (chat.kb_answer_history), from the passage found.
    assert [m["role"] for m in answer["messages"]] == ["system", "user"]
    assert "How often should tomato plants be watered?" in answer["messages"][-1]["content"]
    stored = client.get(f"/conversations/{conv}").json()["messages"][-1]
    assert stored["meta"]["standalone_question"] == "How often should tomato plants be watered?"


def test_a_follow_up_to_a_history_the_client_sends_is_rewritten_after_that_history(client, fake):
    history = [{"role": "user", "content": "How often should the compost heap be turned?"},
               {"role": "assistant", "content": "Every two weeks [1]. " + "More on compost. " * 40}]
    fake.queue("How often should tomato plants be watered?", "Twice a week [1].")
    events, _ = sse(client, "kb", query="And the tomatoes?", kb_name="garden", top_k=1, history=history,
                    store=False)
    condense = fake.requests[-2]
    # No answer of this process to continue: the history comes as the conversation's turns, each cut short.
    assert [m["role"] for m in condense["messages"]] == ["user", "assistant", "user"]
    assert condense["messages"][0] == history[0]
    assert history[1]["content"].startswith(condense["messages"][1]["content"])
    assert len(condense["messages"][1]["content"]) < len(history[1]["content"])
    assert "Now I ask: And the tomatoes?" in condense["messages"][-1]["content"]
    assert "twice a week" in next(e for e in events if e["type"] == "sources")["sources"][0]["text"]


def test_a_rewrite_that_copies_the_previous_question_searches_with_both_questions(client, fake):
    fake.queue("Every two weeks [1].")
    first, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1)
    # The model copies the previous question instead of rewriting the follow-up.
    fake.queue("How often should the compost heap be turned?", "Twice a week [1].")
    events, _ = sse(client, "kb", query="And the tomato plants, how often are they watered?", kb_name="garden",
                    top_k=1, conversation_id=first[0]["conversation_id"])
    stored = client.get(f"/conversations/{first[0]['conversation_id']}").json()["messages"][-1]
    assert stored["meta"]["standalone_question"] == (
        "How often should the compost heap be turned? And the tomato plants, how often are they watered?")
    # Asked as one question the two would get the first one's answer: the follow-up is answered as asked, after
    # the exchange it follows.
    answer = fake.requests[-1]["messages"]
    assert [m["role"] for m in answer] == ["system", "user", "assistant", "user"]
    assert answer[1]["content"] == "How often should the compost heap be turned?"
    assert "And the tomato plants, how often are they watered?" in answer[-1]["content"]
    assert "compost heap" not in answer[-1]["content"].split("[1]")[0]


def test_a_rewritten_follow_up_is_searched_in_the_context_of_the_question_it_follows(client, fake, monkeypatch):
    fake.queue("Every two weeks [1].")
    first, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1)
    manager = client.app.state.services.kb
    searched: list[dict] = []
    search = manager.search

    def spy(*args, **kwargs):
        searched.append(kwargs)
        return search(*args, **kwargs)

    monkeypatch.setattr(manager, "search", spy)
    fake.queue("How often should tomato plants be watered?", "Twice a week [1].")
    sse(client, "kb", query="And the tomatoes?", kb_name="garden", top_k=1, conversation_id=first[0]["conversation_id"])
    assert searched[0]["context"] == "How often should the compost heap be turned?"
    # Without history there is nothing to look in.
    fake.queue("Every two weeks [1].")
    sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1)
    assert searched[-1]["context"] is None


def test_a_declined_follow_up_shows_its_own_closest_passages_not_the_previous_questions(client, fake):
    # Asked alone it finds nothing close; after the compost question, the search in that context finds the compost
    # passage, which is no closer to it.
    far = "Who invented the lawnmower?"
    alone, _ = sse(client, "kb", query=far, kb_name="garden", top_k=1, store=False)
    fake.queue("Every two weeks [1].")
    first, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1)
    fake.queue(far)  # the rewrite: the question stands alone
    events, _ = sse(client, "kb", query=far, kb_name="garden", top_k=1, conversation_id=first[0]["conversation_id"])
    assert text_of(events).startswith('The knowledge base "garden" does not seem to answer this question')
    shown = [e["sources"] for e in events if e["type"] == "sources"]
    assert "compost" in shown[0][0]["text"]
    assert shown[-1] == next(e for e in alone if e["type"] == "sources")["sources"] == []


def test_a_follow_up_the_model_hands_back_as_it_came_is_searched_with_the_question_before_it(client, fake):
    fake.queue("Every two weeks [1].")
    first, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1)
    conv = first[0]["conversation_id"]
    # 'And the tomatoes?' leans on the question before it; the model's rewrite adds nothing to it.
    fake.queue("The tomatoes?", "Twice a week [1].")
    sse(client, "kb", query="And the tomatoes?", kb_name="garden", top_k=1, conversation_id=conv)
    stored = client.get(f"/conversations/{conv}").json()["messages"][-1]
    assert stored["meta"]["standalone_question"] == "How often should the compost heap be turned? And the tomatoes?"
    assert [m["role"] for m in fake.requests[-1]["messages"]] == ["system", "user", "assistant", "user"]
    # A question that stands on its own form is searched as the model handed it back.
    fake.queue("Do bees visit lavender?", "Yes [1].")
    sse(client, "kb", query="Do bees visit lavender?", kb_name="garden", top_k=1, conversation_id=conv)
    stored = client.get(f"/conversations/{conv}").json()["messages"][-1]
    assert "standalone_question" not in stored["meta"]


def test_a_rewrite_that_echoes_the_request_is_cut_to_the_question_it_ends_with(client, fake):
    fake.queue("Every two weeks [1].")
    first, _ = sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1)
    # The model repeats the request's framing, the previous question included, before its rewrite.
    fake.queue("My previous question was: How often should the compost heap be turned?\n"
               "Now I ask: How often should tomato plants be watered?", "Twice a week [1].")
    events, _ = sse(client, "kb", query="And how often are the tomatoes watered?", kb_name="garden", top_k=1,
                    conversation_id=first[0]["conversation_id"])
    stored = client.get(f"/conversations/{first[0]['conversation_id']}").json()["messages"][-1]
    assert stored["meta"]["standalone_question"] == "How often should tomato plants be watered?"
    assert "twice a week" in next(e for e in events if e["type"] == "sources")["sources"][0]["text"]


def test_rewrite_query_searches_with_a_hypothetical_answer_too(client, fake):
    fake.queue("Aerate the heap by turning it every fortnight.", "Every two weeks [1].")
    events, _ = sse(client, "kb", query="My compost stinks, what now?", kb_name="garden", top_k=1,
                    rewrite_query=True)
    hyde = fake.requests[-2]
    assert "hypothetical" not in hyde["messages"][0]["content"].lower()  # the model is asked plainly
    assert hyde["messages"][-1]["content"] == "My compost stinks, what now?"
    assert text_of(events) == "Every two weeks [1]."
    # The question's own evidence is shown before the model writes anything; the rewrite comes after it.
    kinds = [e["type"] for e in events]
    first_sources = kinds.index("sources")
    assert first_sources < kinds.index("status") and events[kinds.index("status")]["stage"] == "rewriting"
    shown = [e["sources"] for e in events if e["type"] == "sources"]
    assert 1 <= len(shown) <= 2 and shown[-1][0]["text"]
    conv = events[0]["conversation_id"]
    meta = client.get(f"/conversations/{conv}").json()["messages"][-1]["meta"]
    assert meta["search_query"] == "My compost stinks, what now?\nAerate the heap by turning it every fortnight."
    assert meta["sources"] == shown[-1]  # the passages the answer came from are the ones kept


def test_kb_chat_searches_several_knowledge_bases_joined_by_plus(client, fake):
    services = client.app.state.services
    if "orchard" not in {kb.name for kb in services.kb.list_kbs()}:
        services.kb.create_kb("orchard")
        services.kb.add_files("orchard", [("apples.md", b"# Apples\n\nPrune apple trees in late winter.\n")])
    fake.queue("Prune in late winter [1]; turn compost every two weeks [2].")
    events, _ = sse(client, "kb", query="When do I prune apple trees and turn the compost heap?",
                    kb_name="orchard+garden", top_k=4, search_mode="hybrid")
    sources = next(e for e in events if e["type"] == "sources")["sources"]
    by_kb = {s["kb"] for s in sources}
    assert by_kb == {"orchard", "garden"} and [s["index"] for s in sources] == list(range(1, len(sources) + 1))
    apples = next(s for s in sources if s["file"] == "apples.md")
    assert apples["url"] == "/kbs/orchard/files/apples.md/download"
    assert client.get(apples["url"]).content.startswith(b"# Apples")
    # Vector search over one embedding model merges by cosine: the scores come out in order.
    hits = client.post("/kbs/orchard+garden/search", json={"query": "pruning apple trees", "mode": "vector"}).json()
    assert hits[0]["metadata"]["kb"] == "orchard" and [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    for body, status in (({"query": "x", "kb_name": "orchard+absent"}, 404),
                         ({"query": "x", "kb_name": "garden+garden"}, 422)):
        response = client.post("/chat/kb", json={**body, "stream": False})
        assert response.status_code == status, response.text
    one_file = client.post("/kbs/orchard+garden/search", json={"query": "x", "file_name": "apples.md"})
    assert one_file.status_code == 422 and "single knowledge base" in one_file.json()["error"]["message"]


def test_files_dropped_into_a_conversation_are_searched_there_and_go_with_it(client, fake):
    conv = client.post("/conversations", json={"mode": "kb"}).json()["id"]
    dropped = client.post(f"/conversations/{conv}/files",
                          files=[("files", ("lease.txt", b"The tenant pays the rent on the fifth of each month."))])
    assert dropped.status_code == 200 and dropped.json()["results"][0]["status"] == "indexed"
    assert [f["file_name"] for f in client.get(f"/conversations/{conv}/files").json()] == ["lease.txt"]
    # Not a knowledge base of its own in the lists, and its name is kept for conversations.
    assert all(not kb["name"].startswith("_chat_") for kb in client.get("/kbs").json())
    assert client.post("/kbs", json={"name": f"_chat_{conv}"}).status_code == 422
    # No knowledge base chosen: the conversation's files alone are searched.
    fake.queue("On the fifth [1].")
    events, _ = sse(client, "kb", query="When is the rent due?", conversation_id=conv)
    sources = next(e for e in events if e["type"] == "sources")["sources"]
    assert sources[0]["file"] == "lease.txt" and sources[0]["kb"] == f"_chat_{conv}"
    assert client.get(sources[0]["url"]).content.startswith(b"The tenant pays")
    # With a knowledge base chosen, both are searched.
    fake.queue("How often should the compost be turned?", "Every two weeks [2].")
    events, _ = sse(client, "kb", query="And the compost?", conversation_id=conv, kb_name="garden", top_k=4,
                    score_threshold=0.0)
    assert {s["kb"] for s in next(e for e in events if e["type"] == "sources")["sources"]} == {f"_chat_{conv}",
                                                                                               "garden"}
    assert client.delete(f"/conversations/{conv}").status_code == 204
    assert client.get(f"/kbs/_chat_{conv}").status_code == 404
    other = client.post("/conversations", json={"mode": "kb"}).json()["id"]
    response = client.post("/chat/kb", json={"query": "x", "conversation_id": other, "stream": False})
    assert response.status_code == 422 and "files dropped into the conversation" in response.json()["error"]["message"]
    missing = client.post("/conversations/absent/files", files=[("files", ("a.txt", b"x"))])
    assert missing.status_code == 404


MINUTES = ("# Residents' meeting minutes\n\n"
           "These are the minutes of the residents' meeting of Elm Court held in March. "
           "The meeting discussed the new bicycle shed and the spring clean-up.\n\n"
           + "\n\n".join(f"## Item {i}\n\n" + f"Point {i} was raised by a resident and noted by the secretary. " * 12
                         for i in range(1, 6)))
LEASE = "The tenant pays the rent on the fifth of each month. The landlord repairs the boiler."


def test_a_question_about_the_dropped_files_as_a_whole_is_answered_from_their_openings(client, fake):
    conv = client.post("/conversations", json={"mode": "kb"}).json()["id"]
    dropped = client.post(f"/conversations/{conv}/files", files=[("files", ("minutes.md", MINUTES.encode())),
                                                                 ("files", ("lease.txt", LEASE.encode()))])
    assert [r["status"] for r in dropped.json()["results"]] == ["indexed", "indexed"]
    fake.queue("They are the minutes of a residents' meeting [1] and a lease [2].")
    events, _ = sse(client, "kb", query="What are these documents about?", conversation_id=conv, kb_name="garden",
                    top_k=3)
    assert "does not seem to answer" not in text_of(events)
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    # The first passage of each file, in the order they were dropped, then the next of the longer one; unscored.
    assert [s["file"] for s in sources] == ["minutes.md", "lease.txt", "minutes.md"]
    assert sources[0]["text"].startswith("These are the minutes") and "Point 1" not in sources[0]["text"]
    assert all(s["score"] is None and s["kb"] == f"_chat_{conv}" for s in sources)
    system, question = fake.requests[-1]["messages"][0]["content"], fake.requests[-1]["messages"][-1]["content"]
    # The model reads the files' openings, and their knowledge base by what the user calls it.
    assert "minutes of the residents' meeting of Elm Court" in question and "pays the rent" in question
    assert "this conversation's files + garden" in system and "_chat_" not in system
    stored = client.get(f"/conversations/{conv}").json()["messages"][-1]
    assert stored["meta"]["overview"] is True
    fake.queue("是一份会议记录[1]和一份租约[2]。")
    events, _ = sse(client, "kb", query="这些文件讲了什么？", conversation_id=conv, kb_name="garden", history=[])
    assert [s["file"] for s in next(e for e in events if e["type"] == "sources")["sources"]][:2] == ["minutes.md",
                                                                                                    "lease.txt"]
    assert "本对话的文件 + garden" in fake.requests[-1]["messages"][0]["content"]
    # Who wrote them is stated where they open, too.
    fake.queue("The residents' meeting minutes do not name their writer [1].")
    events, _ = sse(client, "kb", query="Who wrote these documents?", conversation_id=conv, history=[])
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    assert [s["file"] for s in sources][:2] == ["minutes.md", "lease.txt"] and sources[0]["score"] is None
    # A question about something in the files is searched for as usual (asked without the history, which would
    # have the model rewrite it first).
    fake.queue("On the fifth [1].")
    events, _ = sse(client, "kb", query="When does the lease say the rent is due?", conversation_id=conv, history=[])
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    assert sources[0]["file"] == "lease.txt" and sources[0]["score"] is not None
    # Nothing close enough, answered without the model: the files are named as the user knows them.
    requests = len(fake.requests)
    events, _ = sse(client, "kb", query="Who won the football World Cup in 1998?", conversation_id=conv,
                    kb_name="garden", history=[])
    declined = text_of(events)
    assert 'knowledge base "this conversation\'s files + garden"' in declined
    assert "_chat_" not in declined and len(fake.requests) == requests


def test_a_question_about_a_file_named_in_it_is_answered_from_that_files_opening(client, fake):
    fake.queue("It is about honey bees [1].")
    events, _ = sse(client, "kb", query="What is the bees file about?", kb_name="garden", top_k=3)
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    assert [(s["file"], s["score"]) for s in sources] == [("bees.txt", None)]
    assert "Honey bees visit lavender" in fake.requests[-1]["messages"][-1]["content"]
    assert client.get(f"/conversations/{events[-1]['conversation_id']}").json()["messages"][-1]["meta"]["overview"]
    # Who wrote it: the opening, where a document names its authors, not the passage sharing the question's words.
    fake.queue("The passages do not name an author.")
    events, _ = sse(client, "kb", query="Who wrote the bees file?", kb_name="garden", top_k=3)
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    assert [(s["file"], s["score"]) for s in sources] == [("bees.txt", None)]
    assert "Honey bees visit lavender" in fake.requests[-1]["messages"][-1]["content"]
    # A document is asked about by its title, too, which its file's name may not hold.
    fake.queue("Compost and tomatoes [1].")
    events, _ = sse(client, "kb", query="Summarise the Garden Guide", kb_name="garden", top_k=3)
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    assert {(s["file"], s["score"]) for s in sources} == {("garden.md", None)}
    # A name no file bears: searched as any question.
    fake.queue("Every two weeks [1].")
    events, _ = sse(client, "kb", query="Summarise the section on compost", kb_name="garden", top_k=1)
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    assert sources[0]["file"] == "garden.md" and sources[0]["score"] is not None


def test_kb_chat_asks_in_chinese_for_a_chinese_question(client, fake):
    fake.queue("每两周翻一次[1]。")
    sse(client, "kb", query="堆肥多久翻一次？compost heap turned", kb_name="garden", top_k=2)
    system = fake.requests[-1]["messages"][0]["content"]
    asked = fake.requests[-1]["messages"][-1]["content"]
    assert "用中文回答" in system and "问题：堆肥多久翻一次" in asked


def test_a_code_the_knowledge_base_never_mentions_is_declined_by_name_without_asking_the_model(app, client, fake):
    sheet = ("# SNB22-3 datasheet\n\nGrade SNB22-3 is a chromium molybdenum steel for bolting materials. "
             "Its yield strength is at least 890 N/mm2 and its tensile strength at least 1030 N/mm2.\n")
    app.state.services.kb.create_kb("steel")
    app.state.services.kb.add_files("steel", [("snb22-3.md", sheet.encode())])
    asked = len(fake.requests)
    events, _ = sse(client, "kb", query="What's the minimum yield strength of SS400 steel?", kb_name="steel")
    assert text_of(events).startswith('The knowledge base "steel" does not mention SS400, so it cannot answer')
    assert next(e for e in events if e["type"] == "sources")["sources"] and len(fake.requests) == asked
    stored = client.get(f"/conversations/{events[0]['conversation_id']}").json()["messages"][-1]
    assert stored["meta"]["unsupported"] is True and stored["meta"]["unmentioned"] == ["SS400"]
    events, _ = sse(client, "kb", query="SS400钢和SNB22-3的屈服强度哪个高？", kb_name="steel+garden")
    assert text_of(events).startswith('知识库"steel + garden"中没有提到“SS400”，无法回答这个问题')
    # The code it holds, however spelled, is asked about as usual; so is a quantity with its unit.
    for question in ("What's the yield strength of snb 22-3 bars?", "Is a 10km walk enough for SNB22-3 bars?"):
        fake.queue("At least 890 N/mm2 [1].")
        events, _ = sse(client, "kb", query=question, kb_name="steel")
        assert text_of(events) == "At least 890 N/mm2 [1]."
    assert len(fake.requests) == asked + 2


def test_kb_chat_says_plainly_when_nothing_passes_the_threshold(client, fake):
    events, _ = sse(client, "kb", query="Quantum chromodynamics lattice", kb_name="garden", score_threshold=0.99,
                    search_mode="vector")
    assert text_of(events).startswith('No passage in knowledge base "garden" matched the question (score threshold 0.99)')
    assert next(e for e in events if e["type"] == "sources")["sources"] == []
    assert events[-1]["type"] == "done" and fake.requests == []


def test_search_chat_answers_from_web_results(client, fake, search):
    fake.queue("Turn it every two weeks [1].")
    events, _ = sse(client, "search", query="compost turning")
    sources = next(e for e in events if e["type"] == "sources")["sources"]
    assert [(s["index"], s["file"], s["url"]) for s in sources][:2] == [
        (1, "Compost basics", "https://garden.example/compost"), (2, "Tomato care", "https://garden.example/tomatoes")
    ]
    assert sources[0]["location"] == "garden.example" and sources[0]["kb"] is None
    assert "[1] (Compost basics, garden.example)\nTurn a compost heap every two weeks." in (
        fake.requests[-1]["messages"][0]["content"]
    )
    assert search.requests[-1]["query"] == {"q": "compost turning", "format": "json"}
    asked = fake.requests[-1]["messages"][-1]["content"]
    assert asked.startswith("compost turning\n\nAnswer in one or two sentences and cite")


def test_search_chat_without_a_reachable_engine_is_a_clear_error(client, fake, search):
    search.fail_status = 503
    try:
        events, _ = sse(client, "search", query="compost turning")
    finally:
        search.fail_status = None
    assert events[-1]["type"] == "error" and events[-1]["code"] == "search_unavailable"
    assert "503" in events[-1]["message"] and fake.requests == []


def test_agent_chat_streams_tool_steps(client, fake):
    fake.queue_tool_call("unit_convert", {"value": 10, "from_unit": "km", "to_unit": "mi"})
    fake.queue("10 km is about 6.2 miles.")
    events, _ = sse(client, "agent", query="How many miles is 10 km?")
    tool = next(e for e in events if e["type"] == "tool")
    assert tool["tool"] == "unit_convert" and tool["output"].startswith("10 km = 6.21371") and not tool["error"]
    assert text_of(events) == "10 km is about 6.2 miles." and events[-1]["type"] == "done"
    body = client.get(f"/conversations/{events[0]['conversation_id']}").json()
    assert body["messages"][-1]["meta"]["tools"][0]["tool"] == "unit_convert"


def test_bilingual_kb_chat_translates_question_and_answer(client, fake):
    fake.queue("How often should compost be turned?", "Every two weeks [1].", "每两周翻一次 [1]。")
    events, _ = sse(client, "kb", query="堆肥多久翻一次？", kb_name="garden", bilingual=True)
    assert text_of(events) == "每两周翻一次 [1]。"
    assert next(e for e in events if e["type"] == "sources")["sources"][0]["file"] == "garden.md"
    stored = client.get(f"/conversations/{events[0]['conversation_id']}").json()["messages"][-1]
    assert stored["meta"]["bilingual"]["answer_en"] == "Every two weeks [1]."


@pytest.mark.parametrize("query", ["   \n ", "问" * 10001, "\x00\x01\x1b\x7f"])
def test_a_blank_or_overlong_question_is_refused_before_anything_is_stored(client, fake, query):
    count = len(client.get("/conversations", params={"size": 200}).json()["items"])
    for mode, extra in (("llm", {}), ("kb", {"kb_name": "garden"})):
        response = client.post(f"/chat/{mode}", json={"query": query, "stream": False, **extra})
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"
    assert len(client.get("/conversations", params={"size": 200}).json()["items"]) == count and fake.requests == []


def test_knowledge_base_answers_are_sampled_cold_unless_asked_otherwise(client, fake):
    fake.queue("Every two weeks [1].", "Every two weeks [1].", "Hello.")
    sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1)
    assert fake.requests[-1]["temperature"] == pytest.approx(0.1)  # llm.kb_temperature
    sse(client, "kb", query="How often should the compost heap be turned?", kb_name="garden", top_k=1,
        temperature=0.9)
    assert fake.requests[-1]["temperature"] == pytest.approx(0.9)
    sse(client, "llm", query="Hello?")
    assert fake.requests[-1]["temperature"] == pytest.approx(0.7)  # llm.temperature


def test_passages_found_by_the_rewrite_replace_the_first_ones_shown(client, fake):
    # The hypothetical answer points elsewhere than the question's own words.
    fake.queue("Honey bees visit lavender and clover; a strong hive holds about fifty thousand bees in summer.",
               "Bees like lavender [1].")
    events, _ = sse(client, "kb", query="My compost stinks, what now?", kb_name="garden", top_k=1,
                    rewrite_query=True)
    shown = [e["sources"] for e in events if e["type"] == "sources"]
    assert [s[0]["file"] for s in shown] == ["garden.md", "bees.txt"]
    assert "lavender" in fake.requests[-1]["messages"][-1]["content"]  # the model read the later passages
    meta = client.get(f"/conversations/{events[0]['conversation_id']}").json()["messages"][-1]["meta"]
    assert [s["file"] for s in meta["sources"]] == ["bees.txt"]


@pytest.mark.parametrize("path, body", [
    ("/chat/llm", {"query": "hi", "top_k": True}),
    ("/chat/kb", {"query": "hi", "kb_name": "garden", "top_k": "5"}),
    ("/chat/llm", {"query": "hi", "temperature": "0.5"}),
    ("/kbs/garden/search", {"query": "hi", "top_k": True}),
    ("/conversations", {"title": 5}),
])
def test_values_of_the_wrong_json_type_are_refused_not_converted(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


def test_a_body_that_is_not_utf8_gets_the_error_shape(client):
    response = client.post("/chat/llm", content=b'{"query": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "bad_request", "message": "There was an error parsing the body"}}


def test_control_characters_are_dropped_from_questions_and_searches(client, fake):
    fake.queue("Every two weeks [1].")
    answer = client.post("/chat/kb", json={"query": "How often\x00 is compost\x1b turned?", "kb_name": "garden",
                                           "stream": False, "top_k": 1})
    assert answer.status_code == 200
    stored = client.get(f"/conversations/{answer.json()['conversation_id']}").json()["messages"][0]
    assert stored["content"] == "How often is compost turned?"
    assert "\x00" not in json.dumps(fake.requests[-1])
    hits = client.post("/kbs/garden/search", json={"query": "compost\x00\x07 turned", "top_k": 1})
    assert hits.status_code == 200 and hits.json()[0]["metadata"]["source"] == "garden.md"
    blank = client.post("/kbs/garden/search", json={"query": "\x00\x07"})
    assert blank.status_code == 422 and blank.json()["error"]["code"] == "invalid_input"


def test_a_spreadsheet_tables_title_and_best_row_lead_its_passage(app, client, fake):
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Regions"
    header = [None, "Sales", "Profit", "Staff", "Stores"]
    for row in (["Sales by region"], [], ["In millions", None, None, "January–June 2023"], header,
                ["South", 80, -5, 950, 31], ["North", 120, 30, 1250, 52], [],
                ["In millions", None, None, "January–June 2022"], header,
                ["South", 90, 4, 940, 30], ["North", 110, 25, 1200, 48]):
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    kb = app.state.services.kb
    kb.create_kb("regions")
    [result] = kb.add_files("regions", [("results.xlsx", data.getvalue())])
    assert result.status == "indexed", result.error
    fake.queue("North sold 110 million in January–June 2022, against 120 in January–June 2023 [1][2].")
    events, _ = sse(client, "kb", query="What were the North region's sales in the first half of 2022?",
                    kb_name="regions", top_k=2)
    # The period stands only in the tables' titles, which the figure check reads with the passages: no note.
    assert text_of(events) == "North sold 110 million in January–June 2022, against 120 in January–June 2023 [1][2]."
    sources = next(e for e in events if e["type"] == "sources")["sources"]
    assert {s["location"] for s in sources} == {
        "sheet Regions, rows 5-6, § Sales by region > In millions; January–June 2023",
        "sheet Regions, rows 10-11, § Sales by region > In millions; January–June 2022"}
    asked = fake.requests[-1]["messages"][-1]["content"]
    # Each passage is named by its file and its table's own title, which its rows do not repeat; the row that
    # bears on the question comes first.
    assert "results — In millions; January–June 2022\nNorth; Sales: 110; Profit: 25;" in asked
    assert "results — In millions; January–June 2023\nNorth; Sales: 120; Profit: 30;" in asked


def test_a_question_for_the_most_of_a_column_reads_that_row_alone_of_its_table(app, client, fake):
    rows = "\n".join(["Team,Location,Stanley Cups", "Blues,STL,1", "Flyers,PHI,2", "Maple Leafs,TOR,0"])
    kb = app.state.services.kb
    kb.create_kb("hockey")
    [result] = kb.add_files("hockey", [("cups.csv", rows.encode())])
    assert result.status == "indexed", result.error
    fake.queue("The Flyers, with 2 [1].")
    events, _ = sse(client, "kb", query="Which team has won the most Stanley Cups?", kb_name="hockey", top_k=3)
    assert text_of(events) == "The Flyers, with 2 [1]."
    asked = fake.requests[-1]["messages"][-1]["content"]
    assert "Team: Flyers; Location: PHI; Stanley Cups: 2" in asked and "Blues" not in asked and "TOR" not in asked
    # The sources still show the whole chunk, the row read highlighted.
    [source] = next(e for e in events if e["type"] == "sources")["sources"]
    assert [source["text"][start:end].strip() for start, end in source["highlights"]] == [
        "Team: Flyers; Location: PHI; Stanley Cups: 2"]
    # Without a most or least, the rows are read as usual.
    fake.queue("The Blues have 1 [1].")
    sse(client, "kb", query="How many Stanley Cups have the Blues won?", kb_name="hockey", top_k=3)
    assert "Team: Blues; Location: STL; Stanley Cups: 1" in fake.requests[-1]["messages"][-1]["content"]


def test_a_question_for_a_dropped_files_date_reads_its_dateline_when_the_opening_has_none(client, fake):
    # A newsletter whose text, as a PDF's often does, holds its dated running header in mid-page.
    items = "\n\n".join(f"## Item {i}\n\n" + f"Point {i} was raised by a resident and noted. " * 12
                        for i in range(1, 4))
    newsletter = (f"# Elm Court newsletter\n\nNews for the residents of the block.\n\n{items}\n\n"
                  "Elm Court News\n\nIssue 12\n\nThursday, March 5, 2026\n\n"
                  "Comments on the bicycle shed are due by April 30, 2026.")
    conv = client.post("/conversations", json={"mode": "kb"}).json()["id"]
    dropped = client.post(f"/conversations/{conv}/files", files=[("files", ("news.md", newsletter.encode()))])
    assert [r["status"] for r in dropped.json()["results"]] == ["indexed"]
    fake.queue("It came out on Thursday, March 5, 2026 [1].")
    events, _ = sse(client, "kb", query="When was this newsletter published?", conversation_id=conv, top_k=2)
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    assert sources[0]["text"] == "Elm Court News\n\nIssue 12\n\nThursday, March 5, 2026"
    assert sources[1]["text"].startswith("News for the residents") and all(s["score"] is None for s in sources)
    assert "Thursday, March 5, 2026" in fake.requests[-1]["messages"][-1]["content"]
    # What it is about is read from its opening alone.
    fake.queue("News for the residents [1].")
    events, _ = sse(client, "kb", query="What is this newsletter about?", conversation_id=conv, top_k=2,
                    history=[])
    [sources] = [e["sources"] for e in events if e["type"] == "sources"]
    assert "Thursday" not in " ".join(s["text"] for s in sources)
