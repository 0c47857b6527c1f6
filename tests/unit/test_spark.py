"""The Spark adapter against a fake Spark websocket server that checks signatures like the real one."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs, urlparse

import pytest

from configs.settings import LLMModelConfig
from server.llm.base import LLMError
from server.llm.spark import SparkModel, auth_url, sign
from tests.fakes.fake_spark import FakeSpark
from tests.fakes.fixtures import free_port


@pytest.fixture
def spark():
    with FakeSpark() as server:
        yield server


def make_model(server: FakeSpark, *, secret: str | None = None, timeout: float = 5.0, **options) -> SparkModel:
    config = LLMModelConfig(
        kind="spark",
        base_url=server.base_url,
        api_key=server.api_key,
        api_secret=secret or server.api_secret,
        timeout=timeout,
        max_tokens=256,
        options={"app_id": server.app_id, **options},
    )
    return SparkModel("spark", config)


async def collect(model: SparkModel, messages: list[dict], **kw) -> list[str]:
    return [delta async for delta in model.stream(messages, **kw)]


def test_signature_matches_the_documented_recipe():
    # Expected value computed with `openssl dgst -sha256 -hmac s -binary | base64` over the same text.
    date = "Mon, 01 Jan 2024 00:00:00 GMT"
    url = auth_url("wss://spark-api.xf-yun.com/v3.5/chat", "k", "s", date=date)
    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    assert query["date"] == date and query["host"] == "spark-api.xf-yun.com"
    auth = base64.b64decode(query["authorization"]).decode()
    expected_sig = sign("s", "spark-api.xf-yun.com", date, "/v3.5/chat")
    assert auth == (
        f'api_key="k", algorithm="hmac-sha256", headers="host date request-line", signature="{expected_sig}"'
    )
    assert expected_sig == "pNGKr71iJgmbE92obUCqfz6f5NG71wc9/4een+lLZrU="


def test_spark_streams_frames_until_status_two(spark):
    spark.queue("中华人民共和国民法典第一条")
    model = make_model(spark)
    deltas = asyncio.run(collect(model, [{"role": "user", "content": "你好"}], temperature=0.3))
    assert len(deltas) > 2
    assert "".join(deltas) == "中华人民共和国民法典第一条"
    request = spark.requests[0]
    assert request["header"]["app_id"] == spark.app_id
    assert request["parameter"]["chat"] == {"domain": "generalv3.5", "temperature": 0.3, "max_tokens": 256}
    assert request["payload"]["message"]["text"] == [{"role": "user", "content": "你好"}]
    assert spark.paths == ["/v3.5/chat"]


def test_spark_version_selects_domain_and_path(spark):
    model = make_model(spark, version="v1.5")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    asyncio.run(model.complete(messages))
    assert spark.paths == ["/v1.1/chat"]
    assert spark.requests[0]["parameter"]["chat"]["domain"] == "general"
    # v1.5 has no system role: the system text goes in front of the first user turn.
    assert spark.requests[0]["payload"]["message"]["text"] == [{"role": "user", "content": "Be brief.\n\nhi"}]


def test_spark_never_sends_zero_max_tokens(spark):
    model = make_model(spark)
    answer = asyncio.run(model.complete([{"role": "user", "content": "hi"}], max_tokens=0))
    assert answer == FakeSpark.default_reply
    assert spark.requests[0]["parameter"]["chat"]["max_tokens"] == 1


def test_spark_bad_signature_is_rejected_with_401(spark):
    model = make_model(spark, secret="wrong-secret")
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(model, [{"role": "user", "content": "hi"}]))
    assert "HTTP 401" in info.value.message and "api_secret" in info.value.message
    assert spark.rejected == ["HMAC signature does not match"]
    assert spark.requests == []


def test_spark_error_frame_becomes_llm_error_with_code_and_message(spark):
    spark.queue_error(10013, "input content audit failed")
    model = make_model(spark)
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(model, [{"role": "user", "content": "hi"}]))
    assert info.value.message == "Spark error 10013: input content audit failed"
    assert info.value.status == 502


def test_spark_quota_error_is_reported_as_overloaded(spark):
    spark.queue_error(11202, "QPS limit exceeded")
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(make_model(spark), [{"role": "user", "content": "hi"}]))
    assert info.value.code == "llm_overloaded"


def test_spark_connection_closed_mid_answer(spark):
    spark.queue_close_after("abcdefghijklmnop", 2)
    model = make_model(spark)
    received: list[str] = []

    async def run():
        async for delta in model.stream([{"role": "user", "content": "hi"}]):
            received.append(delta)

    with pytest.raises(LLMError) as info:
        asyncio.run(run())
    assert received == ["abcd", "efgh"]
    assert "closed the connection before the answer ended" in info.value.message


def test_spark_malformed_frame(spark):
    spark.queue_bad_frame()
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(make_model(spark), [{"role": "user", "content": "hi"}]))
    assert info.value.code == "llm_bad_response" and "malformed frame" in info.value.message


def test_spark_timeout(spark):
    spark.queue_hang(3)
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(make_model(spark, timeout=0.3), [{"role": "user", "content": "hi"}]))
    assert info.value.code == "llm_timeout" and "0.3s" in info.value.message


def test_spark_unreachable():
    config = LLMModelConfig(
        kind="spark", base_url=f"ws://127.0.0.1:{free_port()}", api_key="k", api_secret="s", options={"app_id": "a"}
    )
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(SparkModel("spark", config), [{"role": "user", "content": "hi"}]))
    assert info.value.code == "llm_unreachable" and "cannot reach Spark server" in info.value.message


def test_spark_without_credentials_says_what_is_missing():
    config = LLMModelConfig(kind="spark", options={"app_id": "a"})
    with pytest.raises(LLMError) as info:
        asyncio.run(collect(SparkModel("spark", config), [{"role": "user", "content": "hi"}]))
    assert "api_key" in info.value.message and "api_secret" in info.value.message


def test_spark_unknown_version_is_refused():
    config = LLMModelConfig(kind="spark", options={"app_id": "a", "version": "v9"})
    with pytest.raises(LLMError, match="unknown Spark version 'v9'"):
        SparkModel("spark", config)
