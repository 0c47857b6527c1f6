"""Answers in the passages' words: a logit bias against the question's own wording.

Asked 「饭店墙上贴着“谢绝自带酒水，最终解释权归本店”，这种告示算数吗？」, a 1.5B model tends to restate the
question and append a yes, a no or a number of its own (「……这种告示算数。」) instead of stating the rule that
answers it. Lowering the logits of the question's tokens that no passage holds (饭店, 墙上, 自带 ...) leaves the
model the passages' words to answer with (「该告示属于格式条款，其内容无效。」). Tokens the passages share with the
question, and punctuation, keep their chances, so the answer still reads naturally.
"""

from __future__ import annotations

from collections.abc import Iterable

from server.llm.tokenizers import Tokenizer

# Characters a token may consist of and still be left alone: punctuation and spaces carry no wording.
NEUTRAL = " \t\n\r，。？！、：；“”‘’（）《》「」【】…—,.?!:;\"'()[]<>-"


def question_word_bias(tokenizer: Tokenizer, question: str, grounds: Iterable[str], penalty: float
                       ) -> dict[int, float]:
    """Token id → -``penalty`` for each token of ``question`` that none of ``grounds`` (the passages the model
    reads, their titles, the answer's lead) holds; empty when ``penalty`` is 0."""
    if penalty <= 0:
        return {}
    held: set[int] = set()
    for text in grounds:
        held.update(tokenizer.encode(text))
    own = set(tokenizer.encode(question)) - held
    return {token: -penalty for token in sorted(own) if tokenizer.decode(token).strip(NEUTRAL)}
