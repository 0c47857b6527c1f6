"""The chatglm_cpp adapter. No ChatGLM weights exist offline, so generation is covered with an
injected stand-in pipeline object exposing chatglm-cpp's Python API; the real package is only
checked for importability."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from configs.settings import LLMModelConfig
from server.llm.base import LLMError
from server.llm.chatglm_cpp import ChatGLMCppModel


@dataclass
class Delta:
    role: str
    content: str


class ScriptedPipeline:
    """Mimics chatglm_cpp.Pipeline.chat(messages, *, ..., stream=True) -> iterator of deltas."""

    def __init__(self, pieces: list[str], fail_after: int | None = None) -> None:
        self.pieces = pieces
        self.fail_after = fail_after
        self.calls: list[dict] = []
        self.threads: set[str] = set()

    def chat(self, messages, *, max_length=2048, max_new_tokens=-1, max_context_length=512, do_sample=True,
             top_k=0, top_p=0.7, temperature=0.95, repetition_penalty=1.0, stream=False):  # fmt: skip
        self.calls.append({"messages": messages, "max_new_tokens": max_new_tokens, "temperature": temperature})
        self.threads.add(threading.current_thread().name)
        for i, piece in enumerate(self.pieces):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("ggml_new_tensor: not enough space in the context's memory pool")
            yield Delta("assistant", piece)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "chatglm3-ggml.bin"
    path.write_bytes(b"not really a model")
    return path


def make_model(path, pipeline) -> ChatGLMCppModel:
    config = LLMModelConfig(kind="chatglm_cpp", options={"model_path": str(path)}, max_tokens=100)
    return ChatGLMCppModel("glm", config, pipeline_factory=lambda p: pipeline)


async def collect(model, **kw):
    return [d async for d in model.stream([{"role": "user", "content": "你好"}], **kw)]


def test_streams_pipeline_deltas_from_worker_thread(model_file):
    pipeline = ScriptedPipeline(["你好", "，我是", "ChatGLM"])
    deltas = asyncio.run(collect(make_model(model_file, pipeline), temperature=0.3, max_tokens=0))
    assert deltas == ["你好", "，我是", "ChatGLM"]
    call = pipeline.calls[0]
    assert call["messages"] == [{"role": "user", "content": "你好"}]
    assert call["max_new_tokens"] == 1 and call["temperature"] == 0.3
    assert pipeline.threads == {"chatglm-glm"}


def test_stop_sequence_cuts_the_answer(model_file):
    pipeline = ScriptedPipeline(["Answer: yes", "\nObservation: x", " more"])
    deltas = asyncio.run(collect(make_model(model_file, pipeline), stop=["\nObservation:"]))
    assert "".join(deltas) == "Answer: yes"


def test_native_failure_becomes_llm_error(model_file):
    pipeline = ScriptedPipeline(["a", "b", "c"], fail_after=1)
    with pytest.raises(LLMError, match="not enough space"):
        asyncio.run(collect(make_model(model_file, pipeline)))


def test_missing_model_file_is_reported_before_loading(tmp_path):
    loaded = []
    config = LLMModelConfig(kind="chatglm_cpp", options={"model_path": str(tmp_path / "absent.bin")})
    model = ChatGLMCppModel("glm", config, pipeline_factory=lambda p: loaded.append(p))
    with pytest.raises(LLMError, match="not found"):
        asyncio.run(collect(model))
    assert loaded == []


def test_real_chatglm_cpp_package_imports():
    chatglm_cpp = pytest.importorskip("chatglm_cpp")
    assert hasattr(chatglm_cpp, "Pipeline") and callable(chatglm_cpp.Pipeline.chat)
