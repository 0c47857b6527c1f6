"""Page logic of the WebUI with streamlit.testing.v1.AppTest, against the real API and the fake model."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest
from streamlit_chatbox import Markdown

from server.app import create_app
from tests.e2e.conftest import REPO_ROOT, ApiServer, api_settings, run_uvicorn
from tests.fakes.fixtures import free_port
from webui_pages.api_client import ApiClient
from webui_pages.transcript import CHAT_BOX_KEY

RUN_TIMEOUT = 90  # seconds per script run: ingestion and answers take a while on two cores
_names = itertools.count(1)

HANDBOOK = (
    "# Staff handbook\n\n## Leave\n\nEvery employee gets twenty-five days of paid annual leave.\n\n"
    "## Travel\n\nTravel costs are refunded within thirty days of the trip.\n"
)


def _kb_page_script() -> None:
    # AppTest.from_function runs this source on its own: imports must be inside.
    from configs import load_settings
    from webui_pages import knowledge_base
    from webui_pages.api_client import ApiClient
    from webui_pages.common import UIContext

    settings = load_settings()
    api = ApiClient(settings.server.resolved_api_url, timeout=settings.server.webui_timeout)
    knowledge_base.render(UIContext(settings=settings, api=api, lang="en"))


def chat_app(**query: str) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "webui.py"), default_timeout=RUN_TIMEOUT)
    at.query_params.update({"lang": "en", **query})
    return at.run()


def kb_app() -> AppTest:
    return AppTest.from_function(_kb_page_script, default_timeout=RUN_TIMEOUT).run()


def no_exception(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.fixture
def api(webui_env: ApiServer) -> ApiClient:
    return ApiClient(webui_env.url)


@pytest.fixture
def kb(api: ApiClient) -> Iterator[str]:
    """A knowledge base holding the handbook; deleted afterwards."""
    name = f"handbook_{next(_names)}"
    api.create_kb(name, "Company rules")
    with api.upload_files_stream(name, [("handbook.md", HANDBOOK.encode())]) as events:
        results = list(events)[-1]["results"]
    assert results[0]["status"] == "indexed", results
    yield name
    try:
        api.delete_kb(name)
    except Exception:  # noqa: BLE001 - a test may have deleted it already
        pass


def chat_box_history(at: AppTest) -> dict[str, list[tuple[str, str]]]:
    """What ChatBox holds in the session: chat name -> [(role, text of the message)]."""
    chats = at.session_state[CHAT_BOX_KEY]
    return {
        name: [
            (m["role"], "".join(e.content for e in m["elements"] if isinstance(e, Markdown)))
            for m in chat["history"]
        ]
        for name, chat in chats.items()
    }


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input(key="chat_prompt").set_value(question).run()
    return no_exception(at)


def set_mode(at: AppTest, mode: str) -> AppTest:
    at.sidebar.radio(key="opt_mode").set_value(mode).run()
    return no_exception(at)


def kb_chat_app(kb: str) -> AppTest:
    """The dialogue page in knowledge-base mode, over the knowledge base ``kb``."""
    at = chat_app()
    set_mode(at, "kb")
    return at.sidebar.selectbox(key="opt_kb").set_value(kb).run()


# ---- dialogue page ----------------------------------------------------------------------------


def test_sidebar_defaults_come_from_public_settings(webui_env, api):
    public = api.public_settings()
    at = no_exception(chat_app())
    assert at.sidebar.radio(key="opt_mode").value == "llm"
    assert at.sidebar.selectbox(key="opt_model").value == public["default_model"] == "fake"
    assert at.sidebar.slider(key="opt_temperature_llm").value == pytest.approx(public["temperature"])
    # history_turns=7 is the test API's own setting, not kbchat's default
    assert at.sidebar.number_input(key="opt_history").value == public["history_turns"] == 7
    set_mode(at, "kb")
    assert at.sidebar.number_input(key="opt_top_k").value == public["kb_passages"] == 3
    # Knowledge-base answers are sampled cold by default.
    assert at.sidebar.slider(key="opt_temperature_kb").value == pytest.approx(public["kb_temperature"]) == 0.1
    assert at.sidebar.selectbox(key="opt_search_mode_en").value == public["default_search_mode"]


def test_each_mode_shows_its_own_controls(webui_env, kb):
    at = no_exception(chat_app())
    keys = lambda: {w.key for w in at.sidebar.selectbox} | {w.key for w in at.sidebar.number_input}  # noqa: E731
    assert not keys() & {"opt_kb", "opt_top_k", "opt_engine", "opt_result_count"}
    set_mode(at, "kb")
    assert {"opt_kb", "opt_top_k", "opt_search_mode_en"} <= keys()
    assert kb in at.sidebar.selectbox(key="opt_kb").options
    assert at.sidebar.slider(key="opt_threshold") is not None
    set_mode(at, "search")
    assert {"opt_engine", "opt_result_count"} <= keys()
    assert "opt_kb" not in keys()
    set_mode(at, "agent")
    assert not keys() & {"opt_kb", "opt_top_k", "opt_engine", "opt_result_count"}
    assert "opt_model" in keys()


def test_kb_question_renders_answer_and_sources(webui_env, kb, fake_model):
    fake_model.default_reply = "Employees get twenty-five days of paid annual leave [1]."
    at = kb_chat_app(kb)
    ask(at, "How much paid leave do employees get?")
    messages = at.chat_message
    assert [m.name for m in messages] == ["user", "assistant"]
    assert "How much paid leave" in messages[0].markdown[0].value
    assert "twenty-five days of paid annual leave" in messages[1].markdown[0].value
    # ChatBox renders markdown with raw HTML allowed by default; model and user text must not be
    assert not messages[0].markdown[0].proto.allow_html and not messages[1].markdown[0].proto.allow_html
    # ChatBox draws an element "in an expander" as st.status
    sources = [e for e in messages[1].status if e.label.startswith("Sources (")]
    assert sources, "the answer has no sources expander"
    assert sources[0].state == "complete"
    assert "handbook" in texts(sources[0].markdown)
    assert at.query_params["conv"], "the conversation id is not kept in the URL"
    # the request reached the model with the question and the retrieved passage
    prompt = str(fake_model.requests[-1]["messages"]) if fake_model.requests else ""
    assert "twenty-five days" in prompt


def test_rewrite_toggle_sends_rewrite_query_only_when_changed(webui_env, kb, fake_model):
    fake_model.default_reply = "Twenty-five days [1]."
    at = kb_chat_app(kb)
    at.sidebar.toggle(key="opt_rewrite").set_value(True).run()
    ask(at, "How many days of annual leave do I get?")
    # The model wrote a hypothetical answer first, which the search used with the question.
    hyde = [r for r in fake_model.requests if r["messages"][0]["content"].startswith("Write a short passage")]
    assert hyde and hyde[-1]["messages"][-1]["content"] == "How many days of annual leave do I get?"


def test_a_question_the_kb_does_not_answer_is_declined_unless_the_toggle_is_off(webui_env, kb, fake_model):
    fake_model.default_reply = "Spot 12 [1]."
    at = kb_chat_app(kb)
    assert at.sidebar.toggle(key="opt_refuse").value is True
    before = len(fake_model.requests)

    def answers_asked():  # requests for an answer, not for the conversation's title
        return [r for r in fake_model.requests[before:]
                if not r["messages"][0]["content"].startswith("Write a short title")]

    ask(at, "Which employee parking spot is mine?")
    answer = at.chat_message[-1].markdown[0].value
    assert answer.startswith(f'The knowledge base "{kb}" does not seem to answer') and not answers_asked()
    assert [e for e in at.chat_message[-1].status if e.label.startswith("Sources (")], "the passages are not shown"
    # In a new conversation (a follow-up would be rewritten by the model first), with the toggle off.
    at = kb_chat_app(kb)
    at.sidebar.toggle(key="opt_refuse").set_value(False).run()
    ask(at, "Which employee parking spot is mine?")
    assert "Spot 12" in at.chat_message[-1].markdown[0].value and answers_asked()


def test_a_declined_question_can_be_asked_of_the_model_anyway(webui_env, kb, fake_model):
    fake_model.default_reply = "Spot 12 [1]."
    at = kb_chat_app(kb)
    ask(at, "Which employee parking spot is mine?")
    assert "does not seem to answer" in at.chat_message[-1].markdown[0].value
    before = len(fake_model.requests)
    again = [b for b in at.button if b.label == "Ask the model anyway"]
    assert len(again) == 1, "the declined answer offers no way to ask the model"
    no_exception(again[0].click().run())
    asked = [r["messages"] for r in fake_model.requests[before:]
             if not r["messages"][0]["content"].startswith("Write a short title")]
    # The same question, answered from the passages found, not condensed as a follow-up of itself: the model
    # reads no history holding the declined exchange.
    assert len(asked) == 1 and "Which employee parking spot is mine?" in asked[0][-1]["content"]
    assert not [m for m in asked[0] if m["role"] == "assistant" and "does not seem" in m["content"]]
    assert [m.name for m in at.chat_message] == ["user", "assistant", "user", "assistant"]
    assert "Spot 12" in at.chat_message[-1].markdown[0].value
    assert not [b for b in at.button if b.label == "Ask the model anyway"], "only a declined answer offers it"
    assert at.sidebar.toggle(key="opt_refuse").value is True, "the toggle stays as the user left it"


def test_files_dropped_into_the_conversation_are_searched(webui_env, api, fake_model):
    fake_model.default_reply = "The office closes at six on Fridays [1]."
    at = chat_app()
    set_mode(at, "kb")
    at.sidebar.file_uploader(key="conv_files_new").set_value(
        [("hours.txt", b"The office closes at six in the evening on Fridays.", "text/plain")]).run()
    at.sidebar.button(key="conv_files_add").click().run()
    no_exception(at)
    conv_id = at.query_params["conv"]
    assert [f["file_name"] for f in api.conversation_files(conv_id)] == ["hours.txt"]
    assert "hours.txt" in texts(at.sidebar.markdown)
    ask(at, "When does the office close on Fridays?")
    sources = [e for e in at.chat_message[-1].status if e.label.startswith("Sources (")]
    assert sources and "hours\\.txt" in texts(sources[0].markdown)
    assert "a file of this conversation" in texts(sources[0].markdown) and "_chat_" not in texts(sources[0].markdown)
    assert f"_chat_{conv_id}" not in [kb["name"] for kb in api.list_kbs()]


def test_unreachable_api_shows_readable_error(monkeypatch):
    monkeypatch.setenv("KBCHAT_SERVER__API_URL", f"http://127.0.0.1:{free_port()}")
    at = no_exception(chat_app())
    assert "cannot be reached" in texts(at.error)
    assert not at.chat_message


def test_api_key_is_sent_and_a_wrong_key_is_explained(tmp_path, fake_model, monkeypatch):
    settings = api_settings(tmp_path, fake_model, server={"api_key": "open-sesame"})
    server, thread, url = run_uvicorn(create_app(settings))
    try:
        monkeypatch.setenv("KBCHAT_SERVER__API_URL", url)
        monkeypatch.setenv("KBCHAT_SERVER__API_KEY", "open-sesame")
        at = no_exception(chat_app())
        assert not at.error
        assert at.sidebar.selectbox(key="opt_model").value == "fake"
        monkeypatch.setenv("KBCHAT_SERVER__API_KEY", "wrong")
        at = no_exception(chat_app())
        assert "refused access" in texts(at.error)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_unreachable_model_shows_readable_error_in_chat(webui_env):
    at = chat_app()
    at.sidebar.selectbox(key="opt_model").set_value("offline").run()
    ask(at, "Are you there?")
    assert not at.exception
    errors = texts(at.error)
    assert "model server cannot be reached" in errors or "model failed" in errors, errors
    assert "Traceback" not in errors


def test_deleted_kb_is_reported_not_silently_replaced(webui_env, api, kb, fake_model):
    other = f"other_{next(_names)}"
    api.create_kb(other)
    try:
        at = kb_chat_app(kb)
        api.delete_kb(kb)  # gone between choosing it and asking
        asked = len(fake_model.requests)
        at.run()
        no_exception(at)
        assert f"“{kb}” no longer exists" in texts(at.sidebar.warning)
    finally:
        api.delete_kb(other)
    assert len(fake_model.requests) == asked


def test_offline_search_engine_shows_readable_error_in_chat(webui_env):
    at = chat_app()
    set_mode(at, "search")
    at.sidebar.selectbox(key="opt_engine").set_value("searxng").run()
    ask(at, "What happened in the news today?")
    answer = at.chat_message[-1]
    assert answer.name == "assistant"
    shown = texts(answer.error)
    assert "web search" in shown.lower() or "outside service" in shown.lower(), shown
    assert "Traceback" not in shown


def test_feedback_is_sent_and_shown_after_reload(webui_env, api, fake_model):
    fake_model.default_reply = "Paris is the capital of France."
    at = chat_app()
    ask(at, "What is the capital of France?")
    conv_id = at.query_params["conv"]
    at.feedback[0].set_value(0).run()  # thumbs down
    no_exception(at)
    at.text_input(key=next(w.key for w in at.text_input if w.key.startswith("fbr_"))).input("Too short.").run()
    at.button(key=next(b.key for b in at.button if b.key.startswith("fbs_"))).click().run()
    no_exception(at)
    stored = [m for m in api.get_conversation(conv_id)["messages"] if m["role"] == "assistant"][0]["feedback"]
    assert stored["score"] in (-1, "down") and stored["reason"] == "Too short."

    reloaded = no_exception(chat_app(conv=conv_id))
    assert chat_box_history(reloaded) == {
        conv_id: [("user", "What is the capital of France?"), ("assistant", "Paris is the capital of France.")]
    }
    assert reloaded.feedback[0].value == 0
    assert "unhelpful" in texts(reloaded.caption)
    assert "Too short" in texts(reloaded.caption)


def test_switching_conversations_reloads_history(webui_env, fake_model):
    at = chat_app()
    fake_model.default_reply = "First answer about apples."
    ask(at, "Tell me about apples")
    first = at.query_params["conv"]
    at.button(key="chat_clear").click().run()
    assert "conv" not in at.query_params
    assert not at.chat_message
    fake_model.default_reply = "Second answer about pears."
    ask(at, "Tell me about pears")
    second = at.query_params["conv"]
    assert second != first
    at.button(key=f"conv_{first}").click().run()
    no_exception(at)
    assert at.query_params["conv"] == first
    shown = texts(at.markdown)
    assert "First answer about apples." in shown and "pears" not in shown
    # ChatBox holds only the open conversation, refilled from the API
    expected = [("user", "Tell me about apples"), ("assistant", "First answer about apples.")]
    assert chat_box_history(at) == {first: expected}


def test_delete_conversation_asks_for_confirmation(webui_env, api, fake_model):
    fake_model.default_reply = "A short answer."
    at = chat_app()
    ask(at, "Delete me later")
    conv_id = at.query_params["conv"]
    at.sidebar.button(key="conv_delete").click().run()
    assert api.get_conversation(conv_id)["id"] == conv_id  # nothing deleted before confirming
    at.sidebar.button(key="conv_delete_yes").click().run()
    no_exception(at)
    assert conv_id not in [c["id"] for c in api.list_conversations()["items"]]
    assert "conv" not in at.query_params


def test_agent_steps_are_shown_with_the_answer(webui_env, fake_model):
    fake_model.queue(
        'Thought: I should compute this.\nAction: calculator\nAction Input: {"expression": "6*7"}',
        "Final Answer: Six times seven is 42.",
    )
    at = chat_app()
    set_mode(at, "agent")
    ask(at, "What is six times seven?")
    answer = at.chat_message[-1]
    assert "Six times seven is 42." in answer.markdown[0].value
    steps = [e for e in answer.status if e.label.startswith("Agent steps (")]
    assert steps, "the answer has no agent steps expander"
    assert steps[0].state == "complete"
    shown = texts(steps[0].markdown) + texts(steps[0].code)
    assert "calculator" in shown and "42" in shown


def test_streamed_answer_cut_short_keeps_its_final_text(webui_env, api, fake_model):
    fake_model.queue_drop_after("The answer starts well but then the model dies.", 3)
    at = chat_app()
    ask(at, "Will you finish?")
    conv_id = at.query_params["conv"]
    history = chat_box_history(at)
    assert list(history) == [conv_id], "the new conversation's ChatBox chat is not named after it"
    (user, question), (assistant, partial) = history[conv_id]
    assert (user, question, assistant) == ("user", "Will you finish?", "assistant")
    # the streamed updates end in the text received, without the streaming cursor
    assert partial and "The answer starts well but then the model dies.".startswith(partial)
    assert partial == at.chat_message[-1].markdown[0].value
    assert at.chat_message[-1].error, "the answer does not say it was cut short"
    stored = api.get_conversation(conv_id)["messages"][-1]
    assert stored["content"] == partial and stored["meta"]["incomplete"] is True

    at.run()  # the next run draws the stored partial answer, once
    no_exception(at)
    assert chat_box_history(at) == {conv_id: [("user", "Will you finish?"), ("assistant", partial)]}
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert at.chat_message[-1].error


def test_template_menu_lists_the_current_modes_templates(webui_env, api):
    by_mode = api.public_settings()["prompt_templates_by_mode"]
    at = no_exception(chat_app())
    for mode in ("llm", "kb", "search", "agent"):
        set_mode(at, mode)
        menu = at.sidebar.selectbox(key=f"opt_template_{mode}_en")
        assert menu.options == ["(default for this mode)", *by_mode[mode]]
    assert by_mode["kb"] == ["kb_classic", "kb_default"] and "title" not in str(by_mode)


def test_rename_conversation_updates_title(webui_env, api, fake_model):
    fake_model.default_reply = "Noted."
    at = chat_app()
    ask(at, "Remember this")
    conv_id = at.query_params["conv"]
    at.sidebar.text_input(key=f"conv_rename_{conv_id}").input("Shopping list")
    at.sidebar.button(key="conv_rename_save").click().run()
    no_exception(at)
    assert api.get_conversation(conv_id)["title"] == "Shopping list"
    assert at.button(key=f"conv_{conv_id}").label == "Shopping list"


def test_language_switch_translates_the_page(webui_env):
    at = no_exception(chat_app())
    assert at.title[0].value.endswith("Chat")
    at.sidebar.selectbox(key="ui_lang").set_value("zh").run()
    no_exception(at)
    assert at.title[0].value.endswith("对话")
    assert at.query_params["lang"] == "zh"
    assert "大模型对话" in at.sidebar.radio(key="opt_mode").options


def test_the_other_knowledge_bases_menu_speaks_the_page_s_language(webui_env, api, kb):
    other = f"{kb}_other"
    api.create_kb(other, "")
    try:
        at = no_exception(chat_app(lang="zh"))
        set_mode(at, "kb")
        menu = at.sidebar.multiselect(key="opt_kb_more")
        assert menu.label == "同时检索" and menu.proto.placeholder == "选择其他知识库"
    finally:
        api.delete_kb(other)


# ---- knowledge-base page ----------------------------------------------------------------------


def test_create_kb_form_creates_and_selects_it(webui_env, api):
    name = f"created_{next(_names)}"
    at = no_exception(kb_app())
    if any(box.key == "kb_pick_en" for box in at.selectbox):  # other tests' KBs exist: show the form
        at.selectbox(key="kb_pick_en").set_value("").run()
    assert at.selectbox(key="kb_new_store").options == api.public_settings()["vector_stores"] == ["faiss", "milvus"]
    at.text_input(key="kb_new_name").input(name)
    at.text_area(key="kb_new_desc").input("Made in a test")
    at.button[0].click().run()  # the form's Create button
    no_exception(at)
    info = next(k for k in api.list_kbs() if k["name"] == name)
    assert info["description"] == "Made in a test" and info["vector_store"] == "faiss"
    assert at.selectbox(key="kb_pick_en").value == name
    api.delete_kb(name)


def test_create_kb_with_existing_name_shows_conflict(webui_env, kb):
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value("").run()
    at.text_input(key="kb_new_name").input(kb)
    at.button[0].click().run()
    no_exception(at)
    assert "already exists" in texts(at.error) or "Something with that name" in texts(at.error)


def test_upload_reports_each_file_and_keeps_going(webui_env, api, kb):
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value(kb).run()
    uploader = next(u for u in at.file_uploader if u.key and u.key.startswith(f"upload_{kb}_"))
    uploader.set_value([
        ("travel.md", "# Travel\n\nTrains are booked by the office.".encode(), "text/markdown"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "application/pdf"),
    ]).run()
    at.button(key="up_start").click().run()
    no_exception(at)
    assert "1 file(s) added" in texts(at.success)
    assert "broken.pdf" in texts(at.error)
    statuses = {f["file_name"]: f["status"] for f in api.list_files(kb)}
    assert statuses["travel.md"] == "indexed"
    assert statuses["handbook.md"] == "indexed"


def test_chunk_edit_is_saved(webui_env, api, kb):
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value(kb).run()
    chunk = api.list_chunks(kb, "handbook.md")[0]
    area = at.text_area(key=f"chunk_{chunk['doc_id']}")
    area.input("Every employee gets thirty days of paid annual leave.").run()
    at.button(key=f"chunk_save_{chunk['doc_id']}").click().run()
    no_exception(at)
    texts_now = {c["doc_id"]: c["text"] for c in api.list_chunks(kb, "handbook.md")}
    assert texts_now[chunk["doc_id"]] == "Every employee gets thirty days of paid annual leave."


def test_retrieval_test_shows_each_mode_side_by_side(webui_env, kb):
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value(kb).run()
    at.text_input(key="kb_search_query").input("paid annual leave")
    at.checkbox(key="kb_search_threshold").uncheck()
    next(b for b in at.button if b.label == "Search").click().run()
    no_exception(at)
    headers = [s.value for s in at.subheader]
    assert {"Vector", "BM25 keywords", "Hybrid"} <= set(headers)
    assert "paid annual leave" in texts(at.markdown)


def test_evaluation_tab_scores_uploaded_questions_per_mode(webui_env, kb):
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value(kb).run()
    questions = "\n".join([
        '{"id": "leave", "question": "how much holiday do I get", "file": "handbook.md"}',
        '{"id": "ghost", "question": "who cleans the office", "file": "cleaning.md"}',
    ])
    at.file_uploader(key="kb_eval_file").set_value([("mine.jsonl", questions.encode(), "application/json")])
    next(b for b in at.button if b.label == "Evaluate").click().run()
    no_exception(at)
    table = at.dataframe[-1].value
    assert list(table["Search mode"]) == ["Vector", "BM25 keywords", "Hybrid"]
    assert list(table["hit@5"]) == [0.5, 0.5, 0.5]
    assert set(table["Missed in the top 5"]) == {"ghost"}


def test_evaluation_tab_runs_each_mode_again_with_the_models_rewrite(webui_env, kb, fake_model):
    fake_model.default_reply = "Every employee gets thirty days of paid annual leave."
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value(kb).run()
    question = '{"id": "leave", "question": "time off rules", "file": "handbook.md"}'
    at.file_uploader(key="kb_eval_file").set_value([("mine.jsonl", question.encode(), "application/json")])
    at.checkbox(key="kb_eval_rewrite").check()
    next(b for b in at.button if b.label == "Evaluate").click().run()
    no_exception(at)
    table = at.dataframe[-1].value
    assert list(table["Search mode"]) == ["Vector", "BM25 keywords", "Hybrid", "Vector + rewrite",
                                          "BM25 keywords + rewrite", "Hybrid + rewrite"]
    assert list(table["hit@1"])[-1] == 1.0
    rewrite_seconds = list(table["Median rewrite time (s)"])
    assert rewrite_seconds[:3] == ["–"] * 3 and all(float(v) >= 0 for v in rewrite_seconds[3:])
    assert any(r["messages"][-1]["content"] == "time off rules" for r in fake_model.requests)


def test_file_delete_from_disk_needs_confirmation(webui_env, api, kb):
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value(kb).run()
    at.selectbox(key="file_pick").set_value("handbook.md").run()
    at.button(key="file_delete").click().run()
    assert [f["file_name"] for f in api.list_files(kb)] == ["handbook.md"]
    at.button(key="file_delete_yes").click().run()
    no_exception(at)
    assert api.list_files(kb) == []


def test_delete_kb_needs_confirmation(webui_env, api, kb):
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value(kb).run()
    at.button(key="kb_delete").click().run()
    assert kb in [k["name"] for k in api.list_kbs()]
    at.button(key="kb_delete_yes").click().run()
    no_exception(at)
    assert kb not in [k["name"] for k in api.list_kbs()]


def test_rebuild_asks_then_streams_progress_to_the_end(webui_env, api, kb):
    at = kb_app()
    at.selectbox(key="kb_pick_en").set_value(kb).run()
    at.button(key="kb_rebuild").click().run()
    assert "Searches in" in texts(at.warning)
    at.button(key="kb_rebuild_yes").click().run()
    no_exception(at)
    assert "Vector store rebuilt." in texts(at.success)
    assert at.progress[-1].value == 100
    assert next(k for k in api.list_kbs() if k["name"] == kb)["chunk_count"] >= 1
