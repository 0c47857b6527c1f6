"""How likely the served model finds one text after each of several others: ``POST /kbchat/score``.

Reranking by query likelihood (``kb.rerank.kind: chat_model``, see server/knowledge_base/rerank.py) asks,
for each candidate passage, how likely the chat model finds the question right after it. The model
process answers that with a second llama.cpp context on the weights it already holds, so the chat's own
context and the prompt prefix cached in it stay as they were. All the prefixes of one request are read
together, one sequence each in one batch, and logits are kept only where the continuation's tokens are
predicted. The answer per prefix is the mean log-probability of the continuation's tokens.

``install_route`` adds the endpoint to llama_cpp.server's router; llama_server.py calls it before the
server builds its app. The queueing proxy (proxy.py) lets a scoring request through in turn with
generations, since both run the model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request  # resolved by FastAPI from this module's names

from server.llm.local.status import SCORE_PATH


# The scoring context: enough for ten passages of a few hundred characters and a question, in one batch.
SCORING_CONTEXT = 2048
MAX_SEQUENCES = 16
# A continuation longer than this many tokens is scored on its start; a prefix is cut from its start so that
# prefix and continuation fit the context.
MAX_CONTINUATION_TOKENS = 256


class ScoreRequest(BaseModel):
    prefixes: list[Annotated[str, Field(min_length=1)]] = Field(
        ..., min_length=1, max_length=64, description="Texts the continuation follows (none empty).")
    continuation: str = Field(..., min_length=1, max_length=2000, description="The text whose likelihood is scored.")


class ScoreResponse(BaseModel):
    logprobs: list[float] = Field(..., description="Per prefix, the mean log-probability of the continuation's tokens.")
    tokens: int = Field(..., description="Tokens the model read.")


@dataclass(frozen=True)
class _Sequence:
    tokens: list[int]
    # Index of the first token whose logits predict the continuation (the prefix's last token).
    first_prediction: int


def _sequences(llama: Any, prefixes: Sequence[str], continuation: str) -> list[_Sequence]:
    tail = llama.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)[:MAX_CONTINUATION_TOKENS]
    room = SCORING_CONTEXT - len(tail)
    out = []
    for prefix in prefixes:
        head = llama.tokenize(prefix.encode("utf-8"), add_bos=True, special=False)
        head = head[:1] + head[len(head) - room + 1:] if len(head) > room else head
        out.append(_Sequence(head + tail, len(head) - 1))
    return out


def _groups(sequences: list[_Sequence]) -> list[list[int]]:
    """Indexes of the sequences, in groups that fit the scoring context together."""
    groups: list[list[int]] = [[]]
    used = 0
    for i, seq in enumerate(sequences):
        if groups[-1] and (used + len(seq.tokens) > SCORING_CONTEXT or len(groups[-1]) == MAX_SEQUENCES):
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += len(seq.tokens)
    return groups


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    row = logits.astype(np.float64)
    top = row.max()
    return float(row[token] - top - np.log(np.exp(row - top).sum()))


class ContinuationScorer:
    """Scores continuations with a context of its own on a loaded ``llama_cpp.Llama``'s weights."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: Any = None
        self._ctx: Any = None

    def _context(self, llama: Any) -> Any:
        import llama_cpp
        from llama_cpp._internals import LlamaContext

        if self._owner is not llama:
            if self._ctx is not None:
                self._ctx.close()
            params = llama_cpp.llama_context_default_params()
            params.n_ctx = params.n_batch = SCORING_CONTEXT
            params.n_seq_max = MAX_SEQUENCES
            params.kv_unified = True
            params.n_threads = params.n_threads_batch = llama.n_threads_batch
            self._ctx = LlamaContext(model=llama._model, params=params, verbose=False)
            self._owner = llama
        return self._ctx

    def score(self, llama: Any, prefixes: Sequence[str], continuation: str) -> ScoreResponse:
        import llama_cpp
        from llama_cpp._internals import LlamaBatch

        with self._lock:
            ctx = self._context(llama)
            sequences = _sequences(llama, prefixes, continuation)
            n_vocab = llama.n_vocab()
            sums = [0.0] * len(sequences)
            for group in _groups(sequences):
                ctx.kv_cache_clear()
                total = sum(len(sequences[i].tokens) for i in group)
                batch = LlamaBatch(n_tokens=total, embd=0, n_seq_max=1, verbose=False)
                wanted: list[tuple[int, int, int]] = []  # (sequence, batch position, token predicted)
                k = 0
                for seq_id, i in enumerate(group):
                    seq = sequences[i]
                    for pos, token in enumerate(seq.tokens):
                        batch.batch.token[k] = token
                        batch.batch.pos[k] = pos
                        batch.batch.n_seq_id[k] = 1
                        batch.batch.seq_id[k][0] = seq_id
                        predicts = seq.first_prediction <= pos < len(seq.tokens) - 1
                        batch.batch.logits[k] = predicts
                        if predicts:
                            wanted.append((i, k, seq.tokens[pos + 1]))
                        k += 1
                batch.batch.n_tokens = total
                try:
                    ctx.decode(batch)
                    for i, k, token in wanted:
                        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ctx, k), shape=(n_vocab,))
                        sums[i] += _log_softmax_at(row, token)
                finally:
                    batch.close()
            tokens = sum(len(s.tokens) for s in sequences)
            counts = [len(s.tokens) - 1 - s.first_prediction for s in sequences]
            return ScoreResponse(logprobs=[round(s / max(c, 1), 6) for s, c in zip(sums, counts)], tokens=tokens)


def install_route() -> ContinuationScorer:
    """Add ``POST /kbchat/score`` to llama_cpp.server's router (before ``create_app`` includes it)."""
    from fastapi import Depends
    from llama_cpp.server.app import authenticate, get_llama_proxy, router
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    scorer = ContinuationScorer()

    # The body is validated here rather than by FastAPI: llama_cpp.server's router answers its validation
    # errors with HTTP 500.
    @router.post(SCORE_PATH, summary="Continuation likelihood", dependencies=[Depends(authenticate)])
    async def score(request: Request, llama_proxy: Any = Depends(get_llama_proxy)) -> Any:
        try:
            body = ScoreRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return JSONResponse({"error": {"message": message, "type": "invalid_request", "code": 422}},
                                status_code=422)
        # A caller that gave up while this request waited for the model is not scored for: the requests
        # queued behind it would otherwise wait for work nobody reads.
        if await request.is_disconnected():
            return JSONResponse({"error": {"message": "client went away", "type": "cancelled", "code": 499}},
                                status_code=499)
        result = await run_in_threadpool(scorer.score, llama_proxy(None), body.prefixes, body.continuation)
        return JSONResponse(result.model_dump())

    return scorer
