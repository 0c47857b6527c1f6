"""The dialogue's transcript in streamlit-chatbox: built from the API's copy of the conversation.

ChatBox keeps a history per chat name in the session. Here the API is the only record (a reload or
another tab shows the same conversation), so every run empties ChatBox's history and refills it with
the open conversation's stored messages; ChatBox then draws them and streams the next answer.
Rich markdown stays off: its streamlit-markdown renderer fails on Streamlit 1.67
("'ScriptRunContext' object has no attribute 'active_script_hash'").
"""

from __future__ import annotations

from typing import Any, Literal

from streamlit_chatbox import ChatBox, Markdown, OutputElement

from webui_pages.common import UIContext
from webui_pages.messages import (
    ASK_ANYWAY_METHOD,
    DETAILS_METHOD,
    FEEDBACK_METHOD,
    NOTICE_METHOD,
    SOURCES_METHOD,
    STOPPED_CODE,
    TOOLS_METHOD,
)

CHAT_BOX_KEY = "chat_box"
NEW_CHAT = "_new"  # ChatBox's name for a conversation the API has not created yet
State = Literal["running", "complete", "error"]


def open_chat_box(conv_id: str | None) -> ChatBox:
    """The ChatBox of the open conversation, its history emptied and the other chats dropped."""
    name = conv_id or NEW_CHAT
    box = ChatBox(chat_name=name, session_key=CHAT_BOX_KEY, use_rich_markdown=False)
    box.use_chat_name(name)
    for other in box.get_chat_names():
        if other != name:
            box.del_chat_name(other)
    box.use_chat_name(name)  # del_chat_name moves the current name to whichever chat is left
    box.reset_history(name)
    return box


def text_element(text: str) -> Markdown:
    """Message text as Streamlit markdown; raw HTML from the model or the user is not rendered."""
    return Markdown(text, unsafe_allow_html=False)


def sources_element(
    ctx: UIContext, sources: list[dict[str, Any]], key_prefix: str, state: State = "complete", expanded: bool = False
) -> OutputElement:
    return OutputElement(
        sources, output_method=SOURCES_METHOD, title=ctx.t("msg.sources", n=len(sources)), in_expander=True,
        expanded=expanded, state=state, ctx=ctx, key_prefix=key_prefix,
    )


def tools_element(
    ctx: UIContext, tools: list[dict[str, Any]], state: State = "complete", expanded: bool = False
) -> OutputElement:
    return OutputElement(
        tools, output_method=TOOLS_METHOD, title=ctx.t("msg.tools", n=len(tools)), in_expander=True,
        expanded=expanded, state=state, ctx=ctx,
    )


def notice_element(ctx: UIContext, error: dict[str, Any], has_text: bool) -> OutputElement:
    return OutputElement(error, output_method=NOTICE_METHOD, ctx=ctx, has_text=has_text)


def _user(elements: list[OutputElement]) -> dict[str, Any]:
    return {"role": "user", "elements": elements, "metadata": {}}


def _assistant(elements: list[OutputElement], message_id: str | None = None) -> dict[str, Any]:
    return {"role": "assistant", "elements": elements, "metadata": {"message_id": message_id}}


def stored_entry(ctx: UIContext, message: dict[str, Any], question: str | None = None) -> dict[str, Any]:
    """One stored message of the conversation as a ChatBox history entry; a declined answer to ``question`` (the
    conversation's last) offers to ask it again with the decline off."""
    content = str(message.get("content") or "")
    if message.get("role") == "user":
        return _user([text_element(content)])
    meta = message.get("meta") or {}
    elements: list[OutputElement] = [text_element(content)] if content else []
    if isinstance(meta.get("error"), dict):
        elements.append(notice_element(ctx, meta["error"], has_text=bool(content)))
    if meta.get("tools"):
        elements.append(tools_element(ctx, meta["tools"]))
    if meta.get("sources"):
        elements.append(sources_element(ctx, meta["sources"], key_prefix=str(message.get("id"))))
    if question and meta.get("unsupported"):
        elements.append(OutputElement(message, output_method=ASK_ANYWAY_METHOD, ctx=ctx, question=question))
    elements.append(OutputElement(message, output_method=DETAILS_METHOD, ctx=ctx))
    if message.get("id"):
        elements.append(OutputElement(message, output_method=FEEDBACK_METHOD, ctx=ctx))
    return _assistant(elements, message.get("id"))


