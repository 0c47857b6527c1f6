"""An LRU pool of loaded knowledge-base stores, kept in step with the disk, plus one writer lock per
knowledge base that holds across processes.

Several processes may open one knowledge base: the API, the gRPC server, the CLI, a second API.
Each keeps its own pool, so two rules keep them from losing each other's writes:

* ``get`` compares the loaded store's version with the version ``CURRENT`` names on disk (one small
  file read) and reloads a store that another process has saved since;
* ``writer_lock`` is a thread lock plus an ``flock`` on ``<kb root>/.locks/<kb>.lock`` (outside the
  knowledge base's folder, which deleting it removes), so one writer at a time,
  in any process, loads, changes and saves a knowledge base. A writer that takes the store with ``get``
  under the lock therefore starts from the newest saved version.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from server.knowledge_base.vector_store import VectorStore, versions


class WriterLock:
    """Re-entrant within a thread; the file lock is taken by the outermost holder and released by it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> "WriterLock":
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        finally:
            self._thread_lock.release()


class StorePool:
    """Keeps at most ``size`` stores in memory; eviction loses nothing, since writers save before giving back.

    Writers hold ``writer_lock(kb)`` for a whole change (an upload batch, say), keep the store they took
    with ``get`` for all of it, and give it back with ``put`` after saving, so a store reloaded meanwhile
    by a reader never replaces newer state.
    """

    def __init__(self, size: int, opener: Callable[[str], VectorStore], lock_dir: Path) -> None:
        self.size = size
        self._opener = opener
        self._lock_dir = lock_dir
        self._stores: OrderedDict[str, VectorStore] = OrderedDict()
        self._lock = threading.Lock()
        self._writer_locks: dict[str, WriterLock] = {}

    def writer_lock(self, kb: str) -> WriterLock:
        with self._lock:
            lock = self._writer_locks.get(kb)
            if lock is None:
                lock = self._writer_locks[kb] = WriterLock(self._lock_dir / f"{kb}.lock")
            return lock

    def get(self, kb: str) -> VectorStore:
        """The loaded store of a knowledge base, loading it on a miss or when the disk holds a newer version."""
        with self._lock:
            store = self._stores.get(kb)
        if store is not None and store.version == versions.committed_version(store.root):
            with self._lock:
                if kb in self._stores:
                    self._stores.move_to_end(kb)
            return store
        fresh = self._opener(kb)
        with self._lock:
            # Another thread may have loaded it meanwhile; keep the newest so all callers share one.
            current = self._stores.get(kb)
            if current is None or current is store or current.version < fresh.version:
                current = self._stores[kb] = fresh
            self._stores.move_to_end(kb)
            self._evict()
            return current

    @contextmanager
    def saving(self, kb: str, store: VectorStore) -> Iterator[VectorStore]:
        """Change the store in the ``with`` body, then save it; if either fails the store is forgotten, so the
        next ``get`` reloads the last saved version instead of serving a half-applied change."""
        try:
            yield store
            store.save()
        except BaseException:
            self.discard(kb)
            raise

    def put(self, kb: str, store: VectorStore) -> None:
        with self._lock:
            self._stores[kb] = store
            self._stores.move_to_end(kb)
            self._evict()

    def discard(self, kb: str) -> None:
        """Forget a store (after a failed change or a deleted knowledge base); the next get reloads it."""
        with self._lock:
            self._stores.pop(kb, None)

    def clear(self) -> None:
        with self._lock:
            self._stores.clear()

    def _evict(self) -> None:
        while len(self._stores) > self.size:
            self._stores.popitem(last=False)
