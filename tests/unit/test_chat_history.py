"""History selection and trimming to the model's context window."""

from __future__ import annotations

import pytest

from server.chat.history import MESSAGE_OVERHEAD, fit_history, last_turns, without_repeated
from server.errors import InvalidInput
from tests.chat_support import collect, kb_services


# Digits spelt as letters: the token estimate counts each digit as a token, and these stand for plain words.
_LETTERS = str.maketrans("0123456789_", "abcdefghijx")


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}".translate(_LETTERS) for i in range(n))


def count(text: str) -> int:
    return len(text.split())


def turns(n: int, size: int = 10) -> list[dict[str, str]]:
    out = []
    for i in range(n):
        out.append({"role": "user", "content": words(size, f"q{i}_")})
        out.append({"role": "assistant", "content": words(size, f"a{i}_")})
    return out


def test_everything_is_kept_when_it_fits():
    history = turns(3)
    assert fit_history(count, "system", history, "question", 1000) == history


def test_oldest_turns_go_first_and_system_and_question_stay():
    history = turns(4)  # 8 messages of 10 words + overhead each
    per_message = 10 + MESSAGE_OVERHEAD
    fixed = (1 + MESSAGE_OVERHEAD) * 2
    kept = fit_history(count, "system", history, "question", fixed + 3 * per_message)
    # Three messages would fit, but the oldest of them is an answer without its question.
    assert kept == history[-2:]


def test_no_history_when_only_the_question_fits():
    assert fit_history(count, "sys", turns(2), "question", 2 * (1 + MESSAGE_OVERHEAD)) == []


def test_a_question_that_cannot_fit_is_refused():
    with pytest.raises(InvalidInput) as err:
        fit_history(count, "system prompt", [], words(50, "w"), 30)
    assert err.value.code == "context_overflow" and "context window" in err.value.message


def test_last_turns_keeps_whole_exchanges():
    history = turns(5)
    assert last_turns(history, 2) == history[-4:]
    assert last_turns(history, 0) == []
    assert last_turns(history, 10) == history


def test_a_question_asked_again_word_for_word_drops_its_first_exchange():
    history = [{"role": "user", "content": "Who owns the car?"}, {"role": "assistant", "content": "Ann [1]."},
               {"role": "user", "content": "Which spot is mine?"}, {"role": "assistant", "content": "Not said."}]
    assert without_repeated(history, " Which spot is mine? ") == history[:2]
    assert without_repeated(history, "Which spot is hers?") == history
    assert without_repeated(history, "Who owns the car?") == history  # only the last exchange is a retry
    assert without_repeated([], "Which spot is mine?") == []


def test_tiny_context_window_trims_what_is_sent_to_the_model(tmp_path, fake_openai):
    # 256-token window minus 150 for the answer: room for the system prompt, the question and one turn.
    services = kb_services(
        tmp_path, fake_openai.base_url, model={"context_window": 256, "max_tokens": 150}, chat={"history_turns": 10}
    )
    try:
        history = turns(6, size=12)
        fake_openai.queue("Short.")
        collect(services, query="The final question?", history=history)
        sent = fake_openai.requests[-1]["messages"]
        assert sent[0]["role"] == "system" and sent[0]["content"] == services.chat.templates()["default"]
        assert sent[-1] == {"role": "user", "content": "The final question?"}
        middle = [m["content"] for m in sent[1:-1]]
        assert 0 < len(middle) < len(history)
        assert middle == [m["content"] for m in history[-len(middle):]]  # the newest turns survive
        assert sent[1]["role"] == "user"
        total = sum(services.llms.get("fake").count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in sent)
        assert total <= 256 - 150
    finally:
        services.close()
