"""Dialogue sidebar: chat options (defaults from /settings/public) and the conversation list."""

from __future__ import annotations

from typing import Any

import streamlit as st

from webui_pages.api_client import ApiError
from webui_pages.common import UIContext, flash, names_of, option_index, remember, remembered, shorten
from webui_pages.conversation_files import render_conversation_files

CONV_PARAM = "conv"
CONV_KEY = "conv_id"
LIVE_KEY = "live_answer"
STREAM_KEY = "live_stream"
CONV_LIST_SIZE = 50


def current_conversation_id() -> str | None:
    """The open conversation: the URL wins (a reload), else what this session had open."""
    from_url = st.query_params.get(CONV_PARAM)
    if from_url:
        st.session_state[CONV_KEY] = from_url
        return from_url
    conv_id = st.session_state.get(CONV_KEY)
    if conv_id:
        # Switching pages drops query parameters; put the id back so a reload returns here.
        st.query_params[CONV_PARAM] = conv_id
    return conv_id


def open_conversation(conv_id: str | None, mode: str | None = None) -> None:
    """Make ``conv_id`` (None: a new one) the open conversation; ``mode`` switches to its chat mode."""
    st.session_state[CONV_KEY] = conv_id
    if mode:
        st.session_state["opt_mode"] = remember("opt_mode", mode)
    st.session_state.pop(LIVE_KEY, None)
    if conv_id:
        st.query_params[CONV_PARAM] = conv_id
    elif CONV_PARAM in st.query_params:
        del st.query_params[CONV_PARAM]


def _model_names(ctx: UIContext, public: dict[str, Any]) -> list[str]:
    names = names_of(public.get("models"))
    try:
        served = ctx.api.model_ids()
    except ApiError:
        served = []  # /settings/public already lists the configured models
    for model_id in served:
        if not model_id.startswith("kb/") and model_id not in names:
            names.append(model_id)
    return names


def _kb_threshold(public: dict[str, Any], kb_name: str | None) -> float:
    """Threshold the server would apply: the global one, else the KB embed model's calibrated one."""
    if public.get("score_threshold") is not None:
        return float(public["score_threshold"])
    kb = next((k for k in public.get("kbs") or [] if isinstance(k, dict) and k.get("name") == kb_name), None)
    models = public.get("embed_models")
    if kb and isinstance(models, dict):
        model = models.get(kb.get("embed_model"))
        if isinstance(model, dict) and model.get("score_threshold") is not None:
            return float(model["score_threshold"])
    return 0.0


def _mode_templates(public: dict[str, Any], mode: str) -> list[str]:
    """The templates offered in ``mode``; every template when the API does not group them by mode."""
    by_mode = public.get("prompt_templates_by_mode")
    if isinstance(by_mode, dict):
        return names_of(by_mode.get(mode))
    return names_of(public.get("prompt_templates"))


def _select(
    label: str, options: list[str], key: str, default: str | None, lang: str | None = None, **kwargs: Any
) -> str | None:
    """A remembered selectbox; pass ``lang`` when its labels are translated, because a selectbox
    keeps showing the label its value had when picked, so each language needs its own widget."""
    widget_key = f"{key}_{lang}" if lang else key
    value = st.selectbox(
        label, options, index=option_index(options, remembered(key, default)), key=widget_key, **kwargs
    )
    return remember(key, value)


