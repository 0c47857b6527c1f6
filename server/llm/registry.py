"""Chat models by name: resolves settings into provider adapters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from configs import Settings
from configs.settings import LLMModelConfig
from server.errors import AppError, NotFound
from server.llm.base import ChatModel
from server.llm.chat_template import builtin_prompt_format
from server.llm.local.status import local_base_url
from server.llm.tokenizers import builtin_tokenizer, token_counter

logger = logging.getLogger(__name__)


def _openai_compatible(name: str, config: LLMModelConfig, temperature: float) -> ChatModel:
    from server.llm.openai_compatible import OpenAICompatibleModel

    return OpenAICompatibleModel(name, config, temperature)


def _spark(name: str, config: LLMModelConfig, temperature: float) -> ChatModel:
    from server.llm.spark import SparkModel

    return SparkModel(name, config, temperature)


def _chatglm_cpp(name: str, config: LLMModelConfig, temperature: float) -> ChatModel:
    from server.llm.chatglm_cpp import ChatGLMCppModel

    return ChatGLMCppModel(name, config, temperature)


@dataclass(frozen=True)
class Provider:
    """How to build a provider's adapter, and what it can do (known before its SDK is imported)."""

    build: Callable[[str, LLMModelConfig, float], ChatModel]
    calls_tools: bool


# Provider kind -> its adapter factory(name, resolved config, default temperature) and capabilities;
# ``calls_tools`` agrees with the adapter class's CALLS_TOOLS (a unit test checks).
PROVIDERS: dict[str, Provider] = {
    "openai_compatible": Provider(_openai_compatible, calls_tools=True),
    "spark": Provider(_spark, calls_tools=False),
    "chatglm_cpp": Provider(_chatglm_cpp, calls_tools=False),
}


class ModelConfigError(AppError):
    """The models' settings ask for something their providers cannot do."""

    code = "invalid_model_settings"


def check_models(models: Mapping[str, LLMModelConfig]) -> None:
    """Refuse, at start-up, a model configured with a capability its provider lacks."""
    problems = [
        f"model {name!r}: supports_tools is true, but the {config.kind} provider cannot call tools"
        for name, config in models.items()
        if config.supports_tools and not PROVIDERS[config.kind].calls_tools
    ]
    if problems:
        raise ModelConfigError("; ".join(problems) + " (set supports_tools: false)")


class LLMRegistry:
    """The configured chat models; adapters are created on first use and reused."""

    def __init__(self, settings: Settings) -> None:
        check_models(settings.llm.models)
        self.settings = settings
        self._models: dict[str, ChatModel] = {}
        self._lock = threading.Lock()

    @property
    def default_name(self) -> str:
        return self.settings.llm.default_model

    def names(self) -> list[str]:
        return list(self.settings.llm.models)

    def local_base_url(self) -> str:
        return local_base_url(self.settings)

    def config(self, name: str | None = None) -> LLMModelConfig:
        """The model's settings with built-in models resolved to the bundled server's URL and alias."""
        name = name or self.default_name
        try:
            raw = self.settings.llm.models[name]
        except KeyError:
            raise NotFound(
                f"unknown model {name!r}; known models: {', '.join(self.names()) or 'none'}", code="model_not_found"
            ) from None
        if raw.builtin:
            # The bundled server accepts the same API key as the rest of kbchat.
            update: dict[str, object] = {"base_url": self.local_base_url(), "model": raw.builtin}
            if raw.api_key is None and self.settings.server.api_key is not None:
                update["api_key"] = self.settings.server.api_key
            return raw.model_copy(update=update)
        return raw

    def get(self, name: str | None = None) -> ChatModel:
        name = name or self.default_name
        with self._lock:
            model = self._models.get(name)
            if model is None:
                config = self.config(name)
                model = PROVIDERS[config.kind].build(name, config, self.settings.llm.temperature)
                model.token_counter = token_counter(self.settings, name, config)
                model.prompt_format = builtin_prompt_format(self.settings, config)
                model.tokenizer = builtin_tokenizer(self.settings, name, config)
                self._models[name] = model
            return model

    def built(self) -> list[str]:
        """Names of the models whose adapters exist already."""
        with self._lock:
            return list(self._models)

    def warm_up(self) -> None:
        """Create the default model's adapter and token counter now: the first use imports the provider's SDK
        (about half a second for openai) and may load the model's vocabulary (about a second)."""
        try:
            self.get().count_tokens("warm-up")
        except Exception:  # noqa: BLE001 - a bad default is reported when it is used, with its real error
            logger.warning("could not prepare the default chat model %r", self.default_name, exc_info=True)

    def describe(self) -> list[dict]:
        """Name, kind and whether each model is built in, for listings."""
        out = []
        for name in self.names():
            config = self.config(name)
            out.append(
                {
                    "name": name,
                    "kind": config.kind,
                    "builtin": config.builtin,
                    "default": name == self.default_name,
                    "context_window": config.context_window,
                    "supports_tools": config.supports_tools,
                }
            )
        return out

    async def aclose(self) -> None:
        with self._lock:
            models, self._models = list(self._models.values()), {}
        for model in models:
            await model.aclose()
