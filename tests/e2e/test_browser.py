"""End to end in real headless Chromium: the WebUI (streamlit subprocess) against the real API and fake model.

Screenshots land in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (make browser-deps installs it)"),
]

# Streamlit reruns take a few seconds on two cores; model answers and ingestion more. A download button's
# file is fetched in a rerun of the whole chat page, which took over 60 s on two cores busy with other work
# (load average 8), so every wait allows two minutes.
UI_TIMEOUT_MS = 120_000
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]

KB_NAME = "e2e_handbook"
DOC_NAME = "handbook.md"
DOC_TEXT = (
    "# Staff handbook\n\n"
    "## Leave\n\nEvery employee gets twenty-five days of paid annual leave. Unused days expire in March.\n\n"
    "## 报销\n\n差旅费用须在出差结束后三十日内提交报销申请。\n"
)
QUESTION = "How many days of paid annual leave does an employee get?"
ANSWER = (
    "Each employee gets twenty-five days of paid annual leave [1]. "
    "Days that are not used expire in March; up to 5 may be carried over, so plan your holidays early."
)
# The texts CSS shows after each element inside a given element (how the Chinese page relabels Streamlit's own).
AFTER_TEXTS = "z => [...z.querySelectorAll('*')].map(e => getComputedStyle(e, '::after').content)"
# The answer's "5" is in no passage: KB chat notes it after the answer.
FIGURE_NOTE = "(Not found in the passages: 5. Check the sources before relying on it.)"
REASON = "It should also say who approves the leave."


def _patient_expect() -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    """A fresh headless Chromium page with its own profile folder."""
    from playwright.sync_api import sync_playwright

    _patient_expect()
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path))
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 950},
            locale="en-US",
            accept_downloads=True,
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _shot(page, name: str, wait: bool = True, full_page: bool = True) -> None:
    if wait:
        _wait_until_idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def _wait_until_idle(page) -> None:
    """Wait for the script run to finish (Streamlit shows its status widget while running)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"] [data-testid=\"stStatusWidgetRunningIcon\"]')"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"] button')",
        timeout=UI_TIMEOUT_MS,
    )


