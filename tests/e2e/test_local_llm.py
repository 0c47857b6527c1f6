"""The real llama_cpp.server with SmolLM2 behind kbchat's queueing proxy, used through the openai SDK."""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time

import httpx
import openai
import pytest

from configs import Settings
from configs.prompts import load_prompts
from server.chat.context import ChatContext
from server.chat.rewrite import rewrites_by_default
from server.chat.schemas import ChatRequest
from server.cli import llm as llm_cli
from server.llm.local.assemble import ensure_weights
from server.llm.local.builtin import BUILTIN_MODELS
from server.llm.local.serve import ModelServer, ModelServerError
from server.llm.registry import LLMRegistry
from tests.fakes.fixtures import free_port

pytestmark = pytest.mark.llm

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def test_non_streaming_answer_through_openai_sdk(smollm2_server):
    client = openai.OpenAI(base_url=smollm2_server.base_url, api_key="not-needed", max_retries=0, timeout=60)
    result = client.chat.completions.create(model="smollm2-135m", messages=QUESTION, max_tokens=16, temperature=0)
    assert result.choices[0].message.content.strip()
    assert result.usage.prompt_tokens > 10 and 0 < result.usage.completion_tokens <= 16
    assert [m.id for m in client.models.list().data] == ["smollm2-135m"]


def test_streaming_answer_through_openai_sdk(smollm2_server):
    client = openai.OpenAI(base_url=smollm2_server.base_url, api_key="not-needed", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model="smollm2-135m", messages=QUESTION, max_tokens=16, temperature=0, stream=True
    )
    pieces, finish = [], None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert len([p for p in pieces if p]) >= 2
    assert "".join(pieces).strip() and finish in ("stop", "length")


def test_a_logit_bias_in_the_model_s_own_token_ids_keeps_a_word_out_of_the_answer(smollm2_server, tmp_path):
    """What chat.question_word_penalty relies on: the registry's model has SmolLM2's tokenizer, and the model
    server applies a bias given in its token ids (here strong enough to ban the word)."""
    settings = Settings(
        paths={"data_root": tmp_path},
        llm={"default_model": "smollm2-135m", "local": {"port": smollm2_server.port}},
    )
    ensure_weights(BUILTIN_MODELS["smollm2-135m"], settings.paths.model_dir)
    model = LLMRegistry(settings).get()
    tokenizer = model.tokenizer.get() if model.tokenizer is not None else None
    assert tokenizer is not None
    ask = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]

    banned = {token: -100.0 for word in ("Paris", " Paris", "paris", " paris", "PAR", "Par", " Par")
              for token in tokenizer.encode(word)}

    async def answer(bias: dict[int, float] | None) -> str:
        return "".join([d async for d in model.stream(ask, max_tokens=12, temperature=0, logit_bias=bias)])

    async def both() -> tuple[str, str]:
        return await answer(None), await answer(banned)

    free, biased = asyncio.run(both())
    assert "Paris" in free and "Paris" not in biased and biased.strip()


def test_registry_adapter_streams_from_local_model(smollm2_server, tmp_path):
    settings = Settings(
        paths={"data_root": tmp_path},
        llm={"default_model": "smollm2-135m", "local": {"port": smollm2_server.port}},
    )
    model = LLMRegistry(settings).get()

    async def run():
        return [d async for d in model.stream(QUESTION, max_tokens=12, temperature=0)]

    deltas = asyncio.run(run())
    assert len(deltas) >= 2 and "".join(deltas).strip()


def test_the_model_server_reports_the_prompt_speed_it_measured_and_auto_rewriting_follows_it(smollm2_server, tmp_path):
    speed = httpx.get(smollm2_server.base_url.removesuffix("/v1") + "/speed", timeout=10).json()
    assert speed["prompt_tokens"] > 100 and speed["start_up_tokens_per_s"] > 0
    # The start-up prompt was timed inside the model process too, and that timing, without HTTP, is what counts.
    assert speed["measured_on"] == "recent prompts" and speed["prompt_tokens_per_s"] > 0

    def resolved(min_speed: float) -> tuple[float | None, bool]:
        settings = Settings(
            paths={"data_root": tmp_path},
            llm={"default_model": "smollm2-135m", "local": {"port": smollm2_server.port}},
            chat={"rewrite_query": "auto", "rewrite_min_prompt_speed": min_speed},
        )
        model = LLMRegistry(settings).get()
        measured = asyncio.run(model.prompt_speed())
        return measured, rewrites_by_default(settings, model.config.builtin, measured)

    assert resolved(speed["prompt_tokens_per_s"] / 2) == (speed["prompt_tokens_per_s"], True)
    assert resolved(speed["prompt_tokens_per_s"] * 2) == (speed["prompt_tokens_per_s"], False)


