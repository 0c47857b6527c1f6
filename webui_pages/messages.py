"""What an answer carries besides its text: sources, agent steps, notices, details and thumbs feedback.

Each part is drawn by a ChatBox output method (registered below), so the parts live in ChatBox's
history next to the message text and ``ChatBox.output_messages`` draws whole messages. An output
method is called as ``method(content, **kwargs)``; the page context travels in ``kwargs``.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote, urlparse

import streamlit as st
from streamlit_chatbox import ChatBox

from webui_pages.api_client import ApiError
from webui_pages.common import UIContext, escape_markdown, flash, show_error

SOURCE_PREVIEW_CHARS = 700
# How the API names the knowledge base of a conversation's dropped files (server/knowledge_base/names.py).
CONVERSATION_KB_PREFIX = "_chat_"
# The code the API stores on an answer the user stopped: not an error, so not shown as one.
STOPPED_CODE = "cancelled"
# st.feedback("thumbs") reports 0 for thumbs-down and 1 for thumbs-up.
THUMB_TO_SCORE = {0: "down", 1: "up"}
SCORE_TO_THUMB = {"down": 0, "up": 1, -1: 0, 1: 1}

SOURCES_METHOD = "kbchat_sources"
TOOLS_METHOD = "kbchat_tools"
NOTICE_METHOD = "kbchat_notice"
DETAILS_METHOD = "kbchat_details"
FEEDBACK_METHOD = "kbchat_feedback"
ASK_ANYWAY_METHOD = "kbchat_ask_anyway"
# Session key of a question to ask again with the decline turned off (set by the button under a declined answer).
ASK_ANYWAY_KEY = "ask_anyway"


def feedback_of(message: dict[str, Any]) -> dict[str, Any] | None:
    """The message's stored feedback as ``{"score": "up"|"down", "reason": str}``, if any."""
    feedback = message.get("feedback") or (message.get("meta") or {}).get("feedback")
    if not isinstance(feedback, dict) or feedback.get("score") is None:
        return None
    thumb = SCORE_TO_THUMB.get(feedback["score"])
    if thumb is None:
        return None
    return {"score": THUMB_TO_SCORE[thumb], "reason": feedback.get("reason") or ""}


def _source_file_name(source: dict[str, Any]) -> str:
    name = source.get("file") or ""
    if not name and source.get("url"):
        name = unquote(posixpath.basename(urlparse(source["url"]).path))
    return name or "source"


def snippet_markdown(source: dict[str, Any]) -> str:
    """The source's text as Markdown, its highlighted sentences (the ones the model read) marked.

    A long passage is shown from the line of its first highlight, so the evidence is in view.
    """
    text = str(source.get("text") or "")
    spans = sorted((int(a), int(b)) for a, b in source.get("highlights") or [] if 0 <= int(a) < int(b) <= len(text))
    start = text.rfind("\n", 0, spans[0][0]) + 1 if spans and spans[0][0] > SOURCE_PREVIEW_CHARS // 2 else 0
    end = min(len(text), start + SOURCE_PREVIEW_CHARS)
    segments: list[tuple[str, bool]] = []
    at = start
    for a, b in spans:
        a, b = max(a, at), min(b, end)
        if a < b:
            segments += [(text[at:a], False), (text[a:b], True)]
            at = b
    segments.append((text[at:end], False))
    lines = [""]
    for piece, marked in segments:
        for k, part in enumerate(piece.split("\n")):
            if k:
                lines.append("")
            if part.strip():
                style = "orange-background" if marked else "gray"
                lines[-1] += f":{style}[{escape_markdown(part)}]"
    body = "  \n".join(line for line in lines if line)
    return ("… " if start else "") + body + (" …" if end < len(text) else "")


def draw_sources(sources: list[dict[str, Any]], *, ctx: UIContext, key_prefix: str) -> None:
    """The numbered passages an answer used, each with a link or a download button."""
    t = ctx.t
    # An output method draws into one st.empty slot: a container lets it hold several elements.
    with st.container():
        for pos, source in enumerate(sources):
            index = source.get("index", pos + 1)
            name = _source_file_name(source)
            head = [f"**[{index}] {escape_markdown(name)}**"]
            if source.get("location"):
                head.append(escape_markdown(str(source["location"])))
            if source.get("score") is not None:
                head.append(f"{t('msg.score')} {float(source['score']):.2f}")
            if str(source.get("kb") or "").startswith(CONVERSATION_KB_PREFIX):
                head.append(t("msg.conversation_file"))
            elif source.get("kb"):
                head.append(f"{t('msg.kb')} {escape_markdown(str(source['kb']))}")
            text_col, link_col = st.columns([6, 1], vertical_alignment="top")
            text_col.markdown(" · ".join(head))
            text_col.markdown(snippet_markdown(source))
            url = source.get("url")
            if url and url.startswith(("http://", "https://")):
                link_col.link_button(t("msg.open"), url, icon=":material/open_in_new:")
            elif url:
                # The API may need a key the browser does not have: fetch through the client on click.
                link_col.download_button(
                    t("msg.download"),
                    data=lambda url=url: ctx.api.fetch_bytes(url),
                    file_name=name.rsplit("/", 1)[-1],
                    key=f"src_{key_prefix}_{pos}",
                    icon=":material/download:",
                    on_click="ignore",
                )


