"""File chat in the sidebar: drop files into the open conversation; knowledge-base chat searches them at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from webui_pages.api_client import ApiError
from webui_pages.common import UIContext, flash, show_error


def render_conversation_files(
    ctx: UIContext, conversation: dict[str, Any] | None, open_conversation: Callable[[str], None]
) -> list[str]:
    """The uploader and the files already dropped; returns their names. A first drop starts the conversation,
    which ``open_conversation`` then opens."""
    t = ctx.t
    conv_id = conversation.get("id") if conversation else None
    names: list[str] = []
    if conv_id:
        try:
            names = [f["file_name"] for f in ctx.api.conversation_files(conv_id)]
        except ApiError as err:
            show_error(ctx, err)
    with st.expander(t("conv_files.title", n=len(names)), expanded=bool(names)):
        st.caption(t("conv_files.help"))
        for name in names:
            st.markdown(f":material/description: {name}")
        uploaded = st.file_uploader(t("conv_files.pick"), accept_multiple_files=True, key=f"conv_files_{conv_id or 'new'}",
                                    label_visibility="collapsed")
        if st.button(t("conv_files.add"), icon=":material/attach_file:", key="conv_files_add", disabled=not uploaded):
            try:
                if not conv_id:
                    conv_id = ctx.api.create_conversation(mode="kb")["id"]
                results = ctx.api.add_conversation_files(conv_id, [(f.name, f.getvalue()) for f in uploaded])
            except ApiError as err:
                show_error(ctx, err)
                return names
            for result in results:
                if result.get("status") == "error":
                    flash("error", t("conv_files.failed", name=result.get("file_name"), error=result.get("error")))
                else:
                    names.append(result.get("file_name"))
            flash("success", t("conv_files.added", n=sum(r.get("status") != "error" for r in results)))
            open_conversation(conv_id)
            st.rerun()
    return names
