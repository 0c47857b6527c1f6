"""Progress reporting of ingestion: turns steps into ProgressEvents for an optional callback."""

from __future__ import annotations

import logging
from collections.abc import Callable

from server.knowledge_base.schemas import FileResult, ProgressEvent

logger = logging.getLogger(__name__)


class Reporter:
    """Sends ProgressEvents to a callback; a failing callback (a client gone away) never stops ingestion."""

    def __init__(self, callback: Callable[[ProgressEvent], None] | None, files_total: int) -> None:
        self.callback = callback
        self.files_total = files_total
        self.files_done = 0

    def _send(self, **fields: str | int) -> None:
        if self.callback is None:
            return
        try:
            self.callback(ProgressEvent(files_done=self.files_done, files_total=self.files_total, **fields))
        except Exception:  # noqa: BLE001 - progress is best effort
            logger.debug("progress callback failed", exc_info=True)

    def file_start(self, name: str) -> None:
        self._send(stage="file_start", file_name=name)

    def ocr_page(self, name: str, done: int, total: int) -> None:
        """OCR of a file's pages is under way: done of total pages read."""
        self._send(stage="ocr", file_name=name, pages_done=done, pages_total=total)

    def chunks(self, name: str, done: int, total: int) -> None:
        self._send(stage="chunks", file_name=name, chunks_done=done, chunks_total=total)

    def paused(self, name: str) -> None:
        """Adding the file waits for a chat answer to end (see foreground.py)."""
        self._send(stage="paused", file_name=name, message="waiting for a chat answer to end")

    def file_done(self, result: FileResult) -> None:
        self.files_done += 1
        if result.status == "error":
            self._send(stage="error", file_name=result.file_name, message=result.error)
        message = result.status if not result.error else f"{result.status}: {result.error}"
        self._send(stage="file_done", file_name=result.file_name, chunks_done=result.chunks,
                   chunks_total=result.chunks, message=message)

    def file_failed(self, name: str, message: str) -> None:
        """A file already reported done failed afterwards (its batch could not be saved)."""
        self._send(stage="error", file_name=name, message=message)

    def saving(self) -> None:
        """Every file is through; the store is being written (seconds for a large knowledge base)."""
        self._send(stage="saving")

    def done(self, results: list[FileResult]) -> None:
        counts = {status: sum(r.status == status for r in results) for status in ("indexed", "stored", "skipped",
                                                                                  "error")}
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        chunks = sum(r.chunks for r in results)
        self._send(stage="done", chunks_done=chunks, chunks_total=chunks, message=summary or "nothing to do")