def draw_tools(tools: list[dict[str, Any]], *, ctx: UIContext) -> None:
    """The agent's tool calls in order, with their input and output."""
    with st.container():
        for step, tool in enumerate(tools, 1):
            mark = ":material/cancel:" if tool.get("error") else ":material/check_circle:"
            st.markdown(f"{mark} **{step}. `{tool.get('tool', '?')}`**")
            st.caption(ctx.t("msg.tool_input"))
            st.code(str(tool.get("input") or ""), language=None, wrap_lines=True)
            st.caption(ctx.t("msg.tool_output"))
            st.code(str(tool.get("output") or ""), language=None, wrap_lines=True)


def draw_notice(error: dict[str, Any], *, ctx: UIContext, has_text: bool) -> None:
    """Why an answer ended early: stopped by the user (a note) or an error (a red box)."""
    with st.container():
        if error.get("code") == STOPPED_CODE:
            st.info(ctx.t("chat.stopped" if has_text else "chat.stopped_empty"), icon=":material/stop_circle:")
        else:
            show_error(ctx, error)


def draw_details(message: dict[str, Any], *, ctx: UIContext) -> None:
    """Model, mode, time taken and whether the answer is complete, in one grey line."""
    meta = message.get("meta") or {}
    bits = []
    if meta.get("model"):
        bits.append(f":material/smart_toy: {escape_markdown(str(meta['model']))}")
    mode = message.get("mode") or meta.get("mode")
    if mode:
        bits.append(ctx.t(f"mode.{mode}", default=str(mode)))
    if meta.get("latency_ms") is not None:
        bits.append(f":material/timer: {float(meta['latency_ms']) / 1000:.1f} s")
    if meta.get("incomplete"):
        bits.append(f":material/stop_circle: {ctx.t('msg.incomplete')}")
    with st.container():
        if bits:
            st.caption(" · ".join(bits))


def _ask_anyway(question: str) -> None:
    st.session_state[ASK_ANYWAY_KEY] = question


def draw_ask_anyway(message: dict[str, Any], *, ctx: UIContext, question: str) -> None:
    """Under a declined answer (the passages found seemed not to answer it): a button asking the same question
    again with the decline turned off, so the model answers from those passages."""
    with st.container():
        st.button(ctx.t("msg.ask_anyway"), icon=":material/psychology:", key=f"ask_anyway_{message.get('id')}",
                  help=ctx.t("msg.ask_anyway_help"), on_click=_ask_anyway, args=(question,))


def _send_feedback(ctx: UIContext, message_id: str) -> None:
    thumb = st.session_state.get(f"fb_{message_id}")
    if thumb is None:
        return  # un-selecting a thumb: the earlier rating stays on the server
    reason = (st.session_state.get(f"fbr_{message_id}") or "").strip()
    try:
        ctx.api.send_feedback(message_id, THUMB_TO_SCORE[thumb], reason)
        flash("ok", ctx.t("fb.saved"))
    except ApiError as err:
        flash("error", f"{ctx.t('fb.failed')}: {err.message}")


def draw_feedback(message: dict[str, Any], *, ctx: UIContext) -> None:
    """Thumbs up/down with an optional reason; the stored rating is shown and can be changed.

    Streamlit's own ``st.feedback`` rather than ``ChatBox.show_feedback``: the latter is an iframe
    component that locks after one rating and cannot show a rating stored earlier.
    """
    t = ctx.t
    message_id = message["id"]
    stored = feedback_of(message)
    with st.container():
        cols = st.columns([1, 1.4, 7.6], vertical_alignment="center")
        with cols[0]:
            st.feedback(
                "thumbs",
                key=f"fb_{message_id}",
                default=SCORE_TO_THUMB.get(stored["score"]) if stored else None,
                on_change=_send_feedback,
                args=(ctx, message_id),
            )
        if st.session_state.get(f"fb_{message_id}") is None and not stored:
            return
        with cols[1].popover(t("fb.reason_button"), icon=":material/chat:"):
            st.text_input(
                t("fb.reason"), value=stored["reason"] if stored else "", key=f"fbr_{message_id}",
                placeholder=t("fb.reason_placeholder"), max_chars=1000,
            )
            st.button(t("fb.send"), key=f"fbs_{message_id}", on_click=_send_feedback, args=(ctx, message_id))
        if stored:
            label = t("fb.given_up") if stored["score"] == "up" else t("fb.given_down")
            reason = f" · “{escape_markdown(stored['reason'])}”" if stored["reason"] else ""
            cols[2].caption(f"{label}{reason}")


for _name, _method in (
    (SOURCES_METHOD, draw_sources),
    (TOOLS_METHOD, draw_tools),
    (NOTICE_METHOD, draw_notice),
    (DETAILS_METHOD, draw_details),
    (FEEDBACK_METHOD, draw_feedback),
    (ASK_ANYWAY_METHOD, draw_ask_anyway),
):
    ChatBox.register_output_method(_name, _method)
