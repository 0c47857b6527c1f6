"""Baselines computed without kbchat's pipeline: plain BM25 over whole passages.

Tokens: Chinese text as overlapping character bigrams, English as lower-case alphanumeric words
(the same recipe as shared/data/tools/bm25_sanity.py). Okapi BM25 with k1 = 1.2, b = 0.75 and
idf = ln(1 + (N - df + 0.5) / (df + 0.5)), scored with a sparse matrix product.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


def tokens_zh(text: str) -> list[str]:
    s = "".join(text.lower().split())
    return [s[i : i + 2] for i in range(len(s) - 1)]


def tokens_en(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class PlainBM25:
    """Okapi BM25 over whole passages; rank(query) returns passage indexes, best first."""

    def __init__(self, passages: Sequence[str], lang: str, k1: float = 1.2, b: float = 0.75) -> None:
        from scipy.sparse import csr_matrix

        self.tokenize = tokens_zh if lang == "zh" else tokens_en
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        lengths = np.zeros(len(passages), dtype=np.float32)
        for i, passage in enumerate(passages):
            counts = Counter(self.tokenize(passage))
            lengths[i] = sum(counts.values())
            for term, tf in counts.items():
                rows.append(i)
                cols.append(vocab.setdefault(term, len(vocab)))
                tfs.append(tf)
        n = len(passages)
        tf = np.asarray(tfs, dtype=np.float32)
        row_idx = np.asarray(rows, dtype=np.int64)
        col_idx = np.asarray(cols, dtype=np.int64)
        df = np.bincount(col_idx, minlength=len(vocab)).astype(np.float32)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avg = float(lengths.mean()) if n else 1.0
        norm = k1 * (1 - b + b * lengths[row_idx] / avg)
        weights = idf[col_idx] * tf * (k1 + 1) / (tf + norm)
        # term x passage matrix so a query is a sum of rows.
        self._matrix = csr_matrix((weights, (col_idx, row_idx)), shape=(len(vocab), n))
        self._vocab = vocab
        self.size = n

    def scores(self, query: str) -> np.ndarray:
        ids = sorted({self._vocab[t] for t in self.tokenize(query) if t in self._vocab})
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._matrix[ids].sum(axis=0)).ravel()

    def rank(self, query: str, k: int = 10) -> list[int]:
        scores = self.scores(query)
        k = min(k, self.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(i) for i in top if scores[i] > 0]
