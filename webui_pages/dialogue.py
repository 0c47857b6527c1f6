"""The dialogue page: a conversation with the chosen mode, streamed answers, sources and feedback.

Messages are drawn with Streamlit's own chat elements rather than streamlit-chatbox: ChatBox keeps
its own copy of the history in the session, while here the API is the only record (a reload or
another tab shows the same conversation), and every answer carries widgets of its own (feedback,
source downloads). ChatBox's default rich-markdown renderer also fails on Streamlit 1.67
("'ScriptRunContext' object has no attribute 'active_script_hash'").
"""

from __future__ import annotations

from typing import Any

import streamlit as st

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
from webui_pages.messages import render_message, render_sources, render_tools

CURSOR = " ▌"


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


def _render_live_leftover(ctx: UIContext, conversation: dict[str, Any] | None) -> None:
    """Show what the server did not store of the last answer: a stopped partial text or an error."""
    live = st.session_state.get(LIVE_KEY)
    if not live:
        return
    conv_id = conversation.get("id") if conversation else None
    if live.get("conversation_id") not in (conv_id, None):
        return
    if live.get("done") and not live.get("error"):
        return
    messages = (conversation or {}).get("messages") or []
    prompt_stored = any(m.get("role") == "user" and m.get("content") == live["prompt"] for m in messages[-2:])
    if prompt_stored and messages[-1].get("role") == "assistant":
        return  # the server kept the (partial) answer and its error; it is drawn with the history
    if not prompt_stored:
        with st.chat_message("user"):
            st.markdown(live["prompt"])
    with st.chat_message("assistant"):
        if live.get("text"):
            st.markdown(live["text"])
            render_tools(ctx, live.get("tools") or [])
            render_sources(ctx, live.get("sources") or [], key_prefix="live")
        if live.get("error"):
            show_error(ctx, live["error"])
        elif not live.get("done"):
            stopped = "chat.stopped" if live.get("text") else "chat.stopped_empty"
            st.info(ctx.t(stopped), icon=":material/stop_circle:")


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


def _stream_answer(ctx: UIContext, options: dict[str, Any], prompt: str, conv_id: str | None) -> None:
    """Send the question and draw the answer as it streams; Stop closes the stream mid-answer."""
    t = ctx.t
    live: dict[str, Any] = {
        "prompt": prompt, "conversation_id": conv_id, "text": "", "sources": [], "tools": [],
        "error": None, "done": False, "stopped": False,
    }
    # Kept in the session so that what was already streamed survives the rerun a Stop click causes.
    st.session_state[LIVE_KEY] = live
    with st.chat_message("user"):
        st.markdown(prompt)
    with st.chat_message("assistant"):
        status = st.empty()
        status.caption(t("chat.thinking"))
        body = st.empty()
        tools_box = st.empty()
        sources_box = st.empty()
        stop_box = st.empty()
        stop_box.button(t("chat.stop"), icon=":material/stop_circle:", key="chat_stop", help=t("chat.stop_help"),
                        on_click=_stop_answer)
        stream = None
        try:
            if not conv_id:
                live["conversation_id"] = conv_id = _start_conversation(ctx, options["mode"])
                st.session_state[LIVE_KEY] = live
            request = {k: v for k, v in options.items() if k != "mode"}
            request.update(query=prompt, conversation_id=conv_id)
            stream = ctx.api.chat_stream(options["mode"], request)
            st.session_state[STREAM_KEY] = stream
            with stream as events:
                for event in events:
                    _apply_event(live, event)
                    if event.get("type") == "delta":
                        status.empty()
                        body.markdown(live["text"] + CURSOR)
                    elif event.get("type") == "tool":
                        with tools_box.container():
                            render_tools(ctx, live["tools"], expanded=True)
                    elif event.get("type") == "sources":
                        with sources_box.container():
                            render_sources(ctx, live["sources"], key_prefix="streaming")
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
        status.empty()
        body.markdown(live["text"])
        if live["error"]:
            show_error(ctx, live["error"])
    if not live["error"] and not live["stopped"]:
        # Redraw from the server so the new answer gets its id-bound widgets (feedback, downloads).
        st.rerun()


def _apply_event(live: dict[str, Any], event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "delta":
        live["text"] += str(event.get("text") or "")
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

    messages = (conversation or {}).get("messages") or []
    if not messages and not st.session_state.get(LIVE_KEY):
        st.info(t(f"chat.welcome.{options['mode']}"), icon=":material/waving_hand:")
    for message in messages:
        render_message(ctx, message)

    prompt = st.chat_input(t(f"chat.placeholder.{options['mode']}"), key="chat_prompt", max_chars=20000)
    if prompt and prompt.strip():
        if options["mode"] == "kb" and not options.get("kb_name"):
            st.session_state.pop(LIVE_KEY, None)
            st.warning(t("opt.no_kb"), icon=":material/folder_open:")
            return
        _stream_answer(ctx, options, prompt.strip(), conversation.get("id") if conversation else None)
    else:
        _render_live_leftover(ctx, conversation)