def test_concurrent_chats_all_complete_without_interrupting_each_other(smollm2_server):
    client = openai.AsyncOpenAI(base_url=smollm2_server.base_url, api_key="x", max_retries=0, timeout=120)

    async def one(i: int) -> tuple[str, str | None]:
        stream = await client.chat.completions.create(
            model="smollm2-135m",
            messages=[{"role": "user", "content": f"Count from {i} to {i + 5}."}],
            max_tokens=20,
            temperature=0,
            stream=True,
        )
        text, finish = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        return text, finish

    async def run():
        try:
            return await asyncio.gather(*(one(i) for i in range(4)))
        finally:
            await client.close()

    results = asyncio.run(run())
    # llama_cpp.server alone would cut earlier streams short when a new request arrives.
    assert all(text.strip() and finish in ("stop", "length") for text, finish in results)


def test_unloadable_gguf_fails_loudly_with_model_output(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 256)
    settings = Settings(paths={"data_root": tmp_path}, llm={"local": {"port": free_port(), "start_timeout": 60}})
    server = ModelServer.for_gguf(settings, bad, "broken")
    with pytest.raises(ModelServerError) as info:
        server.start()
    message = info.value.message
    assert "exited with code" in message and str(bad) in message
    assert "Last output:" in message and "Failed to load model" in message
    assert server.process is not None and server.process.poll() is not None


def test_busy_port_is_reported_before_loading(tmp_path, smollm2_server):
    settings = Settings(paths={"data_root": tmp_path}, llm={"local": {"port": smollm2_server.port}})
    server = ModelServer.for_gguf(settings, __file__, "x")
    with pytest.raises(ModelServerError, match=f"cannot listen on 127.0.0.1:{smollm2_server.port}"):
        server.start()
    assert server.process is None


def test_cli_serve_missing_gguf_exits_non_zero(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    llm_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["llm", "serve", "--gguf", str(tmp_path / "absent.gguf"), "--port", str(free_port())])
    assert args.func(args, Settings(paths={"data_root": tmp_path})) == 1
    assert "GGUF file not found" in capsys.readouterr().err


def test_cli_serve_rejects_non_builtin_default_model(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    llm_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["llm", "serve"])
    settings = Settings(
        paths={"data_root": tmp_path},
        llm={"default_model": "remote", "models": {"remote": {"kind": "openai_compatible", "base_url": "http://x/v1"}}},
    )
    assert args.func(args, settings) == 1
    assert "'remote' is not a built-in local model" in capsys.readouterr().err


def test_free_port_helper_returns_bindable_port():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_the_model_process_runs_with_the_configured_openmp_wait_policy(smollm2_server, tmp_path):
    # The default, brief: the OpenMP runtime's own short spin, whatever the parent process set.
    environ = open(f"/proc/{smollm2_server.process.pid}/environ", "rb").read().split(b"\0")
    assert not any(v.startswith(b"OMP_WAIT_POLICY=") for v in environ)
    outside = {"OMP_WAIT_POLICY": "ACTIVE", "PYTHONPATH": "/elsewhere"}
    for policy, expected in (("PASSIVE", "PASSIVE"), ("ACTIVE", "ACTIVE"), ("inherit", "ACTIVE")):
        settings = Settings(paths={"data_root": tmp_path}, llm={"local": {"omp_wait_policy": policy}})
        env = ModelServer.for_gguf(settings, __file__, "x").backend_env(outside)
        assert env["OMP_WAIT_POLICY"] == expected
        assert env["PYTHONPATH"].endswith("/elsewhere")
    brief = Settings(paths={"data_root": tmp_path}, llm={"local": {"omp_wait_policy": "brief"}})
    assert "OMP_WAIT_POLICY" not in ModelServer.for_gguf(brief, __file__, "x").backend_env(outside)
    with pytest.raises(ValueError, match="omp_wait_policy"):
        Settings(llm={"local": {"omp_wait_policy": "SPIN"}})


