"""Sentence vectors of a store's chunks: each chunk is also found by its best-matching sentence.

A 500-character chunk holds several sentences (a law chunk, two or three articles); its one vector
is an average of them, and an everyday question that matches one sentence well can rank the chunk
low. So each chunk's sentences (``server.knowledge_base.sentences``) are embedded as well, and a
search ranks chunks by their best sentence. Hybrid search fuses that ranking with the chunk-vector
and BM25 rankings (``retriever.fuse``).

Vectors are float32 rows kept per chunk id and stacked lazily for search: an exact scan, about 1.5 KB
per sentence of a 384-dimensional model, a few milliseconds for tens of thousands of sentences. They are
saved with the store's version (``sentences.npy`` and ``sentence_owners.npy``); a version saved
without them loads with none, and its chunks are then found by the other rankings alone until the
knowledge base is rebuilt.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

import numpy as np

VECTORS_FILE = "sentences.npy"
OWNERS_FILE = "sentence_owners.npy"
# Sentences read per chunk wanted: enough that k distinct chunks come out of the top rows.
ROWS_PER_HIT = 8


class SentenceIndex:
    """Sentence vectors grouped by the store id of their chunk (not thread-safe: the store locks)."""

    def __init__(self) -> None:
        self._rows: dict[int, np.ndarray] = {}
        self._stacked: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    def owners(self) -> set[int]:
        return set(self._rows)

    def rows(self, owner: int, dim: int) -> np.ndarray:
        """The sentence vectors of one chunk (no rows, ``dim`` wide, when it has none)."""
        found = self._rows.get(owner)
        return np.zeros((0, dim), dtype=np.float32) if found is None else found

    def add(self, owner: int, vectors: np.ndarray) -> None:
        """Set the sentence vectors of one chunk, one row per sentence in text order."""
        rows = np.ascontiguousarray(vectors, dtype=np.float32)
        if rows.ndim != 2:
            raise ValueError(f"sentence vectors must be a matrix, got shape {rows.shape}")
        if len(rows):
            self._rows[owner] = rows
            self._stacked = None

    def remove(self, owners: Iterable[int]) -> None:
        for owner in owners:
            if self._rows.pop(owner, None) is not None:
                self._stacked = None

    def clear(self) -> None:
        self._rows.clear()
        self._stacked = None

    def scores(self, owner: int, query: np.ndarray) -> np.ndarray | None:
        """Cosine of each sentence of one chunk with the query, in text order; None if it has none."""
        rows = self._rows.get(owner)
        return None if rows is None else rows @ np.asarray(query, dtype=np.float32).reshape(-1)

    def search(self, query: np.ndarray, k: int, allowed: Collection[int] | None = None) -> list[tuple[int, float]]:
        """Up to k (chunk id, best sentence cosine) pairs, best first; ``allowed`` restricts the chunks."""
        if not self._rows or k <= 0:
            return []
        vectors, owners = self._stack()
        scores = vectors @ np.asarray(query, dtype=np.float32).reshape(-1)
        if allowed is not None:
            scores = np.where(np.isin(owners, np.fromiter(allowed, dtype=np.int64)), scores, -np.inf)
        wanted = min(len(scores), k * ROWS_PER_HIT)
        top = np.argpartition(-scores, wanted - 1)[:wanted]
        best: dict[int, float] = {}
        for row in top[np.argsort(-scores[top], kind="stable")]:
            if not np.isfinite(scores[row]):
                break
            best.setdefault(int(owners[row]), float(scores[row]))
            if len(best) == k:
                break
        return list(best.items())

    def _stack(self) -> tuple[np.ndarray, np.ndarray]:
        if self._stacked is None:
            ids = sorted(self._rows)
            vectors = np.concatenate([self._rows[i] for i in ids])
            owners = np.repeat(np.asarray(ids, dtype=np.int64), [len(self._rows[i]) for i in ids])
            self._stacked = (vectors, owners)
        return self._stacked

    def save(self, folder: Path) -> None:
        if not self._rows:
            return
        vectors, owners = self._stack()
        np.save(folder / VECTORS_FILE, vectors)
        np.save(folder / OWNERS_FILE, owners)

    def load(self, folder: Path, dim: int | None, known: Collection[int]) -> None:
        """Read a saved version's sentence vectors (none if it has none), for the chunks in ``known``."""
        self.clear()
        if not (folder / VECTORS_FILE).exists():
            return
        vectors = np.load(folder / VECTORS_FILE)
        owners = np.load(folder / OWNERS_FILE)
        if vectors.ndim != 2 or len(vectors) != len(owners) or (dim and vectors.shape[1] != dim):
            raise ValueError(f"sentence vectors of shape {vectors.shape} do not fit {len(owners)} owners, dim {dim}")
        bounds = np.flatnonzero(np.diff(owners)) + 1
        for rows, group in zip(np.split(vectors, bounds), np.split(owners, bounds)):
            if len(group) and int(group[0]) in known:
                self._rows[int(group[0])] = np.ascontiguousarray(rows)
