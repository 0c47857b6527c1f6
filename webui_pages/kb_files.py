"""Knowledge-base files: streamed multi-file upload with progress, and the file table with its actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st

from configs.settings import CHUNK_OVERLAP_MAX, CHUNK_SIZE_MAX, CHUNK_SIZE_MIN
from webui_pages.api_client import ApiError
from webui_pages.common import UIContext, flash, human_size, show_error

RESULTS_KEY = "upload_results"
ROUND_KEY = "upload_round"


def _status(ctx: UIContext, status: str) -> str:
    return ctx.t(f"status.{status}", default=status)


class _UploadProgress:
    """An overall bar plus one bar per file, moved by the API's progress events."""

    def __init__(self, ctx: UIContext, names: list[str]) -> None:
        self.ctx = ctx
        self.total = len(names)
        self.overall = st.progress(0.0, text=ctx.t("up.overall", done=0, total=self.total))
        self.box = st.container(border=True)
        waiting = ctx.t("up.waiting")
        self.shares: dict[str, float] = {}  # each file's share done, kept while its embedding is paused
        self.bars = {
            name: self.box.progress(0.0, text=f":material/hourglass_empty: {name} · {waiting}") for name in names
        }

    def _bar(self, name: str) -> Any:
        if name not in self.bars:
            self.bars[name] = self.box.progress(0.0, text=name)
        return self.bars[name]

    def update(self, event: dict[str, Any]) -> None:
        t = self.ctx.t
        stage = event.get("stage")
        name = str(event.get("file_name") or "")
        total = int(event.get("files_total") or self.total or 1)
        done = int(event.get("files_done") or 0)
        self.overall.progress(min(done / total, 1.0), text=t("up.overall", done=done, total=total))
        message = str(event.get("message") or "")
        if not name:
            if stage == "saving":
                self.overall.progress(min(done / total, 1.0), text=t("up.saving"))
            elif stage == "done":
                self.overall.progress(1.0, text=t("up.overall", done=total, total=total))
            return
        if stage == "file_start":
            self._bar(name).progress(0.02, text=f":material/settings: {name} · {t('up.reading')}")
        elif stage == "ocr":
            pages_total = int(event.get("pages_total") or 0)
            pages_done = int(event.get("pages_done") or 0)
            # OCR is the slow part of a scan: it fills the first half of the file's bar, embedding the rest.
            share = 0.5 * pages_done / pages_total if pages_total else 0.02
            self._bar(name).progress(
                min(max(share, 0.02), 0.5),
                text=f":material/document_scanner: {name} · {t('up.ocr_pages', done=pages_done, total=pages_total)}",
            )
        elif stage == "chunks":
            chunks_total = int(event.get("chunks_total") or 0)
            chunks_done = int(event.get("chunks_done") or 0)
            share = chunks_done / chunks_total if chunks_total else 0.5
            self.shares[name] = share
            self._bar(name).progress(
                min(max(share, 0.02), 1.0),
                text=f":material/settings: {name} · {t('up.embedding', done=chunks_done, total=chunks_total)}",
            )
        elif stage == "paused":
            self._bar(name).progress(min(max(self.shares.get(name, 0.0), 0.02), 1.0),
                                     text=f":material/pause_circle: {name} · {t('up.paused')}")
        elif stage == "file_done":
            self._bar(name).progress(1.0, text=f":material/check_circle: {name} · {message or t('up.file_done')}")
        elif stage == "error":
            self._bar(name).progress(1.0, text=f":material/cancel: {name} · {message}")


def _run_upload(ctx: UIContext, kb: str, files: list[Any], options: dict[str, Any]) -> None:
    payload = [(f.name, f.getvalue()) for f in files]
    progress = _UploadProgress(ctx, [name for name, _ in payload])
    results: list[dict[str, Any]] | None = None
    try:
        with ctx.api.upload_files_stream(kb, payload, **options) as events:
            for event in events:
                if event.get("stage") == "result":
                    results = list(event.get("results") or [])
                elif event.get("stage") == "error" and not event.get("file_name"):
                    # The whole job failed (a file's own failure names the file and the batch goes on).
                    show_error(ctx, event)
                    return
                else:
                    progress.update(event)
    except ApiError as err:
        show_error(ctx, err)
        return
    if results is None:
        show_error(ctx, {"code": "stream_interrupted", "message": ctx.t("up.no_result")})
        return
    st.session_state[RESULTS_KEY] = {"kb": kb, "results": results}
    # A new uploader key empties the picker, so the same files are not sent twice by accident.
    st.session_state[ROUND_KEY] = st.session_state.get(ROUND_KEY, 0) + 1
    st.rerun()


def _render_last_results(ctx: UIContext, kb: str) -> None:
    last = st.session_state.get(RESULTS_KEY)
    if not last or last.get("kb") != kb:
        return
    t = ctx.t
    results = last["results"]
    ok = [r for r in results if r.get("status") in ("indexed", "stored")]
    chunks = sum(int(r.get("chunks") or 0) for r in ok)
    if ok:
        st.success(t("up.summary", n=len(ok), chunks=chunks), icon=":material/check_circle:")
    for result in results:
        if result.get("status") == "error":
            st.error(f"**{result.get('file_name')}**: {result.get('error') or t('err.generic')}",
                     icon=":material/cancel:")
        elif result.get("status") == "skipped":
            st.info(f"**{result.get('file_name')}**: {result.get('error') or t('up.skipped')}",
                    icon=":material/skip_next:")


