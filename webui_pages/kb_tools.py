"""Knowledge-base tools: the chunk viewer/editor, the side-by-side retrieval test and the rebuild."""

from __future__ import annotations

from typing import Any

import streamlit as st

from webui_pages.api_client import ApiError
from webui_pages.common import UIContext, escape_markdown, flash, show_error

CHUNKS_PER_PAGE = 10
SEARCH_KEY = "kb_search_results"


def _location(metadata: dict[str, Any]) -> str:
    bits = []
    for key, prefix in (("page", "p. "), ("sheet", ""), ("slide", "slide ")):
        if metadata.get(key) not in (None, ""):
            bits.append(f"{prefix}{metadata[key]}")
    if metadata.get("heading_path"):
        bits.append(" › ".join(str(h) for h in metadata["heading_path"]))
    return " · ".join(bits)


def _save_chunk(ctx: UIContext, kb: str, doc_id: str) -> None:
    text = st.session_state.get(f"chunk_{doc_id}") or ""
    if not text.strip():
        flash("error", ctx.t("chunks.empty"))
        return
    try:
        ctx.api.update_chunk(kb, doc_id, text)
        flash("ok", ctx.t("chunks.saved"))
    except ApiError as err:
        flash("error", f"{ctx.t('chunks.save_failed')}: {err.message}")


def _delete_chunk(ctx: UIContext, kb: str, doc_id: str) -> None:
    st.session_state.pop("chunk_confirm_delete", None)
    try:
        ctx.api.delete_chunk(kb, doc_id)
        flash("ok", ctx.t("chunks.deleted"))
    except ApiError as err:
        flash("error", f"{ctx.t('chunks.delete_failed')}: {err.message}")


