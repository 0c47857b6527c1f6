"""Helpers of the tests of one vector store kind: small unit vectors, a store opened by kind, one filled with two
files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from server.knowledge_base.vector_store import StoreOptions, VectorStore, open_store

DIM = 8
REPO = str(Path(__file__).resolve().parents[2])


def unit(*values: float) -> np.ndarray:
    """A unit vector of DIM dimensions starting with ``values``."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def open_kb(kind: str, tmp_path: Path, options: StoreOptions, kb: str = "kb", *, fresh: bool = False) -> VectorStore:
    return open_store(kind, tmp_path / kb, kb, "model-a", options, fresh=fresh)


def filled(kind: str, tmp_path: Path, options: StoreOptions, kb: str = "kb") -> VectorStore:
    """A saved store of two chunks: 'apples' in a.txt and 'bananas' in b.txt."""
    store = open_kb(kind, tmp_path, options, kb)
    store.add([("a0", "apples", {"source": "a.txt"}), ("b0", "bananas", {"source": "b.txt"})],
              np.stack([unit(1, 0), unit(0, 1)]))
    store.save()
    return store