def render_upload(ctx: UIContext, kb: str, public: dict[str, Any]) -> None:
    t = ctx.t
    st.subheader(t("up.title"))
    max_mb = public.get("max_upload_mb")
    files = st.file_uploader(
        t("up.files"),
        accept_multiple_files=True,
        key=f"upload_{kb}_{st.session_state.get(ROUND_KEY, 0)}",
        max_upload_size=int(max_mb) if max_mb else None,
        help=t("up.files_help"),
    )
    cols = st.columns(5, vertical_alignment="bottom")
    chunk_size = cols[0].number_input(
        t("up.chunk_size"), min_value=CHUNK_SIZE_MIN, max_value=CHUNK_SIZE_MAX,
        value=int(public.get("chunk_size") or CHUNK_SIZE_MIN), step=50,
        key="up_chunk_size",
    )
    chunk_overlap = cols[1].number_input(
        t("up.chunk_overlap"), min_value=0, max_value=CHUNK_OVERLAP_MAX, value=int(public.get("chunk_overlap") or 0), step=10,
        key="up_chunk_overlap",
    )
    override = cols[2].checkbox(t("up.override"), key="up_override", help=t("up.override_help"))
    to_vector_store = cols[3].checkbox(t("up.to_vs"), value=True, key="up_to_vs", help=t("up.to_vs_help"))
    ocr = cols[4].checkbox(t("up.ocr"), value=bool(public.get("ocr", True)), key="up_ocr", help=t("up.ocr_help"))
    if st.button(t("up.start"), icon=":material/upload:", type="primary", key="up_start", disabled=not files):
        if chunk_overlap >= chunk_size:
            st.error(t("up.overlap_too_big"), icon=":material/error:")
            return
        options = {"override": override, "chunk_size": int(chunk_size), "chunk_overlap": int(chunk_overlap),
                   "to_vector_store": to_vector_store, "ocr": ocr}
        _run_upload(ctx, kb, files, options)
    _render_last_results(ctx, kb)


def _file_action(ctx: UIContext, kb: str, file_name: str, action: str) -> None:
    t = ctx.t
    st.session_state.pop("file_confirm_delete", None)
    try:
        if action == "reingest":
            result = ctx.api.reingest_file(kb, file_name) or {}
            if result.get("status") == "error":
                flash("error", f"{file_name}: {result.get('error')}")
            else:
                flash("ok", t("files.reingested", name=file_name, chunks=result.get("chunks", 0)))
        elif action == "unindex":
            ctx.api.delete_file(kb, file_name, delete_content=False)
            flash("ok", t("files.unindexed", name=file_name))
        elif action == "delete":
            ctx.api.delete_file(kb, file_name, delete_content=True)
            flash("ok", t("files.deleted", name=file_name))
    except ApiError as err:
        flash("error", f"{file_name}: {err.message}")


def _file_rows(ctx: UIContext, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    t = ctx.t
    rows = []
    for f in files:
        mtime = f.get("mtime")
        rows.append({
            t("files.col_name"): f.get("file_name"),
            t("files.col_size"): human_size(f.get("size")),
            t("files.col_chunks"): f.get("chunk_count", 0),
            t("files.col_status"): _status(ctx, str(f.get("status") or "")),
            t("files.col_error"): f.get("error") or "",
            t("files.col_loader"): f.get("loader") or "",
            t("files.col_modified"): datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M") if mtime else "",
        })
    return rows


def render_file_table(ctx: UIContext, kb: str) -> list[dict[str, Any]]:
    """Draw the files of ``kb`` with their actions; return the file list for the other tabs."""
    t = ctx.t
    st.subheader(t("files.title"))
    try:
        files = ctx.api.list_files(kb)
    except ApiError as err:
        show_error(ctx, err)
        return []
    if not files:
        st.info(t("files.none"), icon=":material/inbox:")
        return []
    st.dataframe(_file_rows(ctx, files), hide_index=True, width="stretch")
    names = [f["file_name"] for f in files]
    picked = st.selectbox(t("files.pick"), names, key="file_pick")
    cols = st.columns(4)
    cols[0].button(t("files.reingest"), icon=":material/sync:", key="file_reingest", width="stretch",
                   on_click=_file_action, args=(ctx, kb, picked, "reingest"))
    cols[1].button(t("files.unindex"), icon=":material/layers_clear:", key="file_unindex", width="stretch",
                   on_click=_file_action, args=(ctx, kb, picked, "unindex"), help=t("files.unindex_help"))
    if cols[2].button(t("files.delete"), icon=":material/delete:", key="file_delete", width="stretch"):
        st.session_state["file_confirm_delete"] = picked
    cols[3].download_button(
        t("files.download"), data=lambda: ctx.api.download_file(kb, picked), file_name=picked.rsplit("/", 1)[-1],
        icon=":material/download:", key="file_download", on_click="ignore", width="stretch",
    )
    if st.session_state.get("file_confirm_delete") == picked:
        st.warning(t("files.confirm_delete", name=picked))
        c1, c2 = st.columns(2)
        c1.button(t("common.confirm_delete"), key="file_delete_yes", type="primary",
                  on_click=_file_action, args=(ctx, kb, picked, "delete"))
        if c2.button(t("common.cancel"), key="file_delete_no"):
            st.session_state.pop("file_confirm_delete", None)
            st.rerun()
    return files
