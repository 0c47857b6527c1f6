"""The dialogue page: a conversation with the chosen mode, streamed answers, sources and feedback.

The transcript is a streamlit-chatbox ``ChatBox`` refilled from the API on every run (see
``webui_pages.transcript``); a new answer streams into it with ``user_say`` / ``ai_say`` / ``update_msg``.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st
from streamlit_chatbox import ChatBox

from webui_pages.api_client import ApiError
from webui_pages.common import UIContext, show_error, show_flashes
from webui_pages.dialogue_sidebar import (
    LIVE_KEY,
    STREAM_KEY,
    current_conversation_id,
    open_conversation,
    render_chat_options,
    render_conversations,
)
from webui_pages.messages import ASK_ANYWAY_KEY
from webui_pages.transcript import LiveAnswer, add_leftover, load_conversation, open_chat_box


def _load_conversation(ctx: UIContext, conv_id: str | None) -> dict[str, Any] | None:
    if not conv_id:
        return None
    try:
        return ctx.api.get_conversation(conv_id)
    except ApiError as err:
        if err.status == 404:
            st.warning(ctx.t("conv.missing"), icon=":material/search_off:")
            open_conversation(None)
            return None
        raise


def _export_button(ctx: UIContext, conversation: dict[str, Any] | None) -> None:
    if not conversation or not conversation.get("messages"):
        st.button(ctx.t("chat.export"), icon=":material/download:", disabled=True, key="export_md_disabled",
                  width="stretch")
        return
    conv_id = conversation["id"]
    title = (conversation.get("title") or "conversation").strip()
    safe = "".join(c if c.isalnum() or c in "-_ " else "_" for c in title)[:60].strip() or "conversation"
    st.download_button(
        ctx.t("chat.export"),
        data=lambda: ctx.api.export_conversation(conv_id, "md"),
        file_name=f"{safe}.md",
        mime="text/markdown",
        icon=":material/download:",
        key="export_md",
        on_click="ignore",
        width="stretch",
    )


def _stop_answer() -> None:
    """Stop button: close the answer's stream (the server then keeps the part written so far)."""
    live = st.session_state.get(LIVE_KEY)
    if live:
        live["stopped"] = True
    stream = st.session_state.pop(STREAM_KEY, None)
    if stream is not None:
        # The run that streams is still blocked reading; closing from here wakes it at once.
        stream.close()


def _start_conversation(ctx: UIContext, mode: str) -> str:
    """Create the conversation before asking, so its id is known (and in the URL) from the start."""
    conv_id = ctx.api.create_conversation(mode=mode)["id"]
    open_conversation(conv_id)
    return conv_id


def _stream_answer(ctx: UIContext, box: ChatBox, options: dict[str, Any], prompt: str, conv_id: str | None) -> None:
    """Send the question and stream the answer into the ChatBox; Stop closes the stream mid-answer."""
    t = ctx.t
    live: dict[str, Any] = {
        "prompt": prompt, "conversation_id": conv_id, "text": "", "sources": [], "tools": [],
        "error": None, "done": False, "stopped": False, "started": time.monotonic(),
    }
    # Kept in the session so that what was already streamed survives the rerun a Stop click causes.
    st.session_state[LIVE_KEY] = live
    evidence_first = options["mode"] in ("kb", "search")
    waiting = t("chat.searching") if evidence_first else t("chat.thinking")
    answer = LiveAnswer(box, ctx, prompt, placeholder=f":gray[{waiting}]", evidence_first=evidence_first)
    stop_box = st.empty()
    stop_box.button(t("chat.stop"), icon=":material/stop_circle:", key="chat_stop", help=t("chat.stop_help"),
                    on_click=_stop_answer)
    stream = None
    try:
        if not conv_id:
            live["conversation_id"] = conv_id = _start_conversation(ctx, options["mode"])
            box.change_chat_name(conv_id)
            st.session_state[LIVE_KEY] = live
        request = {k: v for k, v in options.items() if k not in ("mode", "conv_files")}
        request.update(query=prompt, conversation_id=conv_id)
        stream = ctx.api.chat_stream(options["mode"], request)
        st.session_state[STREAM_KEY] = stream
        with stream as events:
            shown_status = ""
            for event in events:
                _apply_event(live, event)
                if event.get("type") == "delta":
                    answer.text(live["text"], streaming=True)
                elif event.get("type") == "tool":
                    answer.tools(live["tools"])
                elif event.get("type") == "sources":
                    answer.sources(live["sources"])
                line = status_line(t, live)
                if line != shown_status:
                    if not live["text"] and not shown_status:
                        answer.text("", streaming=True)  # the status line says what happens now
                    answer.status(line)
                    shown_status = line
    except ApiError as err:
        # An error event already said why the stream ended; keep that explanation.
        if not live["done"] and not live["stopped"]:
            live["error"] = live["error"] or {"code": err.code, "message": err.message}
    finally:
        if stream is not None and st.session_state.get(STREAM_KEY) is stream:
            del st.session_state[STREAM_KEY]
    if not (live["done"] or live["error"] or live["stopped"]):
        live["error"] = {"code": "stream_interrupted", "message": t("chat.cut_off")}
    stop_box.empty()
    answer.status("")
    answer.finish(live)
    if not live["error"] and not live["stopped"]:
        # Redraw from the server so the new answer gets its id-bound widgets (feedback, downloads).
        st.rerun()


