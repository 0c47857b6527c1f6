"""The knowledge-base page: create, pick and delete knowledge bases; files, chunks, retrieval test, rebuild."""

from __future__ import annotations

from typing import Any

import streamlit as st

from webui_pages.api_client import ApiError
from webui_pages.common import UIContext, escape_markdown, flash, names_of, show_error, show_flashes
from webui_pages.kb_eval import render_eval
from webui_pages.kb_files import render_file_table, render_upload
from webui_pages.kb_tools import render_chunks, render_rebuild, render_retrieval_test

NEW_KB = ""  # the "create a new knowledge base" entry of the picker
KB_KEY = "kb_selected"
NEXT_KB_KEY = "kb_pick_next"


def _embed_models(public: dict[str, Any]) -> list[str]:
    return names_of(public.get("embed_models"))


def _vector_stores(public: dict[str, Any], kbs: list[dict[str, Any]]) -> list[str]:
    stores = names_of(public.get("vector_stores"))
    if public.get("default_vector_store") and public["default_vector_store"] not in stores:
        stores.insert(0, str(public["default_vector_store"]))
    for kb in kbs:
        if kb.get("vector_store") and kb["vector_store"] not in stores:
            stores.append(str(kb["vector_store"]))
    return stores


def _create_form(ctx: UIContext, public: dict[str, Any], kbs: list[dict[str, Any]]) -> None:
    t = ctx.t
    st.subheader(t("kb.create_title"))
    with st.form("kb_create", border=True):
        name = st.text_input(t("kb.name"), key="kb_new_name", max_chars=100, help=t("kb.name_help"))
        description = st.text_area(t("kb.description"), key="kb_new_desc", height=80)
        cols = st.columns(2)
        models = _embed_models(public)
        default_model = public.get("default_embed_model")
        embed_model = cols[0].selectbox(
            t("kb.embed_model"), models, index=models.index(default_model) if default_model in models else 0,
            key="kb_new_embed",
        )
        stores = _vector_stores(public, kbs)
        store_at = stores.index(public["default_vector_store"]) if public.get("default_vector_store") in stores else 0
        vector_store = (
            cols[1].selectbox(t("kb.vector_store"), stores, index=store_at, key="kb_new_store") if stores else None
        )
        submitted = st.form_submit_button(t("kb.create"), icon=":material/add:", type="primary")
    if not submitted:
        return
    if not name.strip():
        st.error(t("kb.name_required"), icon=":material/error:")
        return
    try:
        info = ctx.api.create_kb(name.strip(), description.strip(), embed_model=embed_model, vector_store=vector_store)
    except ApiError as err:
        show_error(ctx, err)
        return
    st.session_state[NEXT_KB_KEY] = info.get("name", name.strip())
    flash("ok", t("kb.created", name=st.session_state[NEXT_KB_KEY]))
    st.rerun()


def _delete_kb(ctx: UIContext, kb: str) -> None:
    st.session_state.pop("kb_confirm_delete", None)
    try:
        ctx.api.delete_kb(kb)
    except ApiError as err:
        flash("error", f"{ctx.t('kb.delete_failed')}: {err.message}")
        return
    st.session_state[KB_KEY] = NEW_KB
    flash("ok", ctx.t("kb.deleted", name=kb))


def _render_header(ctx: UIContext, kb: dict[str, Any]) -> None:
    t = ctx.t
    counts, about = st.columns([1, 2], vertical_alignment="center")
    with counts:
        c1, c2 = st.columns(2)
        c1.metric(t("kb.files"), kb.get("file_count", 0))
        c2.metric(t("kb.chunks"), kb.get("chunk_count", 0))
    lines = [
        f"**{t('kb.embed_model')}**: {escape_markdown(str(kb.get('embed_model') or '—'))}",
        f"**{t('kb.vector_store')}**: {escape_markdown(str(kb.get('vector_store') or '—'))}",
    ]
    if kb.get("created_at"):
        lines.append(f"**{t('kb.created_at')}**: {str(kb['created_at'])[:16].replace('T', ' ')}")
    if kb.get("description"):
        lines.append(escape_markdown(kb["description"]))
    about.markdown("  \n".join(lines))


def _render_danger_zone(ctx: UIContext, kb: str) -> None:
    t = ctx.t
    with st.expander(t("kb.danger"), icon=":material/error:"):
        render_rebuild(ctx, kb)
        st.divider()
        if st.button(t("kb.delete"), icon=":material/delete:", key="kb_delete"):
            st.session_state["kb_confirm_delete"] = kb
        if st.session_state.get("kb_confirm_delete") == kb:
            st.warning(t("kb.confirm_delete", name=kb))
            c1, c2 = st.columns(2)
            c1.button(t("common.confirm_delete"), key="kb_delete_yes", type="primary", on_click=_delete_kb,
                      args=(ctx, kb))
            if c2.button(t("common.cancel"), key="kb_delete_no"):
                st.session_state.pop("kb_confirm_delete", None)
                st.rerun()


def render(ctx: UIContext) -> None:
    """Draw the knowledge-base page."""
    t = ctx.t
    st.title(t("kb.title"))
    try:
        public = ctx.api.public_settings()
        kbs = ctx.api.list_kbs()
    except ApiError as err:
        show_error(ctx, err)
        st.button(t("common.retry"), icon=":material/refresh:", key="kb_retry")
        return
    show_flashes()
    by_name = {kb["name"]: kb for kb in kbs}
    options = list(by_name) + [NEW_KB]
    # The picker is driven through its session key so that creating or deleting a KB can move it;
    # the key carries the language because a selectbox keeps showing the label picked earlier.
    pick_key = f"kb_pick_{ctx.lang}"
    wanted = st.session_state.pop(NEXT_KB_KEY, None)
    if wanted is None:
        wanted = st.session_state.get(pick_key, st.session_state.get(KB_KEY))
    st.session_state[pick_key] = wanted if wanted in options else options[0]
    choice = st.selectbox(
        t("kb.pick"),
        options,
        format_func=lambda name: f"+ {t('kb.new')}" if name == NEW_KB else name,
        key=pick_key,
    )
    st.session_state[KB_KEY] = choice
    if choice == NEW_KB:
        if not kbs:
            st.info(t("kb.empty"), icon=":material/waving_hand:")
        _create_form(ctx, public, kbs)
        return

    kb = by_name[choice]
    _render_header(ctx, kb)
    files_tab, chunks_tab, search_tab, eval_tab = st.tabs(
        [t("kb.tab_files"), t("kb.tab_chunks"), t("kb.tab_search"), t("kb.tab_eval")]
    )
    with files_tab:
        render_upload(ctx, choice, public)
        st.divider()
        files = render_file_table(ctx, choice)
    with chunks_tab:
        render_chunks(ctx, choice, files)
    with search_tab:
        render_retrieval_test(ctx, choice, public)
    with eval_tab:
        render_eval(ctx, choice)
    _render_danger_zone(ctx, choice)
