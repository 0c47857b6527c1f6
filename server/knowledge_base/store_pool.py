"""An LRU pool of loaded knowledge-base stores, plus one writer lock per knowledge base."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from server.knowledge_base.vector_store import VectorStore


class StorePool:
    """Keeps at most ``size`` stores in memory; eviction loses nothing, since writers save before giving back.

    Writers hold ``writer_lock(kb)`` for a whole change (an upload batch, say), keep the store they took
    with ``get`` for all of it, and give it back with ``put`` after saving, so a store reloaded meanwhile
    by a reader never replaces newer state.
    """

    def __init__(self, size: int, opener: Callable[[str], VectorStore]) -> None:
        self.size = size
        self._opener = opener
        self._stores: OrderedDict[str, VectorStore] = OrderedDict()
        self._lock = threading.Lock()
        self._writer_locks: dict[str, threading.RLock] = {}

    def writer_lock(self, kb: str) -> threading.RLock:
        with self._lock:
            return self._writer_locks.setdefault(kb, threading.RLock())

    def get(self, kb: str) -> VectorStore:
        """The loaded store of a knowledge base, loading it on a miss."""
        with self._lock:
            store = self._stores.get(kb)
            if store is not None:
                self._stores.move_to_end(kb)
                return store
        store = self._opener(kb)
        with self._lock:
            # Another thread may have loaded it meanwhile; keep the first so all callers share one.
            current = self._stores.setdefault(kb, store)
            self._stores.move_to_end(kb)
            self._evict()
            return current

    def put(self, kb: str, store: VectorStore) -> None:
        with self._lock:
            self._stores[kb] = store
            self._stores.move_to_end(kb)
            self._evict()

    def discard(self, kb: str) -> None:
        """Forget a store (after a failed change or a deleted knowledge base); the next get reloads it."""
        with self._lock:
            self._stores.pop(kb, None)

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._stores)

    def clear(self) -> None:
        with self._lock:
            self._stores.clear()

    def _evict(self) -> None:
        while len(self._stores) > self.size:
            self._stores.popitem(last=False)
