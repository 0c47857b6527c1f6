"""Token counters: a built-in model counts with its own GGUF vocabulary, others fall back to the estimate."""

from __future__ import annotations

import pytest

from configs import Settings
from server.llm import tokenizers
from server.llm.local.assemble import ensure_weights
from server.llm.local.builtin import BUILTIN_MODELS
from server.llm.registry import LLMRegistry
from server.llm.tokenizers import LazyCounter, gguf_counter
from server.llm.tokens import approx_token_count

CHINESE = "我签了两年的劳动合同，公司说试用期六个月，这合法吗？"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        paths={"data_root": tmp_path},
        llm={
            "default_model": "small",
            "models": {
                "small": {"kind": "openai_compatible", "builtin": "smollm2-135m"},
                "openai": {"kind": "openai_compatible", "base_url": "https://api.openai.com/v1", "model": "gpt-4o"},
                "vllm": {"kind": "openai_compatible", "base_url": "http://10.0.0.2:8000/v1", "model": "qwen"},
            },
        },
    )


def test_builtin_model_counts_with_its_own_vocabulary_once_its_weights_are_ready(settings, monkeypatch):
    monkeypatch.setattr(tokenizers, "RETRY_SECONDS", 0.0)
    model = LLMRegistry(settings).get("small")
    # Weights not prepared in this data folder yet: the estimate stands in.
    assert model.count_tokens(CHINESE) == approx_token_count(CHINESE)
    path = ensure_weights(BUILTIN_MODELS["smollm2-135m"], settings.paths.model_dir)
    exact = gguf_counter(path)
    # SmolLM2's vocabulary is English: Chinese costs it more tokens than the estimate says.
    assert exact(CHINESE) > approx_token_count(CHINESE)
    assert model.count_tokens(CHINESE) == exact(CHINESE)
    assert model.count_tokens("") == 0


def test_other_models_use_the_estimate_or_tiktoken(settings):
    registry = LLMRegistry(settings)
    assert registry.get("vllm").token_counter is approx_token_count
    counter = registry.get("openai").token_counter
    assert isinstance(counter, LazyCounter) and counter.label == "openai"


def test_a_counter_that_cannot_load_falls_back_to_the_estimate_and_retries_later(monkeypatch):
    monkeypatch.setattr(tokenizers, "RETRY_SECONDS", 3600.0)
    calls = []

    def load():
        calls.append(1)
        raise OSError("no encoding files offline")

    counter = LazyCounter("m", load)
    assert counter("hello world") == approx_token_count("hello world")
    assert counter("hello again") == approx_token_count("hello again")
    assert len(calls) == 1  # not retried within RETRY_SECONDS


def test_loading_a_vocabulary_prints_no_llama_cpp_warning(tmp_path, capfd):
    path = ensure_weights(BUILTIN_MODELS["smollm2-135m"], tmp_path / "models")
    capfd.readouterr()
    tokenizers.gguf_vocabulary.cache_clear()
    tokenizers.gguf_vocabulary(path)
    # llama.cpp warns of a "possible training context overflow" for a vocabulary's context; not shown to users
    assert "overflow" not in capfd.readouterr().err