def render_chunks(ctx: UIContext, kb: str, files: list[dict[str, Any]]) -> None:
    t = ctx.t
    names = [f["file_name"] for f in files if f.get("chunk_count")]
    if not names:
        st.info(t("chunks.no_files"), icon=":material/inbox:")
        return
    file_name = st.selectbox(t("chunks.file"), names, key="chunk_file")
    try:
        chunks = ctx.api.list_chunks(kb, file_name)
    except ApiError as err:
        show_error(ctx, err)
        return
    pages = max(1, -(-len(chunks) // CHUNKS_PER_PAGE))
    cols = st.columns([3, 1], vertical_alignment="bottom")
    cols[0].caption(t("chunks.count", n=len(chunks)))
    page = cols[1].number_input(t("chunks.page"), 1, pages, 1, key=f"chunk_page_{file_name}") if pages > 1 else 1
    start = (page - 1) * CHUNKS_PER_PAGE
    for chunk in chunks[start:start + CHUNKS_PER_PAGE]:
        doc_id = chunk["doc_id"]
        metadata = chunk.get("metadata") or {}
        with st.container(border=True):
            where = _location(metadata)
            head = f"#{metadata.get('chunk_index', '?')} · `{doc_id}`"
            st.caption(head + (f" · {escape_markdown(where)}" if where else ""))
            st.text_area(t("chunks.text"), value=chunk.get("text") or "", key=f"chunk_{doc_id}", height=140,
                         label_visibility="collapsed")
            b1, b2, _ = st.columns([1, 1, 4])
            b1.button(t("common.save"), icon=":material/save:", key=f"chunk_save_{doc_id}", on_click=_save_chunk,
                      args=(ctx, kb, doc_id), help=t("chunks.save_help"))
            if b2.button(t("chunks.delete"), icon=":material/delete:", key=f"chunk_del_{doc_id}"):
                st.session_state["chunk_confirm_delete"] = doc_id
            if st.session_state.get("chunk_confirm_delete") == doc_id:
                st.warning(t("chunks.confirm_delete"))
                c1, c2, _ = st.columns([1, 1, 3])
                c1.button(t("common.confirm_delete"), key=f"chunk_del_yes_{doc_id}", type="primary",
                          on_click=_delete_chunk, args=(ctx, kb, doc_id))
                if c2.button(t("common.cancel"), key=f"chunk_del_no_{doc_id}"):
                    st.session_state.pop("chunk_confirm_delete", None)
                    st.rerun()


def _render_hits(ctx: UIContext, hits: list[dict[str, Any]] | ApiError) -> None:
    if isinstance(hits, ApiError):
        show_error(ctx, hits)
        return
    if not hits:
        st.caption(ctx.t("search.no_hits"))
        return
    for hit in hits:
        metadata = hit.get("metadata") or {}
        score = float(hit.get("score") or 0.0)
        with st.container(border=True):
            source = metadata.get("source") or ""
            where = _location(metadata)
            st.markdown(f"**#{hit.get('rank', '?')}** · {ctx.t('msg.score')} **{score:.3f}**")
            st.progress(min(max(score, 0.0), 1.0))
            st.caption(escape_markdown(" · ".join(x for x in (str(source), where) if x)))
            st.markdown(escape_markdown(hit.get("text") or ""))


def render_retrieval_test(ctx: UIContext, kb: str, public: dict[str, Any]) -> None:
    t = ctx.t
    modes = [str(m) for m in public.get("search_modes") or []]
    with st.form("kb_search_form", border=False):
        query = st.text_input(t("search.query"), key="kb_search_query", placeholder=t("search.placeholder"))
        c1, c2, c3 = st.columns([1, 2, 1], vertical_alignment="bottom")
        top_k = c1.number_input(t("opt.top_k"), 1, 100, int(public.get("top_k") or 1), key="kb_search_top_k")
        use_threshold = c2.checkbox(t("search.use_threshold"), value=True, key="kb_search_threshold",
                                    help=t("search.use_threshold_help"))
        submitted = c3.form_submit_button(
            t("search.run"), icon=":material/manage_search:", type="primary", width="stretch"
        )
    if submitted and query.strip():
        results: dict[str, Any] = {}
        for mode in modes:
            try:
                results[mode] = ctx.api.search(
                    kb, query.strip(), top_k=int(top_k), mode=mode, score_threshold=None if use_threshold else 0.0
                )
            except ApiError as err:
                results[mode] = err
        st.session_state[SEARCH_KEY] = {"kb": kb, "query": query.strip(), "results": results}
    last = st.session_state.get(SEARCH_KEY)
    if not last or last.get("kb") != kb:
        st.caption(t("search.hint"))
        return
    columns = st.columns(len(last["results"]) or 1)
    for column, (mode, hits) in zip(columns, last["results"].items()):
        with column:
            st.subheader(t(f"search_mode.{mode}", default=mode))
            _render_hits(ctx, hits)


def _run_rebuild(ctx: UIContext, kb: str) -> None:
    t = ctx.t
    bar = st.progress(0.0, text=t("rebuild.starting"))
    try:
        with ctx.api.rebuild_stream(kb) as events:
            for event in events:
                total = int(event.get("files_total") or 0)
                done = int(event.get("files_done") or 0)
                share = done / total if total else 0.0
                label = t("rebuild.saving") if event.get("stage") == "saving" else \
                    t("rebuild.progress", done=done, total=total)
                if event.get("file_name"):
                    label += f" · {event['file_name']}"
                if event.get("stage") == "error" and not event.get("file_name"):
                    show_error(ctx, event)
                    return
                if event.get("stage") == "error":
                    st.error(f"{event['file_name']}: {event.get('message') or ''}", icon=":material/cancel:")
                bar.progress(min(share, 1.0), text=label)
    except ApiError as err:
        show_error(ctx, err)
        return
    bar.progress(1.0, text=t("rebuild.done"))
    st.success(t("rebuild.done"), icon=":material/check_circle:")


def render_rebuild(ctx: UIContext, kb: str) -> None:
    t = ctx.t
    st.markdown(t("rebuild.help"))
    if st.button(t("rebuild.start"), icon=":material/construction:", key="kb_rebuild"):
        st.session_state["kb_confirm_rebuild"] = kb
    if st.session_state.get("kb_confirm_rebuild") != kb:
        return
    st.warning(t("rebuild.confirm", name=kb))
    c1, c2 = st.columns(2)
    if c1.button(t("rebuild.confirm_button"), key="kb_rebuild_yes", type="primary"):
        st.session_state.pop("kb_confirm_rebuild", None)
        _run_rebuild(ctx, kb)
    if c2.button(t("common.cancel"), key="kb_rebuild_no"):
        st.session_state.pop("kb_confirm_rebuild", None)
        st.rerun()