def render_chat_options(ctx: UIContext, public: dict[str, Any], conversation: dict[str, Any] | None) -> dict[str, Any]:
    """Draw the option widgets and return the matching ChatRequest fields."""
    t = ctx.t
    # A fresh session (e.g. a reload) continues an open conversation in that conversation's mode.
    conv_mode = (conversation or {}).get("mode")
    modes = names_of(public.get("modes"))  # the chat modes the API offers
    mode = st.radio(
        t("opt.mode"),
        modes,
        index=option_index(modes, remembered("opt_mode", conv_mode if conv_mode in modes else modes[0])),
        format_func=lambda m: t(f"mode.{m}"),
        key="opt_mode",
    )
    remember("opt_mode", mode)
    options: dict[str, Any] = {"mode": mode}

    if mode == "kb":
        kbs = names_of(public.get("kbs"))
        chosen = remembered("opt_kb", None)
        if chosen and chosen not in kbs:
            # Say so rather than quietly asking another knowledge base.
            st.warning(t("opt.kb_gone", name=chosen), icon=":material/folder_off:")
        if kbs:
            options["kb_name"] = _select(t("opt.kb"), kbs, "opt_kb", kbs[0])
            others = [k for k in kbs if k != options["kb_name"]]
            if others:
                kept = [k for k in remembered("opt_kb_more", []) if k in others]
                more = remember("opt_kb_more", st.multiselect(t("opt.kb_more"), others, default=kept,
                                                               key="opt_kb_more", help=t("opt.kb_more_help"),
                                                               placeholder=t("opt.kb_more_placeholder")))
                # Knowledge bases joined by "+" are searched together, their rankings merged.
                options["kb_name"] = "+".join([options["kb_name"], *more])
        elif not conversation or not conversation.get("id"):
            st.info(t("opt.no_kb_files"), icon=":material/folder_open:")
            options["kb_name"] = None
        else:
            options["kb_name"] = None
        options["conv_files"] = render_conversation_files(ctx, conversation, open_conversation)
        default_top_k = int(public.get("kb_passages") or public.get("top_k") or 1)
        options["top_k"] = remember(
            "opt_top_k",
            st.number_input(t("opt.top_k"), 1, 100, int(remembered("opt_top_k", default_top_k)), key="opt_top_k"),
        )
        threshold_default = _kb_threshold(public, (options["kb_name"] or "").split("+")[0] or None)
        threshold = st.slider(
            t("opt.threshold"), 0.0, 1.0, float(remembered("opt_threshold", threshold_default)), 0.01,
            key="opt_threshold", help=t("opt.threshold_help"),
        )
        remember("opt_threshold", threshold)
        # Equal to the server's default: leave it to the server (it may be per embedding model).
        options["score_threshold"] = None if abs(threshold - threshold_default) < 1e-9 else threshold
        modes = [str(m) for m in public.get("search_modes") or []]
        options["search_mode"] = _select(
            t("opt.search_mode"), modes, "opt_search_mode", public.get("default_search_mode"), lang=ctx.lang,
            format_func=lambda m: t(f"search_mode.{m}", default=m),
        )
        default_rewrite = bool(public.get("rewrite_query"))
        rewrite = remember("opt_rewrite", st.toggle(
            t("opt.rewrite"), value=bool(remembered("opt_rewrite", default_rewrite)), key="opt_rewrite",
            help=t("opt.rewrite_help"),
        ))
        # Equal to the server's default: leave it to the server.
        options["rewrite_query"] = None if rewrite == default_rewrite else rewrite
        default_refuse = bool(public.get("refuse_unsupported"))
        refuse = remember("opt_refuse", st.toggle(
            t("opt.refuse"), value=bool(remembered("opt_refuse", default_refuse)), key="opt_refuse",
            help=t("opt.refuse_help"),
        ))
        options["refuse_unsupported"] = None if refuse == default_refuse else refuse
    elif mode == "search":
        engines = [str(e) for e in public.get("engines") or []]
        options["engine"] = _select(t("opt.engine"), engines, "opt_engine", public.get("default_engine"))
        default_count = int(public.get("result_count") or 1)
        options["result_count"] = remember(
            "opt_result_count",
            st.number_input(
                t("opt.result_count"), 1, 20, int(remembered("opt_result_count", default_count)),
                key="opt_result_count",
            ),
        )

    with st.expander(t("opt.model_section"), expanded=True):
        models = _model_names(ctx, public)
        options["model"] = _select(t("opt.model"), models, "opt_model", public.get("default_model"))
        # Knowledge-base answers keep to the passages best when sampled cold: each mode has its own default.
        default_temperature = public.get("kb_temperature" if mode == "kb" else "temperature") or 0.0
        temperature_key = f"opt_temperature_{mode}"
        options["temperature"] = remember(
            temperature_key,
            st.slider(
                t("opt.temperature"), 0.0, 2.0,
                float(remembered(temperature_key, default_temperature)), 0.05,
                key=temperature_key,
            ),
        )
        options["history_turns"] = remember(
            "opt_history",
            st.number_input(
                t("opt.history_turns"), 0, 50, int(remembered("opt_history", public.get("history_turns") or 0)),
                key="opt_history", help=t("opt.history_help"),
            ),
        )
        templates = [""] + _mode_templates(public, mode)
        # One remembered choice per mode: a template written for one mode rarely suits another.
        template = _select(
            t("opt.template"), templates, f"opt_template_{mode}", "", lang=ctx.lang,
            format_func=lambda name: name or t("opt.template_default"),
        )
        options["prompt_template"] = template or None
        options["bilingual"] = remember(
            "opt_bilingual",
            st.toggle(t("opt.bilingual"), value=bool(remembered("opt_bilingual", False)), key="opt_bilingual",
                      help=t("opt.bilingual_help")),
        )
    return options