def _pick_option(page, combobox, option: str) -> None:
    """Choose in a selectbox; its list can close again if a rerun redraws it, so retry."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _attempt in range(3):
        combobox.click()
        try:
            page.get_by_role("option", name=option).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"could not pick {option!r}")


def _poll(fetch, check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def _create_kb_and_upload(page, webui: str, api: str, doc: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{webui}/knowledge_base?lang=en")
    expect(page.get_by_text("Create a knowledge base")).to_be_visible()
    _shot(page, "kb_page_empty")
    page.get_by_label("Name", exact=True).fill(KB_NAME)
    page.get_by_label("Description (optional; the agent uses it to pick a KB)").fill("Company rules for staff.")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("tab", name="Files")).to_be_visible()
    assert [kb["name"] for kb in httpx.get(f"{api}/kbs").json()] == [KB_NAME]

    # The Files tab's uploader, not the Evaluation tab's.
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Files (pick several at once)")
    uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(doc))
    expect(page.get_by_text(DOC_NAME).first).to_be_visible()
    page.get_by_role("button", name="Upload and index").click()
    expect(page.get_by_text("1 file(s) added")).to_be_visible()
    _wait_until_idle(page)
    files = httpx.get(f"{api}/kbs/{KB_NAME}/files").json()
    assert [(f["file_name"], f["status"]) for f in files] == [(DOC_NAME, "indexed")]
    assert files[0]["chunk_count"] >= 1
    _shot(page, "kb_page_uploaded")
    page.get_by_role("heading", name="Files", exact=True).evaluate("e => e.scrollIntoView({block: 'start'})")
    _shot(page, "kb_page_file_table", full_page=False)


def _retrieval_test(page) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Retrieval test").click()
    page.get_by_label("Test query").fill("paid annual leave")
    page.get_by_role("button", name="Search", exact=True).click()
    for mode in ("Vector", "BM25 keywords", "Hybrid"):
        expect(page.get_by_role("heading", name=mode)).to_be_visible()
    expect(page.locator("p:visible", has_text="twenty-five days of paid annual leave").first).to_be_visible()
    _shot(page, "kb_retrieval_test")


def _ask_kb_question(page, fake, proxy: str) -> str:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Chat").click()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Mode", exact=True)).to_be_visible()
    sidebar.get_by_role("radiogroup").get_by_text("Knowledge base", exact=True).click()
    expect(sidebar.get_by_text("Retrieval mode")).to_be_visible()
    _wait_until_idle(page)

    # The built-in model, behind its queueing proxy, is busy with another user's long answer.
    _pick_option(page, sidebar.get_by_role("combobox", name="Model"), "local")
    _wait_until_idle(page)
    fake.default_reply = ANSWER
    fake.queue_hang(8.0)
    other = threading.Thread(target=lambda: httpx.post(f"{proxy}/v1/chat/completions", timeout=60, json={
        "model": "m", "messages": [{"role": "user", "content": "a long question"}], "stream": False}))
    other.start()
    _poll(lambda: httpx.get(f"{proxy}/queue").json()["active"], lambda n: n == 1)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(QUESTION)
    box.press("Enter")
    # The Stop button exists only while the answer streams in.
    expect(page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop")).to_be_visible()
    # Evidence first: the passage, its answering sentence highlighted, is there before any answer text,
    # and a status line says the model is busy with one question ahead.
    live = page.get_by_test_id("stChatMessage").last
    expect(live.get_by_text("The model is busy: 1 ahead of you")).to_be_visible()
    expect(live.get_by_text("twenty-five days of paid annual leave").first).to_be_visible()
    expect(live.get_by_text(ANSWER)).to_have_count(0)
    _shot(page, "chat_kb_evidence_first", wait=False)
    expect(page.get_by_text(ANSWER).first).to_be_visible()
    other.join(timeout=60)
    _wait_until_idle(page)
    # Once the page settles the answer is drawn once, from the stored conversation, without Stop.
    expect(page.get_by_text(ANSWER)).to_have_count(1)
    expect(page.get_by_text(FIGURE_NOTE)).to_have_count(1)
    expect(page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop")).to_have_count(0)
    conv_id = parse_qs(urlparse(page.url).query).get("conv", [""])[0]
    assert conv_id, f"the conversation id is not in the URL: {page.url}"

    answer = page.get_by_test_id("stChatMessage").filter(has_text=ANSWER)
    answer.get_by_text("Sources (").click()
    expect(answer.get_by_text(DOC_NAME).first).to_be_visible()
    _shot(page, "chat_kb_answer")
    # A source's file comes through the WebUI's API client, whatever key the API needs.
    with page.expect_download() as download_info:
        answer.get_by_role("button", name="Download").first.click()
    assert Path(download_info.value.path()).read_text(encoding="utf-8") == DOC_TEXT
    return conv_id


def _give_thumbs_down(page, api: str, conv_id: str) -> None:
    from playwright.sync_api import expect

    answer = page.get_by_test_id("stChatMessage").filter(has_text=ANSWER)
    answer.get_by_role("radio", name="Thumbs down").click()
    _wait_until_idle(page)
    answer = page.get_by_test_id("stChatMessage").filter(has_text=ANSWER)
    answer.get_by_role("button", name="Reason").click()
    reason_box = page.get_by_label("Reason (optional)")
    reason_box.fill(REASON)
    reason_box.press("Enter")  # Streamlit commits a text input on Enter
    _wait_until_idle(page)
    page.get_by_role("button", name="Send feedback").click()
    _wait_until_idle(page)

    def stored() -> dict | None:
        messages = httpx.get(f"{api}/conversations/{conv_id}").json()["messages"]
        return next((m.get("feedback") for m in messages if m["role"] == "assistant"), None)

    feedback = _poll(stored, lambda fb: bool(fb) and fb.get("reason") == REASON)
    assert feedback and feedback["score"] in (-1, "down"), feedback
    assert feedback["reason"] == REASON
    page.keyboard.press("Escape")  # close the reason popover
    expect(page.get_by_text("You found this answer unhelpful")).to_be_visible()
    _shot(page, "chat_feedback_given")


def _export_markdown(page, tmp_path: Path) -> None:
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export Markdown").click()
    target = tmp_path / "export.md"
    download_info.value.save_as(str(target))
    text = target.read_text(encoding="utf-8")
    assert QUESTION in text
    assert "twenty-five days of paid annual leave" in text


def _switch_away_and_back(page, conv_id: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebar").get_by_role("button", name="New conversation").click()
    expect(page.get_by_text("Knowledge-base mode: answers are grounded")).to_be_visible()
    expect(page.get_by_text(ANSWER)).to_have_count(0)
    _wait_until_idle(page)
    page.locator(f".st-key-conv_{conv_id} button").click()
    expect(page.get_by_text(ANSWER).first).to_be_visible()
    expect(page.get_by_text(QUESTION).first).to_be_visible()
    _wait_until_idle(page)

    # A reload returns to the same conversation, its feedback still shown.
    page.reload()
    expect(page.get_by_text(ANSWER).first).to_be_visible()
    expect(page.get_by_text("You found this answer unhelpful")).to_be_visible()
    thumbs_down = page.get_by_test_id("stChatMessage").filter(has_text=ANSWER).get_by_role("radio", name="Thumbs down")
    expect(thumbs_down).to_have_attribute("aria-checked", "true")
    _shot(page, "chat_after_reload")


def _chinese_ui(page) -> None:
    from playwright.sync_api import expect

    sidebar = page.get_by_test_id("stSidebar")
    _wait_until_idle(page)
    _pick_option(page, sidebar.get_by_role("combobox", name=re.compile("Language")), "中文")
    expect(page.get_by_role("button", name="导出 Markdown")).to_be_visible()
    expect(sidebar.get_by_text("知识库问答")).to_be_visible()
    _wait_until_idle(page)
    _shot(page, "chat_zh")

    # Streamlit draws its uploader's button and limit in English; the Chinese page shows them in Chinese.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="知识库").click()
    zone = page.get_by_test_id("stFileUploader").filter(has_text="选择文件（可多选）").get_by_test_id(
        "stFileUploaderDropzone")
    expect(zone).to_be_visible()
    expect(zone.get_by_text("Upload", exact=True)).to_be_hidden()
    expect(zone.get_by_text("per file")).to_be_hidden()
    shown = [text for text in zone.evaluate(AFTER_TEXTS) if text != "none"]
    assert '"上传"' in shown
    assert any(text.startswith('"拖放文件到这里，每个文件不超过 ') for text in shown), shown
    # While a file is dragged over the zone it says what letting go does, in Chinese too.
    dragged = page.evaluate_handle(
        "() => { const d = new DataTransfer(); d.items.add(new File(['x'], 'a.txt', {type: 'text/plain'})); return d; }")
    zone.dispatch_event("dragenter", {"dataTransfer": dragged})
    page.wait_for_function(f"z => ({AFTER_TEXTS})(z).includes('\"松开鼠标即可添加文件\"')", arg=zone.element_handle())
    expect(zone.get_by_text("Drag and drop files here")).to_be_hidden()
    _shot(page, "kb_page_zh", wait=False)
    zone.dispatch_event("dragleave", {"dataTransfer": dragged})
    # Once a file is chosen the zone lists it, and says nothing about letting go.
    zone.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": "notes.md", "mimeType": "text/markdown", "buffer": b"# Notes\n"}])
    expect(zone.get_by_test_id("stFileChip")).to_be_visible()
    assert "松开鼠标即可添加文件" not in "".join(zone.evaluate(AFTER_TEXTS))


def test_kb_question_feedback_export_and_conversation_switch(
    page, api_server, webui_server, fake_model, model_proxy, tmp_path
):
    """Create a KB, upload, ask the busy built-in model: see the evidence and the queue first, then the
    streamed answer and sources; thumbs-down with a reason,
    export Markdown, switch conversations and back, reload, then switch the UI to Chinese."""
    fake_model.chunk_size = 3  # many small deltas
    doc = tmp_path / DOC_NAME
    doc.write_text(DOC_TEXT, encoding="utf-8")
    try:
        _create_kb_and_upload(page, webui_server, api_server.url, doc)
        _retrieval_test(page)
        conv_id = _ask_kb_question(page, fake_model, model_proxy)
        _give_thumbs_down(page, api_server.url, conv_id)
        _export_markdown(page, tmp_path)
        _switch_away_and_back(page, conv_id)
        _chinese_ui(page)
    except Exception:
        _shot(page, "failure", wait=False)
        raise
    finally:
        del fake_model.chunk_size  # back to the class default


def test_stop_button_ends_the_answer_and_keeps_the_question(page, api_server, webui_server, fake_model):
    """Stop while the model is still silent: the stream is closed, the question stays, nothing is lost."""
    from playwright.sync_api import expect

    question = "Will this answer take long?"
    fake_model.default_reply = "This answer arrives far too late."
    fake_model.queue_hang(20.0)
    page.goto(f"{webui_server}/?lang=en")
    expect(page.get_by_text("Hello! Ask a question")).to_be_visible()
    _shot(page, "chat_first_visit")
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    stop = page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    # The status line says what the answer waits for, and keeps counting the seconds.
    expect(page.get_by_text(re.compile(r"The model is reading \(\d+ tokens\), \d+ s"))).to_be_visible()
    _shot(page, "chat_waiting_for_answer", wait=False)
    stop.click()
    expect(page.get_by_text("Stopped before the answer began.")).to_be_visible()
    expect(page.get_by_text(question).first).to_be_visible()
    _shot(page, "chat_stopped")
    conv_id = parse_qs(urlparse(page.url).query).get("conv", [""])[0]
    assert conv_id

    def messages() -> list[dict]:
        return httpx.get(f"{api_server.url}/conversations/{conv_id}").json()["messages"]

    # The API noticed the closed stream and kept the question with an answer marked incomplete.
    stored = _poll(messages, lambda ms: len(ms) == 2)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[0]["content"] == question
    assert stored[1]["meta"].get("incomplete") is True
    assert "far too late" not in stored[1]["content"]
    expect(page.get_by_text("This answer arrives far too late.")).to_have_count(0)
