"""chat.first_token_seconds: a built-in model that reads prompts slowly gets fewer evidence sentences.

The model is a fake behind the real queueing proxy, configured as the bundled SmolLM2 would be, so the chat
adapter asks the proxy's GET /speed as it does in production; the proxy reports the speed the test sets.
"""

from __future__ import annotations

import itertools

import pytest

from server.llm.local.assemble import ensure_weights
from server.llm.local.builtin import BUILTIN_MODELS
from server.llm.local.speed import PromptSpeed
from server.services import build_services
from tests.chat_support import builtin_settings, collect

MANUAL = " ".join(
    f"Step {n}: check that the {part} is clean and tight before the engine is started." for n, part in enumerate(
        ["oil filter", "fuel line", "spark plug", "air intake", "propeller bolt", "exhaust clamp", "battery lead",
         "cooling fin", "throttle cable", "magneto switch", "carburettor bowl", "starter ring"], 1)
)
QUESTION = "What should I check before starting the engine?"


@pytest.fixture
def ask(fake_openai, proxied, tmp_path):
    """Ask the question of a one-file KB with the model reading ``speed`` prompt tokens/s, alone or as the
    ``follow_up`` ("stored": in a conversation this process answered; "given": after a history the request
    sends); returns (highlighted sentences, the user message the model got, the done event)."""
    proxy, url = proxied(2)
    ensure_weights(BUILTIN_MODELS["smollm2-135m"], tmp_path / "models")
    runs = itertools.count()

    def run(speed: float, first_token_seconds: float, languages: tuple[str, ...] = ("en",), follow_up: str = "",
            files: tuple[tuple[str, str], ...] = (("manual.txt", MANUAL),), question: str = QUESTION,
            **chat: object) -> tuple[list[str], str, dict]:
        proxy.prompt_speed = PromptSpeed(prompt_tokens=150, tokens_per_s=speed)
        settings = builtin_settings(tmp_path / f"data-{next(runs)}", tmp_path / "models", url,
                                    **{"answer_lead": False, "refuse_unsupported": False,
                                       "first_token_seconds": first_token_seconds,
                                       "first_token_languages": list(languages), **chat})
        services = build_services(settings)
        services.kb.create_kb("engine")
        services.kb.add_files("engine", [(name, text.encode()) for name, text in files])
        conversation: dict[str, object] = {}
        if follow_up:
            # A first question answered in this process, then the question as its follow-up, rewritten first.
            fake_openai.queue("Check the oil filter [1].")
            first = collect(services, mode="kb", query="Which filter matters most?", kb_name="engine", top_k=1)
            conversation = {"conversation_id": first[-1]["conversation_id"]} if follow_up == "stored" else {
                "history": [{"role": "user", "content": "Which filter matters most?"},
                            {"role": "assistant", "content": "Check the oil filter [1]."}], "store": False}
            fake_openai.queue(QUESTION)
        fake_openai.queue("Check the oil filter [1].")
        events = collect(services, mode="kb", query=question, kb_name="engine", top_k=len(files), **conversation)
        sources = next(e for e in events if e["type"] == "sources")["sources"]
        marked = [sources[0]["text"][a:b] for a, b in sources[0]["highlights"]]
        request = fake_openai.requests[-1]
        # A lead is handed over as a plain-text completion of the rendered chat prompt.
        user = request["prompt"] if "prompt" in request else request["messages"][-1]["content"]
        done = next(e for e in events if e["type"] == "done")
        return marked, user, done

    return run


def test_a_slow_model_reads_fewer_evidence_sentences_and_a_fast_one_all_it_may(ask):
    fast, fast_prompt, _ = ask(10_000.0, 5.0)
    slow, slow_prompt, _ = ask(10.0, 5.0)  # 50 tokens in 5 s: the floor of a sentence or two
    uncut, uncut_prompt, _ = ask(10.0, 0.0)  # the cut switched off
    assert len(fast) == len(uncut) >= 4
    assert fast_prompt == uncut_prompt
    assert 1 <= len(slow) <= len(fast) / 2
    assert len(slow_prompt) < len(fast_prompt) - sum(len(s) for s in fast) / 2
    # What the model reads is what the user sees highlighted, and the question is always in it.
    assert all(sentence in slow_prompt for sentence in slow) and QUESTION in slow_prompt


