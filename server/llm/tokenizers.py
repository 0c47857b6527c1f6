"""Token counters for prompt budgets: the model's own vocabulary where kbchat can reach it, else the estimate.

* Built-in models (and a GGUF served by ``llm.local.gguf``): the GGUF file's vocabulary, loaded by
  llama.cpp without its weights (about a second, once per process).
* Models of api.openai.com: ``tiktoken``, when its encoding files can be had (they are downloaded on
  first use, so offline machines fall back).
* Anything else, or when the above fail: ``approx_token_count``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlparse

from configs import Settings
from configs.settings import LLMModelConfig
from server.llm.tokens import approx_token_count

logger = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]
T = TypeVar("T")
# Seconds before a vocabulary that could not be loaded (e.g. weights still being assembled) is tried again.
RETRY_SECONDS = 30.0


class Lazy(Generic[T]):
    """What ``load()`` makes, made on first use; None while it can't be made (tried again after RETRY_SECONDS)."""

    def __init__(self, label: str, load: Callable[[], T | None]) -> None:
        self.label = label
        self._load = load
        self._value: T | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    def get(self) -> T | None:
        if self._value is not None:
            return self._value
        with self._lock:
            if self._value is None and time.monotonic() >= self._next_try:
                try:
                    self._value = self._load()
                except Exception as exc:  # noqa: BLE001 - any failure leaves the fallback in place
                    logger.info("%s: not available yet (%s)", self.label, exc)
                if self._value is None:
                    self._next_try = time.monotonic() + RETRY_SECONDS
            return self._value


class LazyCounter(Lazy[TokenCounter]):
    """Counts with the counter ``load()`` makes on first use; the estimate while it can't be made."""

    def __init__(self, label: str, load: Callable[[], TokenCounter | None]) -> None:
        super().__init__(label, load)

    def __call__(self, text: str) -> int:
        counter = self.get()
        return counter(text) if counter is not None else approx_token_count(text)


@functools.cache
def _dropping_log_callback() -> Any:
    """A llama.cpp log callback that drops every line (kept alive here: llama.cpp holds only its address)."""
    import llama_cpp

    @llama_cpp.llama_log_callback
    def drop(level: int, text: bytes, user_data: Any) -> None:
        return None

    return drop


@contextmanager
def _llama_log_dropped() -> Iterator[None]:
    """llama.cpp's log lines dropped, then llama-cpp-python's own printer put back. A vocabulary has no training
    context, so llama.cpp warns of a "possible training context overflow" when a context is made for it, and
    llama-cpp-python prints its warnings whatever ``verbose`` says (it reads them as errors)."""
    import ctypes

    import llama_cpp
    from llama_cpp import _logger

    llama_cpp.llama_log_set(_dropping_log_callback(), ctypes.c_void_p(0))
    try:
        yield
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


@functools.lru_cache(maxsize=4)
def gguf_vocabulary(path: Path) -> Any:
    """A GGUF file's vocabulary and metadata, loaded by llama.cpp without the weights (once per process)."""
    from llama_cpp import Llama

    with _llama_log_dropped():
        vocab = Llama(str(path), vocab_only=True, n_ctx=64, verbose=False)
    # Freed before the interpreter tears down llama_cpp's module: later, its finaliser fails noisily.
    atexit.register(vocab.close)
    return vocab


@dataclass(frozen=True)
class Tokenizer:
    """A model's own tokenizer: text to token ids, and one token id back to its text."""

    encode: Callable[[str], list[int]]
    decode: Callable[[int], str]


@functools.lru_cache(maxsize=4)
def gguf_tokenizer(path: Path) -> Tokenizer:
    """A GGUF file's own tokenizer (llama.cpp loads the vocabulary only, not the weights); one per file, so one
    lock guards each vocabulary however many counters and models use it."""
    vocab = gguf_vocabulary(path)
    lock = threading.Lock()

    def encode(text: str) -> list[int]:
        if not text:
            return []
        with lock:
            return list(vocab.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def decode(token: int) -> str:
        with lock:
            return str(vocab.detokenize([token]).decode("utf-8", "replace"))

    return Tokenizer(encode, decode)


def gguf_counter(path: Path) -> TokenCounter:
    """Count with a GGUF file's own vocabulary."""
    encode = gguf_tokenizer(path).encode
    return lambda text: len(encode(text))


def tiktoken_counter(model: str) -> TokenCounter:
    import tiktoken

    try:
        encoding: Any = tiktoken.encoding_for_model(model)
    except KeyError:
        encoding = tiktoken.get_encoding("o200k_base")
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def builtin_gguf(settings: Settings, config: LLMModelConfig) -> Path | None:
    from server.llm.local.assemble import assembled_path, is_ready
    from server.llm.local.builtin import BUILTIN_MODELS, locate_files

    if settings.llm.local.gguf:
        return Path(settings.llm.local.gguf)
    model = BUILTIN_MODELS.get(config.builtin or "")
    if model is None or not is_ready(model, settings.paths.model_dir):
        return None
    return locate_files(model)[0] if model.single_file else assembled_path(model, settings.paths.model_dir)


def _from_builtin_gguf(settings: Settings, config: LLMModelConfig, make: Callable[[Path], T]) -> Callable[[], T | None]:
    """A loader of what ``make`` builds from a built-in model's GGUF file; None while the file is not ready."""
    def load() -> T | None:
        path = builtin_gguf(settings, config)
        return make(path) if path is not None else None

    return load


def builtin_tokenizer(settings: Settings, name: str, config: LLMModelConfig) -> Lazy[Tokenizer] | None:
    """A built-in model's own tokenizer, loaded on first use; None for other models, whose token ids kbchat
    cannot know."""
    return Lazy(name, _from_builtin_gguf(settings, config, gguf_tokenizer)) if config.builtin else None


def token_counter(settings: Settings, name: str, config: LLMModelConfig) -> TokenCounter:
    """The best counter kbchat can have for this model (see the module's description)."""
    if config.builtin:
        return LazyCounter(name, _from_builtin_gguf(settings, config, gguf_counter))
    host = urlparse(config.base_url).hostname or ""
    if host == "openai.com" or host.endswith(".openai.com"):
        return LazyCounter(name, lambda: tiktoken_counter(config.model or name))
    return approx_token_count
