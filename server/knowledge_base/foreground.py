"""Indexing gives way to the answers people are waiting for.

On a small CPU the embedding engine and the chat model share the same cores: while a 50-file upload is
being embedded, a chat answer reads its prompt at a fraction of its idle speed. ``Foreground`` is the
signal between them. Chat answers run inside ``answering()``; other processes' answers are seen through
probes (the bundled model server's queue). Ingestion calls ``give_way()`` before it reads a file, OCRs a
page or embeds a batch of texts, and waits there while anything is being answered.

The wait is bounded, so ingestion cannot starve: after waiting ``max_wait`` seconds in a row it runs for
the next ``max_wait`` seconds without waiting, then gives way again. Under a steady stream of questions
indexing thus keeps about half of the time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

Probe = Callable[[], bool]


class Foreground:
    """Whether an answer is under way in this process or behind a probe, and a bounded wait for the end of it."""

    def __init__(self, enabled: bool, max_wait: float, poll: float = 0.2) -> None:
        self.enabled = enabled
        self.max_wait = max_wait
        self.poll = poll
        self._answers = 0
        self._lock = threading.Lock()
        self._probes: list[Probe] = []
        self._free_until = 0.0  # after a wait ran out: no waiting before this monotonic time
        self.waited = 0.0  # seconds given way in total, for logs and tests

    def add_probe(self, probe: Probe) -> None:
        """Another source of "an answer is under way" (it must return quickly and never raise)."""
        self._probes.append(probe)

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Marks an answer being made in this process, from the question to its last token."""
        with self._lock:
            self._answers += 1
        try:
            yield
        finally:
            with self._lock:
                self._answers -= 1

    def busy(self) -> bool:
        with self._lock:
            if self._answers > 0:
                return True
        return any(probe() for probe in self._probes)

    def give_way(self, on_wait: Callable[[], None] | None = None) -> float:
        """Wait while an answer is under way (at most ``max_wait``), calling ``on_wait`` first when it does; the
        seconds waited."""
        if not self.enabled or time.monotonic() < self._free_until or not self.busy():
            return 0.0
        if on_wait is not None:
            on_wait()
        started = time.monotonic()
        deadline = started + self.max_wait
        while time.monotonic() < deadline:
            time.sleep(self.poll)
            if not self.busy():
                break
        else:
            self._free_until = time.monotonic() + self.max_wait
            logger.info("indexing waited %.0f s for answers; it runs on for %.0f s", self.max_wait, self.max_wait)
        waited = time.monotonic() - started
        self.waited += waited
        logger.debug("indexing gave way to an answer for %.2f s", waited)
        return waited
