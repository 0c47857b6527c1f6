"""What the stores that keep vectors in a database engine (pgvector, Milvus) share: versioned rows.

Each row carries the store version that added it and the one that removed it, so a process that loaded version V
searches exactly the vectors of V while a writer prepares V+1. Changes wait in memory (``_pending`` to add,
``_removed`` to drop) until the save writes them tagged with the new version; searches and counts meanwhile see
the saved rows of V with these changes applied. A subclass says how to count, read, search and write its rows.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import numpy as np

from server.knowledge_base.vector_store import versions
from server.knowledge_base.vector_store.base import VectorStore


class VersionedRowStore(VectorStore):
    def _reset_rows(self) -> None:
        """No loaded version and no change waiting (call from ``configure``)."""
        self._index_dim = 0
        self._visible_at = 0  # the store version whose rows searches see
        self._pending: dict[int, np.ndarray] = {}
        self._removed: set[int] = set()
        self._replace_all = False

    # ----- what a subclass does with its engine
    @abstractmethod
    def _saved_count(self) -> int:
        """How many rows the loaded version holds."""

    @abstractmethod
    def _saved_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The loaded version's vectors of these ids."""

    @abstractmethod
    def _search_saved(self, vector: np.ndarray, k: int, ids: np.ndarray | None) -> list[tuple[int, float]]:
        """The loaded version's k best (id, cosine) for the vector, among ``ids`` when given."""

    @abstractmethod
    def _write_rows(self, new: int, base: int, replace_all: bool) -> None:
        """Write the waiting changes as version ``new`` over the committed ``base`` (every row anew when
        ``replace_all``), undoing first what a failed save after ``base`` left behind."""

    # ----- VectorStore hooks
    def do_init_index(self, dim: int) -> None:
        if dim == 0 or (self._index_dim and dim != self._index_dim):
            self._replace_all = True  # clear(): every saved row goes at the next save
        self._index_dim = dim
        self._pending.clear()
        self._removed.clear()

    def do_load_index(self, folder: Path) -> None:
        self._index_dim = int(self.dim or 0)
        self._visible_at = versions.version_number(folder)

    def do_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        for idx, row in zip(ids.tolist(), vectors):
            self._pending[int(idx)] = np.array(row, dtype=np.float32)

    def do_remove(self, ids: np.ndarray) -> None:
        for idx in ids.tolist():
            if self._pending.pop(int(idx), None) is None:
                self._removed.add(int(idx))

    def do_count(self) -> int:
        saved = self._saved_count() if self._index_dim and not self._replace_all else 0
        return saved - len(self._removed) + len(self._pending)

    def do_vectors(self, ids: np.ndarray) -> np.ndarray:
        wanted = [int(i) for i in ids.tolist()]
        found = {i: self._pending[i] for i in wanted if i in self._pending}
        missing = [i for i in wanted if i not in found]
        if missing:
            found.update(self._saved_vectors(missing))
        return np.stack([found[i] for i in wanted]).astype(np.float32)

    def do_search(self, vector: np.ndarray, k: int, ids: np.ndarray | None) -> list[tuple[int, float]]:
        query = vector.reshape(-1)
        hits: list[tuple[int, float]] = []
        if self._index_dim and not self._replace_all:
            hits = [(i, s) for i, s in self._search_saved(query, k + len(self._removed), ids) if i not in self._removed]
        wanted = None if ids is None else set(ids.tolist())
        hits += [(idx, float(np.dot(row, query))) for idx, row in self._pending.items()
                 if wanted is None or idx in wanted]
        return sorted(hits, key=lambda hit: -hit[1])[:k]

    def do_save_index(self, folder: Path) -> None:
        new, base = versions.version_number(folder), versions.committed_version(self.root)
        self._write_rows(new, base, self._replace_all or self._visible_at != base)
        self._pending.clear()
        self._removed.clear()
        self._replace_all = False
        self._visible_at = new