def test_questions_in_other_languages_keep_all_their_evidence(ask):
    fast, fast_prompt, _ = ask(10_000.0, 5.0)
    slow_zh_only, prompt, _ = ask(10.0, 5.0, ("zh",))  # an English question: not cut
    assert slow_zh_only == fast and prompt == fast_prompt


def test_a_quoted_lead_is_read_with_the_evidence_so_a_slow_model_gets_fewer_sentences(ask):
    plain, plain_prompt, _ = ask(30.0, 5.0, answer_lead=True, quote_evidence=[])
    quoted, quoted_prompt, _ = ask(30.0, 5.0, answer_lead=True, quote_evidence=["en"])
    lead = quoted_prompt[quoted_prompt.rindex("According to [1] (manual): \""):]
    assert lead.endswith('"') and lead[len("According to [1] (manual): \""):-1] in quoted
    assert plain_prompt.endswith("According to [")
    # The quote's tokens come out of the evidence the model reads in the same time.
    assert 1 <= len(quoted) < len(plain)


LAW = ("# 劳动合同法\n\n第十九条 劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，"
       "试用期不得超过二个月。\n\n第二十条 劳动者在试用期的工资不得低于本单位相同岗位最低档工资的百分之八十，"
       "并不得低于用人单位所在地的最低工资标准。\n")
RULES = "# 员工手册\n\n新员工的试用期为两个月，试用期工资按转正工资的八成发放，试用期满考核合格后转正。\n"


def test_a_chinese_answer_quotes_the_best_sentences_of_two_articles_then_begins_its_conclusion(ask):
    question = "签了两年合同，试用期最长多久？试用期工资能打几折？"
    files = (("law.md", LAW), ("rules.md", RULES))
    _, one, _ = ask(10_000.0, 5.0, ("zh",), files=files, question=question, answer_lead=True,
                    quote_evidence=["zh"], quoted_sentences=1)
    _, two, _ = ask(10_000.0, 5.0, ("zh",), files=files, question=question, answer_lead=True,
                    quote_evidence=["zh"], quoted_sentences=2)
    first = one[one.rindex("根据资料["):]
    assert first.endswith("”") and "；资料[" not in first
    # The second quote is from another article or passage, and the conclusion is begun after them.
    assert two.endswith("”。因此，") and two[two.rindex("根据资料["):].startswith(first)
    second = two[two.rindex("；资料["):]
    assert second.count("：“") == 1 and second[len("；资料["):].split("]")[0] in {"1", "2"}


def test_a_follow_up_continuing_this_process_s_answer_keeps_the_system_prompt_s_share_of_evidence(ask):
    # A follow-up's rewrite after a history the request sends displaces the cached system prompt, so the model
    # reads it again and the evidence gives way; one that continues the answer this process made does not.
    alone, _, _ = ask(40.0, 5.0)
    continued, _, _ = ask(40.0, 5.0, follow_up="stored")
    given, _, _ = ask(40.0, 5.0, follow_up="given")
    assert len(given) < len(continued) <= len(alone)


LAYOFF = ("# 劳动合同法\n\n第四十二条 劳动者有下列情形之一的，用人单位不得依照本法第四十条、第四十一条的规定解除劳动合同:\n\n"
          "（一）从事接触职业病危害作业的劳动者未进行离岗前职业健康检查，或者疑似职业病病人在诊断或者医学观察期间的；\n\n"
          "（二）在本单位患职业病或者因工负伤并被确认丧失或者部分丧失劳动能力的；\n\n"
          "（三）在本单位连续工作满十五年，且距法定退休年龄不足五年的；\n")


def test_a_list_item_is_read_and_quoted_after_the_sentence_that_opens_its_list(ask):
    marked, prompt, _ = ask(10_000.0, 5.0, ("zh",), files=(("law.md", LAYOFF),),
                            question="我在单位连续工作满十五年了，离退休不足五年，公司能裁掉我吗？", answer_lead=True,
                            quote_evidence=["zh"], quoted_sentences=1)
    # The user sees the list's opening highlighted with the item, and the answer quotes them together.
    assert marked[0].startswith("第四十二条 劳动者有下列情形之一的") and any("满十五年" in m for m in marked)
    lead = prompt[prompt.rindex("根据资料["):]
    assert "《劳动合同法》第四十二条：“劳动者有下列情形之一的，用人单位不得" in lead
    assert "解除劳动合同:……（二）" in lead and lead.endswith("不足五年的；”")
