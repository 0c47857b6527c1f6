"""Shared pieces of the WebUI pages: the page context, error display, remembered choices, formatting."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import streamlit as st

from webui_pages.api_client import ApiClient, ApiError
from webui_pages.i18n import translate

# Streamlit drops a widget's state when its page is not shown; choices are copied here so
# that going to the knowledge-base page and back keeps the dialogue settings.
PREFS_KEY = "_prefs"


@dataclass
class UIContext:
    """What every page needs: settings, the API client and the UI language."""

    settings: Any
    api: ApiClient
    lang: str

    def t(self, key: str, **kwargs: Any) -> str:
        return translate(self.lang, key, **kwargs)


def error_markdown(ctx: UIContext, code: str, message: str) -> str:
    """A readable explanation of an API error code followed by the server's own words."""
    title = translate(ctx.lang, f"err.{code}", default="")
    if not title:
        title = ctx.t("err.generic")
    return f"**{title}**\n\n{message}" if message else f"**{title}**"


def show_error(ctx: UIContext, error: ApiError | dict[str, Any], where: Any = None) -> None:
    """Show an API error (exception or ``error`` event) as a red box, never as a traceback."""
    if isinstance(error, ApiError):
        code, message = error.code, error.message
    else:
        code, message = str(error.get("code") or "error"), str(error.get("message") or "")
    (where or st).error(error_markdown(ctx, code, message), icon=":material/error:")


def remembered(key: str, default: Any) -> Any:
    """The value a widget had when it was last shown, else ``default``."""
    return st.session_state.setdefault(PREFS_KEY, {}).get(key, default)


def remember(key: str, value: Any) -> Any:
    st.session_state.setdefault(PREFS_KEY, {})[key] = value
    return value


def option_index(options: list[Any], value: Any, fallback: int = 0) -> int | None:
    """Index of ``value`` in ``options``; ``fallback`` when absent, None when there are no options."""
    if not options:
        return None
    return options.index(value) if value in options else fallback


def names_of(items: Any) -> list[str]:
    """Names from a list of strings or of objects with a ``name`` (or ``id``) field."""
    result = []
    for item in items or []:
        if isinstance(item, dict):
            name = item.get("name") or item.get("id")
        else:
            name = item
        if name:
            result.append(str(name))
    return result


def flash(kind: str, text: str) -> None:
    """Queue a message for the next run (callbacks cannot draw where the user is looking)."""
    st.session_state.setdefault("_flash", []).append((kind, text))


def show_flashes() -> None:
    for kind, text in st.session_state.pop("_flash", []):
        if kind == "error":
            st.error(text, icon=":material/error:")
        else:
            st.toast(text, icon=":material/check_circle:")


def human_size(size: int | float | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<$])")


def escape_markdown(text: str) -> str:
    """Show text literally inside st.markdown/st.caption (document chunks contain '#', '*', ...)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
