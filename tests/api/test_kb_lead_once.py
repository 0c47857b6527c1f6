"""chat.lead_once: an answer begun with the lead ends where the model begins the lead again, unless the question
asks several things.

The model is a fake behind the real queueing proxy, configured as the bundled SmolLM2 would be, so kbchat hands
the lead over as a plain-text completion with its stop sequences, and the fake honours them as the API does.
"""

from __future__ import annotations

import pytest

from server.chat.parts import asks_several
from server.llm.local.assemble import ensure_weights
from server.llm.local.builtin import BUILTIN_MODELS
from server.services import build_services
from tests.chat_support import answer_of, builtin_settings, collect

FILES = [("ducks.txt", "Ducks eat grasses, aquatic plants, insects, small fish and worms."),
         ("farming.txt", "Ducks are farmed for their meat, eggs and feathers, particularly their down.")]
# The model's continuation of "According to [": the answer, then the lead begun again for another passage.
REPLY = "1], ducks eat grasses, aquatic plants, insects, small fish and worms.\nAccording to [2], ducks are farmed."


@pytest.fixture
def ask(fake_openai, proxied, tmp_path):
    """Ask ``question`` of a two-file KB; returns (the answer as streamed, the request the model got)."""
    _, url = proxied(2)
    ensure_weights(BUILTIN_MODELS["smollm2-135m"], tmp_path / "models")

    def run(question: str, **chat: object) -> tuple[str, dict]:
        services = build_services(builtin_settings(tmp_path / f"data-{len(fake_openai.requests)}", tmp_path / "models",
                                                   url, refuse_unsupported=False, check_figures=False, **chat))
        services.kb.create_kb("birds")
        services.kb.add_files("birds", [(name, text.encode()) for name, text in FILES])
        fake_openai.queue(REPLY)
        events = collect(services, mode="kb", query=question, kb_name="birds", top_k=2)
        assert any(e["type"] == "done" for e in events), events
        return answer_of(events), fake_openai.requests[-1]

    return run


def test_the_answer_ends_where_the_model_begins_the_lead_again(ask):
    answer, request = ask("What do ducks eat?")
    assert "According to [" in request["stop"]
    assert answer.startswith("According to [1], ducks eat grasses") and answer.rstrip().endswith("worms.")
    assert "[2]" not in answer


def test_a_question_asking_two_things_may_cite_a_second_passage(ask):
    answer, request = ask("What do ducks eat, and what are they farmed for?")
    assert "According to [" not in request["stop"]
    assert answer.startswith("According to [1]") and answer.endswith("According to [2], ducks are farmed.")


def test_off_the_model_may_begin_the_lead_again(ask):
    answer, request = ask("What do ducks eat?", lead_once=False)
    assert "According to [" not in request.get("stop", [])
    assert answer.endswith("According to [2], ducks are farmed.")


@pytest.mark.parametrize(("question", "lang", "several"), [
    ("What do ducks eat?", "en", False),
    ("Which team has won the most Stanley Cups since 1967?", "en", False),
    ("When and where was Iwan Roberts born?", "en", True),
    ("How long is the run, and what's the fastest time on it?", "en", True),
    ("What's the difference between SS400 and SNB22-3?", "en", True),
    ("Who wrote it? Who drew the pictures?", "en", True),
    ("试用期最长可以约定多久？", "zh", False),
    ("劳动法和劳动合同法对加班分别怎么规定？", "zh", True),
    ("离婚和分居有什么区别？", "zh", True),
])
def test_questions_asking_several_things(question, lang, several):
    assert asks_several(question, lang) is several
