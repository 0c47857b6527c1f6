"""The model process times the prompts it reads; the proxy reports that figure at GET /speed."""

from __future__ import annotations

import json

from llama_cpp import Llama

from server.llm.local.prompt_timing import MIN_TOKENS, WINDOW, PromptTimings, install, read_prompt_speed
from server.llm.local.proxy import QueueProxy
from server.llm.local.speed import PromptSpeed


class _Unloaded(Llama):
    """A Llama with no model: its eval is replaced in these tests."""

    def __init__(self) -> None:
        pass

    def __del__(self) -> None:
        pass


def test_prompts_are_timed_and_decoding_steps_are_not(tmp_path, monkeypatch):
    evaluated: list[int] = []
    monkeypatch.setattr(Llama, "eval", lambda self, tokens: evaluated.append(len(tokens)))
    ticks = iter([10.0, 12.0, 20.0, 21.0])
    path = tmp_path / "timing.json"
    timings = install(path, clock=lambda: next(ticks))
    llama = _Unloaded()

    llama.eval(list(range(100)))  # a prompt read in 2 s
    llama.eval([7])  # a decoding step: not timed
    llama.eval(list(range(MIN_TOKENS - 1)))  # a short draft: not timed
    assert evaluated == [100, 1, MIN_TOKENS - 1]
    assert timings.tokens_per_s == 50.0
    assert read_prompt_speed(path) == 50.0

    llama.eval(list(range(200)))  # 200 tokens in 1 s
    assert read_prompt_speed(path) == 125.0  # the median of 50 and 200
    assert json.loads(path.read_text())["prompts"] == 2


def test_the_figure_follows_the_last_prompts_only(tmp_path):
    timings = PromptTimings(tmp_path / "t.json")
    for _ in range(WINDOW):
        timings.record(100, 10.0)  # 10 tokens/s, e.g. beside a busy process
    for _ in range(WINDOW // 2 + 1):
        timings.record(100, 1.0)  # 100 tokens/s once the machine is quiet again
    assert timings.tokens_per_s == 100.0


def test_a_missing_or_broken_timing_file_says_nothing(tmp_path):
    assert read_prompt_speed(None) is None
    assert read_prompt_speed(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert read_prompt_speed(tmp_path / "bad.json") is None
    (tmp_path / "zero.json").write_text('{"tokens_per_s": 0}')
    assert read_prompt_speed(tmp_path / "zero.json") is None


def test_the_proxy_reports_recent_prompts_before_the_start_up_timing(tmp_path):
    proxy = QueueProxy("http://127.0.0.1:9", 2)
    assert proxy.speed_report()["prompt_tokens_per_s"] is None
    proxy.prompt_speed = PromptSpeed(prompt_tokens=150, tokens_per_s=21.04)
    proxy.timing_file = tmp_path / "timing.json"
    report = proxy.speed_report()
    assert (report["prompt_tokens_per_s"], report["measured_on"]) == (21.0, "start-up")
    PromptTimings(proxy.timing_file).record(400, 10.0)
    report = proxy.speed_report()
    assert (report["prompt_tokens_per_s"], report["measured_on"]) == (40.0, "recent prompts")
    assert (report["start_up_tokens_per_s"], report["prompt_tokens"]) == (21.0, 150)