def status_line(t: Any, live: dict[str, Any], now: float | None = None) -> str:
    """What the answer is doing, for the line under it: waiting in line, reading, or writing at a speed.

    The speed is shown in whole steps of 0.5 tokens/s so the line does not redraw on every token.
    """
    now = time.monotonic() if now is None else now
    elapsed = now - live.get("started", now)
    if live.get("done") or live.get("error"):
        return ""
    if live.get("pieces"):
        writing = now - live["first_at"]
        if live["pieces"] < 4 or writing < 1.0:
            return t("chat.status.first", s=f"{live['first_at'] - live.get('started', live['first_at']):.1f}")
        rate = round(2 * (live["pieces"] - 1) / writing) / 2
        return t("chat.status.writing", rate=f"{rate:g}")
    status = live.get("status")
    if not status:
        return ""
    if status.get("stage") in ("rewriting", "ranking", "weighing"):
        return t(f"chat.status.{status['stage']}", s=int(elapsed))
    if status.get("stage") == "waiting" and status.get("ahead"):
        return t("chat.status.waiting", n=status["ahead"], s=int(elapsed))
    tokens = status.get("prompt_tokens")
    if tokens:
        return t("chat.status.reading", tokens=tokens, s=int(elapsed))
    return t("chat.status.reading_plain", s=int(elapsed))


def _apply_event(live: dict[str, Any], event: dict[str, Any]) -> None:
    kind = event.get("type")
    live.setdefault("started", time.monotonic())
    if kind == "delta":
        live["text"] += str(event.get("text") or "")
        live.setdefault("first_at", time.monotonic())
        live["pieces"] = live.get("pieces", 0) + 1
    elif kind == "status":
        live["status"] = event
    elif kind == "sources":
        live["sources"] = list(event.get("sources") or [])
    elif kind == "tool":
        live["tools"].append(event)
    elif kind == "error":
        live["error"] = {"code": event.get("code") or "error", "message": event.get("message") or ""}
    elif kind == "done":
        live["done"] = True
        live["message_id"] = event.get("message_id")


def render(ctx: UIContext) -> None:
    """Draw the dialogue page."""
    t = ctx.t
    try:
        public = ctx.api.public_settings()
    except ApiError as err:
        st.title(t("chat.title"))
        show_error(ctx, err)
        st.button(t("common.retry"), icon=":material/refresh:", key="retry_public")
        return
    conv_id = current_conversation_id()
    try:
        conversation = _load_conversation(ctx, conv_id)
    except ApiError as err:
        show_error(ctx, err)
        conversation = None
    with st.sidebar:
        st.subheader(t("conv.title"))
        render_conversations(ctx, conversation)
        st.divider()
        st.subheader(t("opt.title"))
        options = render_chat_options(ctx, public, conversation)

    head, export_col, clear_col = st.columns([6, 2, 2], vertical_alignment="bottom")
    head.title(t("chat.title"))
    head.caption((conversation or {}).get("title") or t("chat.new_conversation"))
    with export_col:
        _export_button(ctx, conversation)
    clear_col.button(
        t("chat.clear"), icon=":material/add_comment:", key="chat_clear", help=t("chat.clear_help"),
        on_click=open_conversation, args=(None,), width="stretch",
    )
    show_flashes()

    box = open_chat_box(conversation.get("id") if conversation else None)
    load_conversation(box, ctx, conversation)
    longest = int(public.get("max_query_chars") or 10000)
    prompt = (st.chat_input(t(f"chat.placeholder.{options['mode']}"), key="chat_prompt", max_chars=longest) or "").strip()
    again = st.session_state.pop(ASK_ANYWAY_KEY, None)
    if not prompt and again and options["mode"] == "kb":
        # The button under a declined answer: the same question, answered by the model from what it finds.
        prompt, options = again, {**options, "refuse_unsupported": False}
    if not prompt:
        add_leftover(box, ctx, st.session_state.get(LIVE_KEY), conversation)
    if not box.history and not st.session_state.get(LIVE_KEY):
        st.info(t(f"chat.welcome.{options['mode']}"), icon=":material/waving_hand:")
    box.output_messages()
    if not prompt:
        return
    if options["mode"] == "kb" and not options.get("kb_name") and not options.get("conv_files"):
        st.session_state.pop(LIVE_KEY, None)
        st.warning(t("opt.no_kb"), icon=":material/folder_open:")
        return
    _stream_answer(ctx, box, options, prompt, conversation.get("id") if conversation else None)
