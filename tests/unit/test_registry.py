"""The model registry: name resolution, built-in models, provider factories; and token counting."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from configs import Settings
from server.errors import NotFound
from server.llm.chatglm_cpp import ChatGLMCppModel
from server.llm.openai_compatible import OpenAICompatibleModel
from server.llm.registry import PROVIDERS, LLMRegistry, ModelConfigError
from server.llm.spark import SparkModel
from server.llm.tokens import approx_token_count


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        paths={"data_root": tmp_path},
        llm={
            "default_model": "smollm2-135m",
            "temperature": 0.4,
            "local": {"host": "127.0.0.1", "port": 23456},
            "models": {
                "smollm2-135m": {"kind": "openai_compatible", "builtin": "smollm2-135m", "context_window": 2048},
                "remote": {"kind": "openai_compatible", "base_url": "http://10.0.0.1:8000/v1", "model": "gpt-x"},
                "spark": {"kind": "spark", "options": {"app_id": "a", "version": "v3.0"}},
                "glm": {"kind": "chatglm_cpp", "options": {"model_path": "/nowhere/chatglm3.bin"}},
            },
        },
    )


def test_providers_cover_every_kind():
    assert set(PROVIDERS) == {"openai_compatible", "spark", "chatglm_cpp"}


def test_provider_capabilities_agree_with_their_adapters():
    adapters = {"openai_compatible": OpenAICompatibleModel, "spark": SparkModel, "chatglm_cpp": ChatGLMCppModel}
    for kind, provider in PROVIDERS.items():
        assert provider.calls_tools is adapters[kind].CALLS_TOOLS, kind


def test_tools_on_a_provider_without_tool_calling_is_refused_at_start_up(settings):
    settings.llm.models["spark"].supports_tools = True
    with pytest.raises(ModelConfigError, match="'spark'.*cannot call tools"):
        LLMRegistry(settings)
    settings.llm.models["spark"].supports_tools = False
    settings.llm.models["remote"].supports_tools = True
    assert LLMRegistry(settings).get("remote").supports_tools


def test_builtin_model_resolves_to_local_server_and_alias(settings):
    registry = LLMRegistry(settings)
    config = registry.config("smollm2-135m")
    assert config.base_url == "http://127.0.0.1:23456/v1"
    assert config.model == "smollm2-135m"
    assert config.builtin and not registry.config("remote").builtin
    # The settings themselves are not modified.
    assert settings.llm.models["smollm2-135m"].base_url == ""


def test_wildcard_bind_address_is_reached_on_loopback(settings):
    settings.llm.local.host = "0.0.0.0"
    assert LLMRegistry(settings).config("smollm2-135m").base_url == "http://127.0.0.1:23456/v1"


def test_default_model_and_none_name(settings):
    registry = LLMRegistry(settings)
    assert registry.default_name == "smollm2-135m"
    model = registry.get(None)
    assert model.name == "smollm2-135m" and isinstance(model, OpenAICompatibleModel)
    assert model.default_temperature == 0.4
    assert registry.get("smollm2-135m") is model  # adapters are reused


def test_unknown_model_is_not_found_with_known_names(settings):
    with pytest.raises(NotFound) as info:
        LLMRegistry(settings).get("gpt-99")
    assert info.value.status == 404
    assert "gpt-99" in info.value.message
    assert all(name in info.value.message for name in ("smollm2-135m", "remote", "spark", "glm"))


def test_each_kind_builds_its_adapter(settings):
    registry = LLMRegistry(settings)
    assert isinstance(registry.get("remote"), OpenAICompatibleModel)
    spark = registry.get("spark")
    assert isinstance(spark, SparkModel) and spark.domain == "generalv3" and spark.url.endswith("/v3.1/chat")
    assert isinstance(registry.get("glm"), ChatGLMCppModel)
    assert registry.names() == ["smollm2-135m", "remote", "spark", "glm"]


def test_describe_lists_models_with_default_flag(settings):
    items = {item["name"]: item for item in LLMRegistry(settings).describe()}
    assert items["smollm2-135m"]["default"] and items["smollm2-135m"]["builtin"] == "smollm2-135m"
    assert not items["remote"]["default"] and items["remote"]["kind"] == "openai_compatible"


def test_default_settings_ship_both_builtin_models(tmp_path):
    registry = LLMRegistry(Settings(paths={"data_root": tmp_path}))
    assert {"qwen2.5-coder-1.5b", "smollm2-135m"} <= set(registry.names())
    assert registry.config("qwen2.5-coder-1.5b").model == "qwen2.5-coder-1.5b"


def test_count_tokens_counts_cjk_characters_individually(settings):
    model = LLMRegistry(settings).get("remote")
    assert model.count_tokens("") == 0
    assert model.count_tokens("中华人民共和国") == 7
    assert approx_token_count("hello world") == 3  # 2 words * 1.3, rounded up
    assert approx_token_count("第一条 hello") == 3 + 2
    assert approx_token_count("a " * 100) > approx_token_count("a " * 10)


def test_registry_closes_its_adapters(settings):
    registry = LLMRegistry(settings)
    first = registry.get("remote")
    asyncio.run(registry.aclose())
    assert registry.get("remote") is not first


def test_builtin_model_uses_the_server_api_key(settings):
    settings.server.api_key = SecretStr("s3cret")
    config = LLMRegistry(settings).config("smollm2-135m")
    assert config.api_key is not None and config.api_key.get_secret_value() == "s3cret"
    assert LLMRegistry(settings).config("remote").api_key is None


def test_the_token_estimate_does_not_let_long_unbroken_strings_through():
    assert approx_token_count("x" * 4000) >= 2000  # one pasted blob: not "2 tokens"
    assert approx_token_count("a1b2" * 1000) >= 2000  # letters and digits interleaved
    assert approx_token_count("订单号 20261202") == 3 + 8  # digits one each, as Qwen splits them
    assert approx_token_count("https://example.com/" + "Ab9" * 200) >= 300
