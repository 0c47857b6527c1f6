"""BM25 keyword index of one knowledge base, persisted next to its vector index.

Tokenisation: text is NFKC-normalised; runs of Chinese/Japanese characters become overlapping
character bigrams (a lone character stays a unigram) or, with the "jieba" tokenizer, jieba's
search-mode words; other words are lower-cased, common English stop words dropped and plural endings
stripped. A word run together from three or more (a CSV header's "Ki67CD8frequencyUnstim", code's
"getUserName") also yields its parts, split where a lower-case letter meets a capital, a digit meets a letter, or
a run of capitals meets a capitalised word; one of two parts is mostly a name ("LayoutParser", "SteelJIS") and
stays whole. The index is rebuilt from the knowledge base's chunk texts when
chunks change, never per query. Each chunk's tokens are kept as ids into a vocabulary between
rebuilds, so a rebuild after adding one file tokenizes only that file's chunks and hands bm25s ids
instead of strings. The vocabulary keeps the tokens of deleted chunks (with no postings) until the
process restarts: the first rebuild after loading tokenizes everything and starts a fresh one.

Raw BM25 scores are unbounded; callers normalise them per query (score / best score of that query).
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

logger = logging.getLogger(__name__)

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
# Where a word run together from several splits: "yU" in "frequencyUnstim", "7C" in "Ki67CD8", "LP" in "HTMLParser".
_WORD_JOIN = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[0-9])(?=[A-Za-z])|(?<=[A-Z])(?=[A-Z][a-z])")
_LETTER = re.compile(r"[^\W\d_]")
_EN_STOP = frozenset(
    "a an and are as at be but by for from has have how i if in into is it its of on or that the their them "
    "there these they this to was were what when where which who whom why will with would you your do does "
    "did can could should may might me my we our us he she his her not no so than then too very".split()
)
_ZH_STOP = frozenset("的了是在和与或及吗呢吧啊呀么我你他她它们这那就也都而且")
TOKENIZERS = ("bigram", "jieba")
# Bumped whenever ``tokenize`` changes what it yields, so that an index saved before is rebuilt from its texts.
TOKENS_VERSION = 3
# Parts a run-together word needs to be indexed by them as well (see the module docstring).
INDEXED_PARTS = 3
# What everyday Chinese questions wrap around their subject: asking (能不能, 可以吗, 怎么办), pronouns and
# particles. Their bigrams are rare in documents, so left in a question they match sentences by accident.
_ZH_QUERY_FILLERS = re.compile("|".join(sorted(
    "请问 想问 我想 能不能 可不可以 可以吗 是不是 有没有 要不要 会不会 算不算 行不行 该不该 怎么办 怎么样 怎么 "
    "什么 哪些 哪里 哪个 为什么 多少 多久 吗 呢 吧 啊 呀 嘛 了 的 我们 你们 他们 我 你 他 她 它 这个 那个 这样 "
    "那样 这 那 还 就 都 也 又 应该 需要 合法吗 违法吗 一下 现在 已经 如果 说".split(), key=len, reverse=True)))


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def word_parts(word: str) -> list[str]:
    """The words a run-together word is made of, when it is one (as written, not lower-cased): parts of two or
    more characters holding a letter, none if fewer than two. "Ki67CD8frequencyUnstim" gives Ki67, CD8,
    frequency, Unstim; "SteelJIS" gives Steel, JIS; "SS400", "2nd" and "iPhone" give none (one part each)."""
    if len(word) < 6:
        return []
    parts = [part for part in _WORD_JOIN.split(word) if len(part) >= 2 and _LETTER.search(part)]
    return parts if len(parts) >= 2 else []


def _cjk_bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [] if run in _ZH_STOP else [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


_jieba_lock = threading.Lock()
_jieba_ready = False


def _cjk_jieba(run: str) -> list[str]:
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return [w for w in jieba.lcut_for_search(run) if w.strip() and w not in _ZH_STOP]


def _bm25s() -> ModuleType:
    """The bm25s package, imported on first use (it is slow to import), with its logger quieted."""
    module = importlib.import_module("bm25s")
    # bm25s sets its own logger to DEBUG, which would print a line for every index build.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return module


def tokenize(text: str, tokenizer: str = "bigram", parts: bool = True) -> list[str]:
    """BM25 tokens of a text (see the module docstring); without ``parts``, a run-together word stays whole."""
    cjk: Callable[[str], list[str]] = _cjk_jieba if tokenizer == "jieba" else _cjk_bigrams
    tokens: list[str] = []
    for match in _TOKEN.finditer(unicodedata.normalize("NFKC", text)):
        piece = match.group()
        if _CJK_RUN.fullmatch(piece):
            tokens.extend(cjk(piece))
        else:
            split = word_parts(piece) if parts else []
            for word in (piece, *(split if len(split) >= INDEXED_PARTS else ())):
                word = word.lower()
                if word not in _EN_STOP:
                    tokens.append(_stem(word))
    return tokens


def rare_word_weight(documents: int) -> float:
    """The BM25 weight (Lucene idf, as bm25s scores) of a word that one of ``documents`` documents holds: the unit
    in which a question's keyword score is judged, so that it means the same in a small knowledge base as in a
    large one."""
    return math.log(1 + (documents - 0.5) / 1.5) if documents > 0 else 0.0


def query_tokens(text: str, tokenizer: str = "bigram") -> list[str]:
    """Tokens of a question without its Chinese question fillers: only its subject counts (used to pick
    the sentences of a passage that bear on the question). A word the asker ran together stays whole, as
    in a search."""
    return tokenize(_ZH_QUERY_FILLERS.sub(" ", unicodedata.normalize("NFKC", text)), tokenizer, parts=False)


class BM25Index:
    """A bm25s index over (int id, text) pairs; search returns (id, raw score) best first."""

    def __init__(self, tokenizer: str = "bigram") -> None:
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown BM25 tokenizer {tokenizer!r}; choose one of {TOKENIZERS}")
        self.tokenizer = tokenizer
        self._model = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._vocab: dict[str, int] = {}  # token -> id, ids 0..len-1 as bm25s wants them
        self._token_ids: dict[int, list[int]] = {}  # chunk id -> its token ids
        self.stale = False  # loaded from an index tokenized otherwise (TOKENS_VERSION): rebuild before use

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def build(self, ids: list[int], texts: list[str]) -> None:
        """Index the texts; replaces whatever was indexed before.

        An id must always name the same text (the vector stores never reuse an id), because the
        tokens of an id seen in the previous build are reused.
        """
        bm25s = _bm25s()

        previous, token_ids, vocab = self._token_ids, {}, self._vocab
        for idx, text in zip(ids, texts):
            cached = previous.get(idx)
            if cached is None:
                cached = [vocab.setdefault(t, len(vocab)) for t in tokenize(text, self.tokenizer)]
            token_ids[idx] = cached
        self._token_ids = token_ids
        self._ids = np.asarray(ids, dtype=np.int64)
        if not texts:
            self._model = None
            return
        model = bm25s.BM25()
        # bm25s adds its empty-token entry to the vocabulary it is given, so it gets a copy.
        model.index(([token_ids[idx] for idx in ids], dict(vocab)), show_progress=False)
        self._model = model

    def search(self, query: str, k: int, allowed_ids: set[int] | None = None) -> list[tuple[int, float]]:
        """Up to k (id, score) pairs with a positive score, best first; allowed_ids restricts the candidates."""
        if self._model is None or k <= 0:
            return []
        vocab = self._model.vocab_dict
        # Question fillers stay: dropping them (query_tokens) helped BM25 alone a little but cost hybrid
        # search 0.02 hit@5 on the everyday tuning questions (benchmarks/everyday.py).
        tokens = [t for t in tokenize(query, self.tokenizer, parts=False) if t in vocab]
        if not tokens:
            return []
        mask = None
        if allowed_ids is not None:
            mask = np.isin(self._ids, np.fromiter(allowed_ids, dtype=np.int64)).astype(np.float32)
        scores = np.asarray(self._model.get_scores(tokens, weight_mask=mask), dtype=np.float32)
        positive = np.flatnonzero(scores > 0)
        if positive.size == 0:
            return []
        top = positive[np.argsort(-scores[positive], kind="stable")[:k]]
        return [(int(self._ids[i]), float(scores[i])) for i in top]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "ids.npy", self._ids)
        if self._model is not None:
            self._model.save(str(folder / "index"), show_progress=False)
        (folder / "bm25.json").write_text(
            json.dumps({"tokenizer": self.tokenizer, "tokens": TOKENS_VERSION, "count": len(self),
                        "empty": self._model is None}),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, folder: Path) -> "BM25Index":
        bm25s = _bm25s()

        meta = json.loads((folder / "bm25.json").read_text(encoding="utf-8"))
        index = cls(meta["tokenizer"])
        index._ids = np.load(folder / "ids.npy")
        index.stale = meta.get("tokens", 1) != TOKENS_VERSION
        if not meta["empty"]:
            index._model = bm25s.BM25.load(str(folder / "index"), show_progress=False)
        return index
