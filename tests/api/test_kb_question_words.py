"""chat.question_word_penalty: knowledge-base chat asks a built-in model to avoid the question's own words that
no passage holds, by a logit bias in the model's token ids.

The model is a fake behind the real queueing proxy, configured as the bundled SmolLM2 would be, so kbchat has
the model's own tokenizer (SmolLM2's GGUF vocabulary) as in production.
"""

from __future__ import annotations

import pytest

from configs import Settings
from server.llm.local.assemble import ensure_weights
from server.llm.local.builtin import BUILTIN_MODELS
from server.llm.tokenizers import gguf_tokenizer
from server.services import build_services
from tests.chat_support import builtin_settings, chat_settings, collect

MANUAL = ("Check that the oil filter is clean and tight before the engine is started. "
          "Drain the fuel bowl after every flight.")
QUESTION = "My plane's motor: anything to look at before I fly?"


@pytest.fixture
def ask(fake_openai, proxied, tmp_path):
    """Ask QUESTION of a one-file KB; returns the body of the request the model got (a chat request: no answer
    lead, which would make it a plain completion)."""
    proxy, url = proxied(2)
    path = ensure_weights(BUILTIN_MODELS["smollm2-135m"], tmp_path / "models")

    def run(settings: Settings | None = None, **chat: object) -> dict:
        settings = settings or builtin_settings(tmp_path / f"data-{len(fake_openai.requests)}", tmp_path / "models",
                                                url, **{"refuse_unsupported": False, "answer_lead": False, **chat})
        services = build_services(settings)
        services.kb.create_kb("engine")
        services.kb.add_files("engine", [("manual.txt", MANUAL.encode())])
        fake_openai.queue("Check the oil filter [1].")
        events = collect(services, mode="kb", query=QUESTION, kb_name="engine", top_k=1)
        assert any(e["type"] == "done" for e in events), events
        body: dict = fake_openai.requests[-1]
        return body

    run.tokenizer = gguf_tokenizer(path)  # type: ignore[attr-defined]
    return run


def test_the_question_s_words_the_passage_lacks_are_lowered_and_no_others(ask):
    body = ask()
    tokenizer = ask.tokenizer
    bias = {int(token): value for token, value in body["logit_bias"].items()}
    assert set(bias.values()) == {-3.0}
    lowered = {tokenizer.decode(token).strip() for token in bias}
    assert {"plane", "motor", "fly"} <= lowered
    # Words the manual holds and punctuation keep their chances.
    assert not lowered & {"before", "the", "engine", ":", "?", ""}
    assert QUESTION in body["messages"][-1]["content"]


def test_a_penalty_of_zero_sends_no_bias(ask):
    assert "logit_bias" not in ask(question_word_penalty=0)


def test_a_model_behind_an_api_gets_no_bias_its_token_ids_are_unknown(ask, fake_openai, tmp_path):
    settings = chat_settings(tmp_path / "api", fake_openai.base_url, chat={"rewrite_query": False,
                                                                          "refuse_unsupported": False})
    assert "logit_bias" not in ask(settings)
