"""The prompt a built-in model's server makes of chat messages, so an answer can be begun for the model.

llama_cpp.server turns chat messages into one prompt with the chat template stored in the GGUF file.
To hand the model the first words of its answer (a "lead"), kbchat renders the same template itself,
appends the lead and asks the server for a plain completion of that text. The prompt's tokens are those
of the chat request, so the server's cached prefix (system prompt, history) is reused as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from configs import Settings
from configs.settings import LLMModelConfig
from server.llm.base import Message
from server.llm.tokenizers import Lazy, builtin_gguf, gguf_vocabulary


@dataclass(frozen=True)
class PromptFormat:
    """Chat messages to the model's prompt text, ending where the assistant's answer begins."""

    render: Callable[[list[Message]], str]
    stop: tuple[str, ...]


def gguf_prompt_format(path: Path) -> PromptFormat | None:
    """The GGUF file's own chat template, rendered as llama_cpp.server renders it; None when the file has
    none, or has one the server replaces with a named format of its own."""
    from llama_cpp import llama_chat_format

    vocab = gguf_vocabulary(path)
    template = vocab.metadata.get("tokenizer.chat_template")
    if not template or llama_chat_format.guess_chat_format_from_gguf_metadata(vocab.metadata) is not None:
        return None

    def text(token: int) -> str:
        return vocab.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

    eos, bos = text(vocab.token_eos()), text(vocab.token_bos())
    formatter = llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def render(messages: list[Message]) -> str:
        prompt: str = formatter(messages=cast(Any, messages)).prompt
        return prompt

    return PromptFormat(render=render, stop=(eos,) if eos else ())


def builtin_prompt_format(settings: Settings, config: LLMModelConfig) -> Lazy[PromptFormat] | None:
    """For a built-in model served with its GGUF's own template: its prompt format, loaded on first use."""
    from server.llm.local.builtin import BUILTIN_MODELS

    model = BUILTIN_MODELS.get(config.builtin or "")
    if model is None or model.chat_format:
        return None

    def load() -> PromptFormat | None:
        path = builtin_gguf(settings, config)
        return gguf_prompt_format(path) if path is not None else None

    return Lazy(f"the chat template of {config.builtin}", load)
