"""Named prompt templates: loaded from a YAML file whose path comes from settings.chat.prompts_file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml

# Templates the chat services rely on; a prompts file must define every one of them.
REQUIRED_TEMPLATES = (
    "default",
    "kb_default",
    "search_default",
    "agent_tools",
    "agent_react",
    "translate_to_en",
    "translate_to_zh",
    "title",
)
# Templates the chat services use on their own (titles, translation, the agent's built-in prompts):
# choosing one as a chat's system prompt would only confuse the model.
INTERNAL_TEMPLATES = frozenset(
    {"title", "translate_to_en", "translate_to_zh", "agent_react", "agent_tools", "passages_question", "kb_question",
     "kb_no_match", "kb_unsupported", "kb_unsupported_closest", "kb_unsupported_code", "kb_answer_lead",
     "kb_answer_quote", "kb_answer_quote_more", "kb_answer_quotes_end", "kb_unverified_figures", "kb_cited_elsewhere",
     "condense_question", "hypothetical_answer", "conversation_files"}
)
# A template's variant for questions in one language is named <template><LANG_SUFFIX><lang>, e.g.
# kb_default_zh; the chat services pick it for such questions, and lists offer only the base name.
LANG_SUFFIX = "_"
LANGS = ("zh", "en")
# The naming rule documented at the top of configs/prompts.yaml; any other name belongs to "llm".
MODE_PREFIXES = {"kb_": "kb", "search_": "search", "agent_": "agent"}


def is_language_variant(name: str, names: set[str]) -> bool:
    """Whether ``name`` is another template's variant for one language (kb_default_zh of kb_default)."""
    base, sep, lang = name.rpartition(LANG_SUFFIX)
    return bool(sep) and lang in LANGS and base in names


def templates_by_mode(names: Iterable[str]) -> dict[str, list[str]]:
    """User-selectable template names grouped by the chat mode their name prefix points to."""
    names_set = set(names)
    grouped: dict[str, list[str]] = {mode: [] for mode in ("llm", *MODE_PREFIXES.values())}
    for name in sorted(names_set):
        if name in INTERNAL_TEMPLATES or is_language_variant(name, names_set):
            continue
        mode = next((m for prefix, m in MODE_PREFIXES.items() if name.startswith(prefix)), "llm")
        grouped[mode].append(name)
    return grouped


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class PromptError(ValueError):
    """The prompts file is missing, unreadable or lacks a required template."""


def load_prompts(path: Path | str) -> dict[str, str]:
    """Read ``name: template`` pairs from ``path`` and check the required names are present."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PromptError(f"cannot read prompt templates from {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PromptError(f"prompt templates file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise PromptError(f"prompt templates file {path} must map template names to text")
    missing = [name for name in REQUIRED_TEMPLATES if name not in data]
    if missing:
        raise PromptError(f"prompt templates file {path} lacks: {', '.join(missing)}")
    return dict(data)


def render(template: str, **values: object) -> str:
    """Fill ``{name}`` placeholders that have a value; other braces (JSON, code) stay as written."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER.sub(fill, template)
