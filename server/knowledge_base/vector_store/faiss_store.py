"""FAISS vector index: IndexIDMap2 over IndexFlatIP (exact inner product on normalised vectors = cosine)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from server.knowledge_base.vector_store.base import VectorStore

INDEX_FILE = "index.faiss"


def set_threads(threads: int) -> None:
    """OpenMP threads of FAISS in this process; 0 leaves FAISS's default.

    A single query on a flat index is a short scan: with more threads the start-up and the
    competition with the embedder cost more than the split saves.
    """
    if threads > 0:
        faiss.omp_set_num_threads(threads)


class FaissStore(VectorStore):
    """Exact cosine search with int64 ids; chunk texts and BM25 are kept by the base class."""

    kind = "faiss"
    _index: faiss.Index | None = None

    def do_init_index(self, dim: int) -> None:
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim)) if dim > 0 else None

    def do_load_index(self, folder: Path) -> None:
        index = faiss.read_index(str(folder / INDEX_FILE))
        if index.d != self.dim:
            raise ValueError(f"index dimension {index.d} differs from the recorded {self.dim}")
        self._index = index

    def do_save_index(self, folder: Path) -> None:
        if self._index is not None:
            faiss.write_index(self._index, str(folder / INDEX_FILE))

    def do_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._index is None:
            raise ValueError("the index has no dimension yet")
        self._index.add_with_ids(vectors, ids)

    def do_remove(self, ids: np.ndarray) -> None:
        if self._index is not None:
            self._index.remove_ids(faiss.IDSelectorBatch(ids))

    def do_search(self, vector: np.ndarray, k: int, ids: np.ndarray | None) -> list[tuple[int, float]]:
        if self._index is None or self._index.ntotal == 0:
            return []
        params = None
        if ids is not None:
            selector = faiss.IDSelectorBatch(ids)  # kept referenced until the search is done
            params = faiss.SearchParameters()
            params.sel = selector
        scores, found = self._index.search(vector, k, params=params)
        return [(int(i), float(s)) for i, s in zip(found[0], scores[0]) if i >= 0]

    def do_vectors(self, ids: np.ndarray) -> np.ndarray:
        if self._index is None:
            raise ValueError("the index has no dimension yet")
        return np.stack([self._index.reconstruct(int(i)) for i in ids.tolist()]).astype(np.float32)

    def do_count(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)