def _start_new() -> None:
    open_conversation(None)


def _rename(ctx: UIContext, conv_id: str) -> None:
    title = (st.session_state.get(f"conv_rename_{conv_id}") or "").strip()
    if not title:
        flash("error", ctx.t("conv.rename_empty"))
        return
    try:
        ctx.api.rename_conversation(conv_id, title)
        flash("ok", ctx.t("conv.renamed"))
    except ApiError as err:
        flash("error", f"{ctx.t('conv.rename_failed')}: {err.message}")


def _delete(ctx: UIContext, conv_id: str) -> None:
    st.session_state.pop("conv_confirm_delete", None)
    try:
        ctx.api.delete_conversation(conv_id)
        flash("ok", ctx.t("conv.deleted"))
        open_conversation(None)
    except ApiError as err:
        flash("error", f"{ctx.t('conv.delete_failed')}: {err.message}")


def render_conversations(ctx: UIContext, current: dict[str, Any] | None) -> None:
    """New / switch / rename / delete conversations; the list comes from the API every run."""
    t = ctx.t
    st.button(t("conv.new"), icon=":material/add:", key="conv_new", on_click=_start_new, width="stretch")
    try:
        items = ctx.api.list_conversations(size=CONV_LIST_SIZE).get("items", [])
    except ApiError as err:
        st.caption(f"{t('conv.list_failed')}: {err.message}")
        items = []
    current_id = current.get("id") if current else None
    with st.container(height=300 if len(items) > 8 else "content", border=False, key="conv_list"):
        if not items:
            st.caption(t("conv.none"))
        for item in items:
            active = item.get("id") == current_id
            st.button(
                shorten(item.get("title") or t("conv.untitled"), 30),
                key=f"conv_{item['id']}",
                type="primary" if active else "tertiary",
                icon=":material/chat:",
                on_click=open_conversation,
                args=(item["id"], item.get("mode")),
                width="stretch",
            )
    if not current:
        return
    cols = st.columns(2)
    with cols[0].popover(t("conv.rename"), icon=":material/edit:", width="stretch"):
        st.text_input(
            t("conv.new_title"), value=current.get("title") or "", key=f"conv_rename_{current['id']}", max_chars=200
        )
        st.button(t("common.save"), key="conv_rename_save", on_click=_rename, args=(ctx, current["id"]))
    if cols[1].button(t("conv.delete"), icon=":material/delete:", key="conv_delete", width="stretch"):
        st.session_state["conv_confirm_delete"] = current["id"]
    if st.session_state.get("conv_confirm_delete") == current["id"]:
        st.warning(t("conv.confirm_delete", title=current.get("title") or t("conv.untitled")))
        c1, c2 = st.columns(2)
        c1.button(t("common.confirm_delete"), key="conv_delete_yes", type="primary",
                  on_click=_delete, args=(ctx, current["id"]))
        if c2.button(t("common.cancel"), key="conv_delete_no"):
            st.session_state.pop("conv_confirm_delete", None)
            st.rerun()