def test_an_answer_begun_for_the_model_is_continued_from_the_chat_prompt(smollm2_server, tmp_path):
    """kbchat renders the GGUF's chat template as the server does: the same prompt tokens, the same answer."""
    settings = Settings(paths={"data_root": tmp_path},
                        llm={"default_model": "smollm2-135m", "local": {"port": smollm2_server.port}})
    model = LLMRegistry(settings).get()
    assert not model.continues_answers  # its weights are not verified in this data root yet
    ensure_weights(BUILTIN_MODELS["smollm2-135m"], settings.paths.model_dir)
    model = LLMRegistry(settings).get()
    assert model.continues_answers and model.prompt_format is not None
    prompt_format = model.prompt_format.get()
    assert prompt_format is not None
    messages = [{"role": "system", "content": "You answer in one word."}, *QUESTION]
    prompt = prompt_format.render(messages)
    client = openai.OpenAI(base_url=smollm2_server.base_url, api_key="x", max_retries=0, timeout=120)
    chat = client.chat.completions.create(model="smollm2-135m", messages=messages, max_tokens=8, temperature=0)
    plain = client.completions.create(model="smollm2-135m", prompt=prompt, max_tokens=8, temperature=0,
                                      stop=list(prompt_format.stop))
    assert chat.usage is not None and plain.usage is not None
    assert plain.usage.prompt_tokens == chat.usage.prompt_tokens
    assert plain.choices[0].text == chat.choices[0].message.content

    lead = "The capital of France is"
    expected = client.completions.create(model="smollm2-135m", prompt=prompt + lead, max_tokens=8, temperature=0,
                                         stop=list(prompt_format.stop)).choices[0].text

    async def run():
        return [d async for d in model.stream(messages, lead=lead, max_tokens=8, temperature=0)]

    deltas = asyncio.run(run())
    assert "".join(deltas) == expected and expected.strip()


def test_a_turn_after_an_answer_begins_with_that_answer_s_prompt_so_the_server_reuses_it(smollm2_server, tmp_path):
    """The title and a follow-up's rewrite continue the answer's exchange; rendered by the GGUF's own template,
    their prompt starts with the prompt the server has just computed and the reply it wrote."""
    settings = Settings(paths={"data_root": tmp_path},
                        llm={"default_model": "smollm2-135m", "local": {"port": smollm2_server.port}})
    ensure_weights(BUILTIN_MODELS["smollm2-135m"], settings.paths.model_dir)
    model = LLMRegistry(settings).get()
    prompt_format = model.prompt_format.get() if model.prompt_format is not None else None
    assert prompt_format is not None
    ctx = ChatContext(request=ChatRequest(query="What is the capital of France?"), settings=settings, llm=model,
                      templates=load_prompts(settings.chat.prompts_file), history=[])
    messages = [{"role": "system", "content": "You answer in one word."}, *QUESTION]
    lead = "The capital of France is"

    async def answer():
        return "".join([piece async for piece in ctx.stream(messages, lead=lead, max_tokens=8, temperature=0)])

    reply = asyncio.run(answer())
    assert ctx.exchange is not None and ctx.exchange.reply == reply and reply.startswith(lead)
    computed = prompt_format.render(messages) + reply
    follow = prompt_format.render(ctx.exchange.followed_by(ctx.localized("title")))
    # Only the turn markers and the request are new.
    assert follow.startswith(computed) and len(follow) - len(computed) < len(ctx.localized("title")) + 80


def test_the_model_continues_on_one_thread_beside_a_busy_process(tmp_path):
    """llm.local.adaptive_threads: with another process keeping a core busy, the model drops to one thread."""
    settings = Settings(
        paths={"data_root": tmp_path},
        llm={"local": {"port": free_port(), "n_ctx": 2048, "n_threads": 2, "start_timeout": 180,
                       "adaptive_threads": True}},
    )
    server = ModelServer.for_builtin(settings, BUILTIN_MODELS["smollm2-135m"])
    assert "--adaptive-threads" in server.command()
    server.start()
    hog = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 300\nwhile time.time() < end: pass"])
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=300)
        time.sleep(1.5)  # the hog has been busy for longer than a reading
        answer = client.chat.completions.create(model="smollm2-135m", messages=QUESTION, max_tokens=24, temperature=0)
        assert answer.choices[0].message.content.strip()
        deadline = time.monotonic() + 30
        while "the model continues on 1 thread" not in server.stderr_tail() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "the model continues on 1 thread" in server.stderr_tail()
    finally:
        hog.kill()
        hog.wait()
        server.stop()
