"""Errors and server-sent-event streams of the WebUI's API client."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from webui_pages.api_client import ApiClient


class ApiError(Exception):
    """A failed API call: HTTP status (0 when no answer came), stable code and readable message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code!r}, {self.message!r})"


def error_from_response(response: httpx.Response) -> ApiError:
    """Turn an error response into an ApiError, whatever shape its body has."""
    code = f"http_{response.status_code}"
    message = response.reason_phrase or "request failed"
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip()
        return ApiError(response.status_code, code, text[:500] or message)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return ApiError(response.status_code, str(err.get("code") or code), str(err.get("message") or message))
        if isinstance(err, str):
            return ApiError(response.status_code, code, err)
        detail = body.get("detail")
        if detail is not None:
            return ApiError(response.status_code, code, detail if isinstance(detail, str) else json.dumps(detail))
    return ApiError(response.status_code, code, message)


class EventStream:
    """Server-sent events of one response, as parsed JSON objects; use it as a context manager.

    Leaving the ``with`` block closes the HTTP response, which is how a page stops
    an answer that is still streaming.
    """

    def __init__(self, client: "ApiClient", request: httpx.Request) -> None:
        self._client = client
        self._request = request
        self._response: httpx.Response | None = None
        self.finished = False  # True once the server sent ``data: [DONE]``
        self.closed = False  # True once close() was called, e.g. by a Stop button

    def __enter__(self) -> "EventStream":
        self._response = self._client.send(self._request, stream=True)
        if self.closed:  # stopped while waiting for the answer to start
            self.close()
            return self
        if self._response.is_error:
            self._response.read()
            error = error_from_response(self._response)
            self.close()
            raise error
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the stream; safe to call from another thread while one is blocked reading it."""
        self.closed = True
        response = self._response
        if response is None:
            return
        # Closing a socket does not wake a thread blocked in recv(); shutting it down does, and
        # tells the server at once that nobody is listening any more.
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other side
        response.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._response is None:
            raise RuntimeError("use EventStream inside a with block")
        try:
            yield from self._events()
        except (httpx.TransportError, httpx.StreamError) as exc:
            if self.closed:
                return  # we hung up ourselves: not an error
            if isinstance(exc, httpx.TimeoutException):
                raise ApiError(
                    0, "api_timeout", f"the API stopped sending data for {self._client.timeout:.0f} s"
                ) from exc
            raise ApiError(0, "stream_interrupted", f"the connection to the API broke mid-answer ({exc})") from exc

    def _events(self) -> Iterator[dict[str, Any]]:
        data_lines: list[str] = []
        for line in self._response.iter_lines():
            if line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
                continue
            if line.strip() or not data_lines:
                continue  # comments, event names, keep-alives
            payload, data_lines = "\n".join(data_lines), []
            if payload.strip() == "[DONE]":
                self.finished = True
                return
            yield self._parse(payload)
        if data_lines:
            payload = "\n".join(data_lines)
            if payload.strip() == "[DONE]":
                self.finished = True
                return
            yield self._parse(payload)
        if not self.closed:
            # Every kbchat stream ends with [DONE]; without it the server stopped half-way.
            raise ApiError(0, "stream_interrupted", "the API closed the stream before it was complete")

    @staticmethod
    def _parse(payload: str) -> dict[str, Any]:
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise ApiError(0, "bad_stream", f"the API sent an unreadable event: {payload[:200]!r}") from exc
        if not isinstance(event, dict):
            raise ApiError(0, "bad_stream", f"the API sent an unexpected event: {payload[:200]!r}")
        return event
