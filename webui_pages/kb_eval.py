"""The knowledge-base page's evaluation tab: upload your own questions, see how often each search mode
finds the answering chunk (the same measure as `kbchat eval`)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from webui_pages.api_client import ApiError
from webui_pages.common import UIContext, show_error

EVAL_KEY = "kb_eval_result"
EXAMPLE = (
    '{"question": "试用期最长多久？", "file": "劳动合同法.md", "evidence": "试用期不得超过六个月"}\n'
    '{"question": "How do I stop kbchat?", "evidence": "Ctrl-C"}'
)


def render_eval(ctx: UIContext, kb: str) -> None:
    t = ctx.t
    st.caption(t("eval.help"))
    st.code(EXAMPLE, language="json", wrap_lines=True)
    with st.form("kb_eval_form", border=False):
        upload = st.file_uploader(t("eval.file"), type=["jsonl", "json", "txt"], key="kb_eval_file")
        rewrite = st.checkbox(t("eval.rewrite"), help=t("eval.rewrite_help"), key="kb_eval_rewrite")
        submitted = st.form_submit_button(t("eval.run"), icon=":material/fact_check:", type="primary")
    if submitted:
        if upload is None:
            st.warning(t("eval.no_file"), icon=":material/upload_file:")
        else:
            try:
                text = upload.getvalue().decode("utf-8-sig")
            except UnicodeDecodeError:
                st.error(t("eval.not_utf8"), icon=":material/error:")
                return
            try:
                with st.spinner(t("eval.running_rewrite" if rewrite else "eval.running")):
                    reports = ctx.api.evaluate(kb, text, rewrite=rewrite)
            except ApiError as err:
                show_error(ctx, err)
                return
            st.session_state[EVAL_KEY] = {"kb": kb, "reports": reports}
    last = st.session_state.get(EVAL_KEY)
    if last and last.get("kb") == kb:
        _render_reports(ctx, last["reports"])


def _render_reports(ctx: UIContext, reports: list[dict[str, Any]]) -> None:
    t = ctx.t
    rewrote = any("rewrite_s_p50" in r for r in reports)
    rows = [
        {
            t("eval.mode"): _mode_label(ctx, r["label"]),
            t("eval.questions"): r["questions"],
            "hit@1": r["hit@1"], "hit@3": r["hit@3"], "hit@5": r["hit@5"], "MRR@10": r["MRR@10"],
            t("eval.p50"): r["p50_ms"],
            **({t("eval.rewrite_s"): _seconds(r.get("rewrite_s_p50"))} if rewrote else {}),
            t("eval.missed"): ", ".join(r["misses@5"][:20]),
        }
        for r in reports
    ]
    st.dataframe(rows, hide_index=True, width="stretch")


def _mode_label(ctx: UIContext, label: str) -> str:
    """A report's search mode in the page's language; "<mode> + rewrite" keeps its suffix translated."""
    mode, plus, _ = label.partition(" + rewrite")
    name = ctx.t(f"search_mode.{mode}", default=mode)
    return f"{name} + {ctx.t('eval.rewrite_short')}" if plus else name


def _seconds(value: float | None) -> str:
    """A rewrite time for the table; a dash for the rows searched without rewriting."""
    return "–" if value is None else f"{value:.2f}"
