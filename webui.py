"""kbchat WebUI (``streamlit run webui.py``): the dialogue page and the knowledge-base page.

Settings are read here only and handed to the pages; the pages reach the API through one
``ApiClient`` at ``settings.server.resolved_api_url`` (``KBCHAT_SERVER__API_URL`` overrides it).
"""

from __future__ import annotations

import streamlit as st

from configs import load_settings
from webui_pages import dialogue, knowledge_base
from webui_pages.api_client import ApiClient
from webui_pages.common import UIContext
from webui_pages.i18n import LANGUAGES, pick_language, translate, uploader_style

LANG_PARAM = "lang"
# Conversation titles read as a list, not as centred buttons.
STYLE = """<style>
.st-key-conv_list { gap: 0.1rem; }
.st-key-conv_list button, .st-key-conv_list button > div { justify-content: flex-start; text-align: left; }
</style>"""
LANG_KEY = "ui_lang"


@st.cache_resource(show_spinner=False)
def _api_client(base_url: str, api_key: str | None, timeout: float) -> ApiClient:
    # One pooled HTTP client per API, shared by every browser session of this process.
    return ApiClient(base_url, api_key=api_key, timeout=timeout)


def _language() -> str:
    """The chosen UI language: the picker's value, else the URL's (a reload), else the browser's."""
    if st.session_state.get(LANG_KEY) not in LANGUAGES:
        st.session_state[LANG_KEY] = pick_language(st.query_params.get(LANG_PARAM), st.context.locale)
    return st.session_state[LANG_KEY]


def _language_picker(lang: str) -> None:
    # Drawn last so the sidebar starts with what matters; its value is read before the page draws.
    st.sidebar.selectbox(
        ":material/language: " + " / ".join(translate(code, "app.language") for code in LANGUAGES),
        list(LANGUAGES),
        format_func=LANGUAGES.get,
        key=LANG_KEY,
    )
    if st.query_params.get(LANG_PARAM) != lang:
        st.query_params[LANG_PARAM] = lang


def main() -> None:
    st.set_page_config(page_title="kbchat", page_icon=":material/forum:", layout="wide")
    settings = load_settings()
    key = settings.server.api_key
    api = _api_client(
        settings.server.resolved_api_url,
        key.get_secret_value() if key is not None else None,
        settings.server.webui_timeout,
    )
    lang = _language()
    st.html(STYLE.replace("</style>", uploader_style(lang, settings.kb.max_upload_mb) + "</style>"))
    ctx = UIContext(settings=settings, api=api, lang=lang)

    def chat_page() -> None:
        dialogue.render(ctx)

    def kb_page() -> None:
        knowledge_base.render(ctx)

    page = st.navigation(
        [
            st.Page(chat_page, title=ctx.t("app.page_chat"), icon=":material/chat:", url_path="chat", default=True),
            st.Page(kb_page, title=ctx.t("app.page_kb"), icon=":material/library_books:", url_path="knowledge_base"),
        ]
    )
    page.run()
    _language_picker(lang)
    st.sidebar.caption(ctx.t("app.api_at", url=api.base_url))


main()
