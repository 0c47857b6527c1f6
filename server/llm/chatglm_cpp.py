"""Adapter for ChatGLM models run in-process by the optional ``chatglm-cpp`` package."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from configs.settings import LLMModelConfig
from server.llm.base import BAD_RESPONSE, UNAVAILABLE, ChatModel, LLMError, Message, Sampling

logger = logging.getLogger(__name__)

_DONE = object()


def _default_pipeline_factory(model_path: str) -> Any:
    try:
        import chatglm_cpp  # noqa: PLC0415 - optional dependency, imported only when used
    except ImportError as exc:
        raise LLMError(
            "the chatglm_cpp provider needs the optional package chatglm-cpp: "
            "CMAKE_POLICY_VERSION_MINIMUM=3.5 pip install 'kbchat[chatglm]'",
            code=UNAVAILABLE,
        ) from exc
    return chatglm_cpp.Pipeline(model_path)


class ChatGLMCppModel(ChatModel):
    """A ChatGLM GGML model file loaded in this process; generation runs in a worker thread."""

    def __init__(
        self,
        name: str,
        config: LLMModelConfig,
        default_temperature: float = 0.7,
        pipeline_factory: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(name, config, default_temperature)
        self.model_path = str(config.options.get("model_path") or config.model)
        self._factory = pipeline_factory or _default_pipeline_factory
        self._pipeline: Any = None
        # The pipeline keeps one KV cache, so generations must not overlap.
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._pipeline is None:
            # A path that is not a file would make chatglm_cpp try to convert (and fetch) a hub model.
            if not self.model_path or not Path(self.model_path).is_file():
                raise LLMError(
                    f"ChatGLM model file for {self.name!r} not found at {self.model_path!r}; "
                    "set options.model_path to a converted GGML file",
                    code=UNAVAILABLE,
                )
            logger.info("loading ChatGLM model %s", self.model_path)
            self._pipeline = self._factory(self.model_path)
        return self._pipeline

    def _generate(self, messages: list[Message], temperature: float, max_tokens: int) -> Iterator[str]:
        pipeline = self._load()
        params = {
            "max_length": self.config.context_window,
            "max_new_tokens": max_tokens,
            "max_context_length": max(256, self.config.context_window - max_tokens),
            "do_sample": temperature > 0,
            "temperature": temperature,
        }
        chat = getattr(pipeline, "chat", None)
        if chat is not None and "messages" in inspect.signature(chat).parameters:
            # chatglm-cpp >= 0.3: role/content messages, stream of DeltaMessage objects.
            accepted = inspect.signature(chat).parameters
            kwargs = {k: v for k, v in params.items() if k in accepted}
            for delta in chat([{"role": m["role"], "content": m["content"]} for m in messages], stream=True, **kwargs):
                text = getattr(delta, "content", delta)
                if text:
                    yield str(text)
            return
        stream_chat = getattr(pipeline, "stream_chat", None)
        if stream_chat is None:
            raise LLMError(
                f"chatglm_cpp pipeline for {self.name!r} has neither chat() nor stream_chat()", code=BAD_RESPONSE
            )
        # Older chatglm-cpp: history is a flat list of alternating user/assistant strings.
        history = [m["content"] for m in messages if m["role"] in ("user", "assistant")]
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        if system and history:
            history[0] = f"{system}\n\n{history[0]}"
        accepted = inspect.signature(stream_chat).parameters
        kwargs = {k: v for k, v in params.items() if k in accepted}
        for text in stream_chat(history, **kwargs):
            if text:
                yield str(text)

    async def _stream(self, messages: list[Message], sampling: Sampling) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()
        temp, limit, stop = sampling.temperature, sampling.max_tokens, sampling.stop

        def post(item: object) -> None:
            # The consumer may have stopped early and its event loop may be gone already.
            if cancelled.is_set():
                return
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:
                cancelled.set()

        def worker() -> None:
            try:
                with self._lock:
                    for text in self._generate(messages, temp, limit):
                        if cancelled.is_set():
                            break
                        post(text)
            except LLMError as exc:
                post(exc)
            except Exception as exc:  # noqa: BLE001 - anything the native library raises becomes an LLMError
                post(LLMError(f"ChatGLM model {self.name!r} failed: {exc}", code=BAD_RESPONSE))
            finally:
                post(_DONE)

        thread = threading.Thread(target=worker, name=f"chatglm-{self.name}", daemon=True)
        thread.start()
        try:
            buffer = ""
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, LLMError):
                    raise item
                buffer += item
                if stop and any(s in buffer for s in stop):
                    cut = min(buffer.index(s) for s in stop if s in buffer)
                    tail = item[: max(0, len(item) - (len(buffer) - cut))]
                    if tail:
                        yield tail
                    return
                yield item
        finally:
            cancelled.set()
