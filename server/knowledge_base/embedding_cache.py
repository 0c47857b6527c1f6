"""Persistent embedding cache: (model name, sha256 of the exact embedded text) -> float32 vector.

Re-ingesting unchanged text, rebuilding a vector store or re-uploading a file costs no encoding.
It lives in its own SQLite file so it never contends with the metadata database.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# SQLite limits the number of bound parameters per statement; stay well under it.
_LOOKUP_BATCH = 500


def text_key(text: str) -> str:
    """The cache key of a text: sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Thread-safe SQLite store of float32 vectors keyed by model and text hash."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS embedding ("
            " model TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
            " PRIMARY KEY (model, key))"
        )
        self._conn.commit()

    def get_many(self, model: str, keys: list[str]) -> dict[str, np.ndarray]:
        """Vectors found for the given keys (missing keys are absent from the result)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _LOOKUP_BATCH):
                batch = unique[start : start + _LOOKUP_BATCH]
                marks = ",".join("?" * len(batch))
                rows = self._conn.execute(
                    f"SELECT key, dim, vector FROM embedding WHERE model = ? AND key IN ({marks})",
                    [model, *batch],
                ).fetchall()
                for key, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape[0] == dim:
                        found[key] = vector
        return found

    def put_many(self, model: str, items: list[tuple[str, np.ndarray]]) -> None:
        """Store vectors; existing entries are replaced."""
        if not items:
            return
        rows = [
            (model, key, int(vec.shape[0]), np.ascontiguousarray(vec, dtype=np.float32).tobytes())
            for key, vec in items
        ]
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embedding (model, key, dim, vector) VALUES (?, ?, ?, ?)", rows
            )
            self._conn.commit()

    def count(self, model: str | None = None) -> int:
        """Number of cached vectors, for one model or all."""
        with self._lock:
            if model is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM embedding").fetchone()[0])
            return int(self._conn.execute("SELECT COUNT(*) FROM embedding WHERE model = ?", (model,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