def load_conversation(box: ChatBox, ctx: UIContext, conversation: dict[str, Any] | None) -> None:
    """Fill ChatBox's history with the stored messages, oldest first."""
    messages = (conversation or {}).get("messages") or []
    box.history.extend(stored_entry(ctx, m) for m in messages[:-1])
    if messages:
        # The last answer's question: a declined answer offers to ask it again.
        asked = messages[-2] if len(messages) > 1 and messages[-2].get("role") == "user" else {}
        box.history.append(stored_entry(ctx, messages[-1], str(asked.get("content") or "") or None))


def add_leftover(
    box: ChatBox, ctx: UIContext, live: dict[str, Any] | None, conversation: dict[str, Any] | None
) -> None:
    """Add what the server did not store of the last answer: a stopped partial text or an error."""
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
        box.history.append(_user([text_element(live["prompt"])]))
    text = live.get("text") or ""
    elements: list[OutputElement] = [text_element(text)] if text else []
    if live.get("error"):
        elements.append(notice_element(ctx, live["error"], has_text=bool(text)))
    elif not live.get("done"):
        elements.append(notice_element(ctx, {"code": STOPPED_CODE}, has_text=bool(text)))
    if text and live.get("tools"):
        elements.append(tools_element(ctx, live["tools"]))
    if text and live.get("sources"):
        elements.append(sources_element(ctx, live["sources"], key_prefix="live"))
    box.history.append(_assistant(elements))


class LiveAnswer:
    """The answer being streamed: a ChatBox message whose elements follow the events.

    With ``evidence_first`` (knowledge-base and search chat) the sources sit above the answer and
    open as soon as they arrive, before the model writes; a status line under the answer says what
    it waits for and, once it writes, how fast.
    """

    def __init__(self, box: ChatBox, ctx: UIContext, prompt: str, placeholder: str,
                 evidence_first: bool = False) -> None:
        self.box, self.ctx = box, ctx
        self._sources_shown = 0
        self._tools_at: int | None = None
        self._sources_at: int | None = None
        elements: list[OutputElement] = []
        if evidence_first:
            self._sources_at = 0
            elements.append(self._sources_element([], state="running"))
        self._text_at = len(elements)
        elements.append(text_element(placeholder))
        self._status_at = len(elements)
        elements.append(text_element(""))
        box.user_say(text_element(prompt), metadata={})
        box.ai_say(elements, metadata={})

    def _append(self, element: OutputElement) -> int:
        self.box.insert_msg(element)
        return len(self.box.history[-1]["elements"]) - 1

    def _sources_element(self, sources: list[dict[str, Any]], state: State = "complete") -> OutputElement:
        # Download buttons need keys that no earlier drawing in this run used.
        self._sources_shown += 1
        # Open: the evidence is what the user reads while the model writes.
        return sources_element(self.ctx, sources, key_prefix=f"streaming{self._sources_shown}", state=state,
                               expanded=True)

    def text(self, text: str, streaming: bool) -> None:
        # ChatBox adds its cursor to the text while ``streaming`` is true.
        self.box.update_msg(text_element(text), element_index=self._text_at, streaming=streaming)

    def status(self, line: str) -> None:
        """The small grey line under the answer: queue position, reading, speed."""
        self.box.update_msg(text_element(f":gray[{line}]" if line else ""), element_index=self._status_at,
                            streaming=False)

    def tools(self, tools: list[dict[str, Any]], state: State = "running") -> None:
        expanded = state == "running"
        element = tools_element(self.ctx, tools, state=state, expanded=expanded)
        if self._tools_at is None:
            self._tools_at = self._append(element)
        else:
            # update_msg keeps the old element's title and state unless told otherwise.
            title = self.ctx.t("msg.tools", n=len(tools))
            self.box.update_msg(element, element_index=self._tools_at, title=title, state=state, expanded=expanded)

    def sources(self, sources: list[dict[str, Any]]) -> None:
        element = self._sources_element(sources)
        if self._sources_at is None:
            self._sources_at = self._append(element)
        else:
            title = self.ctx.t("msg.sources", n=len(sources))
            self.box.update_msg(element, element_index=self._sources_at, title=title, state="complete",
                                expanded=True)

    def finish(self, live: dict[str, Any]) -> None:
        """The final text without cursor, finished agent steps, and why the answer ended early."""
        self.text(live["text"], streaming=False)
        if self._tools_at is not None:
            self.tools(live["tools"], state="complete")
        if live.get("error"):
            self._append(notice_element(self.ctx, live["error"], has_text=bool(live["text"])))
        elif live.get("stopped"):
            self._append(notice_element(self.ctx, {"code": STOPPED_CODE}, has_text=bool(live["text"])))
