"""The one HTTP client of the WebUI: every page talks to the kbchat API through ``ApiClient``.

Failures of any kind (API down, timeout, an error status, a stream cut short)
become ``ApiError(status, code, message)`` so pages can show a readable message
instead of a traceback.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from webui_pages.api_stream import ApiError, EventStream, error_from_response

__all__ = ["ApiClient", "ApiError", "EventStream"]

# Connecting to a local API is instant; a long connect wait only delays the "API is down" message.
CONNECT_TIMEOUT = 5.0
# An evaluation with query rewriting: the model writes an answer to each of up to 200 questions.
REWRITE_EVAL_TIMEOUT = 3600.0


def _segment(value: str) -> str:
    """Quote one path segment so KB and file names with spaces, slashes or CJK stay intact."""
    return quote(str(value), safe="")


class ApiClient:
    """Typed access to the kbchat HTTP API (knowledge bases, chat, conversations, settings)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
        )

    def close(self) -> None:
        self._http.close()

    # ---- transport -------------------------------------------------------------------------------

    def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send a built request; a network failure becomes ApiError (api_unreachable / api_timeout)."""
        try:
            return self._http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise ApiError(0, "api_timeout", f"the API at {self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise ApiError(
                0,
                "api_unreachable",
                f"cannot reach the kbchat API at {self.base_url}: is it running (`kbchat start --api`)?",
            ) from exc

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; raise ApiError unless the status is 2xx."""
        response = self.send(self._http.build_request(method, path, **kwargs))
        if response.is_error:
            raise error_from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(response.status_code, "bad_response", f"the API sent non-JSON data for {path}") from exc

    def stream(self, method: str, path: str, **kwargs: Any) -> EventStream:
        """Open a server-sent-event stream; errors before the first event raise on ``with``."""
        headers = {"Accept": "text/event-stream", **kwargs.pop("headers", {})}
        return EventStream(self, self._http.build_request(method, path, headers=headers, **kwargs))

    def fetch_bytes(self, path_or_url: str) -> bytes:
        """Download a file named by an API path (e.g. a source's download link)."""
        return self.request("GET", path_or_url.split("#", 1)[0]).content

    # ---- settings and models ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def public_settings(self) -> dict[str, Any]:
        return self._json("GET", "/settings/public")

    def model_ids(self) -> list[str]:
        """Ids of /v1/models, including ``kb/<name>`` pseudo-models."""
        body = self._json("GET", "/v1/models") or {}
        return [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict) and m.get("id")]

    # ---- knowledge bases -------------------------------------------------------------------------

    def list_kbs(self) -> list[dict[str, Any]]:
        return self._json("GET", "/kbs")

    def create_kb(
        self, name: str, description: str = "", embed_model: str | None = None, vector_store: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "description": description}
        if embed_model:
            body["embed_model"] = embed_model
        if vector_store:
            body["vector_store"] = vector_store
        return self._json("POST", "/kbs", json=body)

    def delete_kb(self, kb: str) -> None:
        self._json("DELETE", f"/kbs/{_segment(kb)}")

    def list_files(self, kb: str) -> list[dict[str, Any]]:
        return self._json("GET", f"/kbs/{_segment(kb)}/files")

    def upload_files_stream(
        self,
        kb: str,
        files: list[tuple[str, bytes]],
        *,
        override: bool = False,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        to_vector_store: bool = True,
        ocr: bool | None = None,
    ) -> EventStream:
        """Upload files and follow ingestion: progress events, then ``{"stage": "result", ...}``."""
        data: dict[str, Any] = {
            "override": str(override).lower(),
            "to_vector_store": str(to_vector_store).lower(),
            "stream": "true",
        }
        if chunk_size is not None:
            data["chunk_size"] = str(chunk_size)
        if chunk_overlap is not None:
            data["chunk_overlap"] = str(chunk_overlap)
        if ocr is not None:
            data["ocr"] = str(ocr).lower()
        files_part = [("files", (name, content)) for name, content in files]
        return self.stream("POST", f"/kbs/{_segment(kb)}/files", data=data, files=files_part)

    def delete_file(self, kb: str, file_name: str, *, delete_content: bool = False) -> None:
        self._json(
            "DELETE",
            f"/kbs/{_segment(kb)}/files/{_segment(file_name)}",
            params={"delete_content": str(delete_content).lower()},
        )

    def reingest_file(self, kb: str, file_name: str) -> dict[str, Any]:
        return self._json("POST", f"/kbs/{_segment(kb)}/files/{_segment(file_name)}/reingest")

    def download_file(self, kb: str, file_name: str) -> bytes:
        return self.fetch_bytes(f"/kbs/{_segment(kb)}/files/{_segment(file_name)}/download")

    def list_chunks(self, kb: str, file_name: str) -> list[dict[str, Any]]:
        return self._json("GET", f"/kbs/{_segment(kb)}/files/{_segment(file_name)}/chunks")

    def update_chunk(self, kb: str, doc_id: str, text: str) -> dict[str, Any]:
        return self._json("PUT", f"/kbs/{_segment(kb)}/chunks/{_segment(doc_id)}", json={"text": text})

    def delete_chunk(self, kb: str, doc_id: str) -> None:
        self._json("DELETE", f"/kbs/{_segment(kb)}/chunks/{_segment(doc_id)}")

    def search(
        self,
        kb: str,
        query: str,
        *,
        top_k: int | None = None,
        score_threshold: float | None = None,
        mode: str | None = None,
        file_name: str | None = None,
    ) -> list[dict[str, Any]]:
        body = {"query": query, "top_k": top_k, "score_threshold": score_threshold, "mode": mode,
                "file_name": file_name}
        return self._json("POST", f"/kbs/{_segment(kb)}/search", json={k: v for k, v in body.items() if v is not None})

    def evaluate(self, kb: str, questions: str, rewrite: bool = False) -> list[dict[str, Any]]:
        """Retrieval reports per search mode for JSON Lines questions (see POST /kbs/{kb}/eval); with
        ``rewrite``, each mode again searched with the chat model's rewrite of each question."""
        body = {"questions": questions, "rewrite": rewrite}
        options: dict[str, Any] = {"json": body}
        if rewrite:  # the model spends seconds on each question, up to 200 of them
            options["timeout"] = httpx.Timeout(REWRITE_EVAL_TIMEOUT, connect=CONNECT_TIMEOUT)
        return self._json("POST", f"/kbs/{_segment(kb)}/eval", **options)["reports"]

    def rebuild_stream(self, kb: str) -> EventStream:
        return self.stream("POST", f"/kbs/{_segment(kb)}/rebuild")

    # ---- chat --------------------------------------------------------------------------------------

    def chat_stream(self, mode: str, request: dict[str, Any]) -> EventStream:
        """Ask a question; events: start, delta, sources, tool, error, done."""
        body = {k: v for k, v in request.items() if v is not None}
        body["stream"] = True
        return self.stream("POST", f"/chat/{_segment(mode)}", json=body)

    def chat(self, mode: str, request: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in request.items() if v is not None}
        body["stream"] = False
        return self._json("POST", f"/chat/{_segment(mode)}", json=body)

    # ---- conversations and feedback ----------------------------------------------------------------

    def add_conversation_files(self, conv_id: str, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        """Drop files into a conversation; knowledge-base chat in it searches them. Per-file results."""
        parts = [("files", (name, data)) for name, data in files]
        return self._json("POST", f"/conversations/{_segment(conv_id)}/files", files=parts)["results"]

    def conversation_files(self, conv_id: str) -> list[dict[str, Any]]:
        return self._json("GET", f"/conversations/{_segment(conv_id)}/files")

    def create_conversation(self, title: str | None = None, mode: str | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"title": title, "mode": mode}.items() if v is not None}
        return self._json("POST", "/conversations", json=body)

    def list_conversations(self, page: int = 1, size: int = 50) -> dict[str, Any]:
        return self._json("GET", "/conversations", params={"page": page, "size": size})

    def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        return self._json("GET", f"/conversations/{_segment(conversation_id)}")

    def rename_conversation(self, conversation_id: str, title: str) -> dict[str, Any]:
        return self._json("PATCH", f"/conversations/{_segment(conversation_id)}", json={"title": title})

    def delete_conversation(self, conversation_id: str) -> None:
        self._json("DELETE", f"/conversations/{_segment(conversation_id)}")

    def export_conversation(self, conversation_id: str, fmt: str = "md") -> bytes:
        return self.request(
            "GET", f"/conversations/{_segment(conversation_id)}/export", params={"format": fmt}
        ).content

    def send_feedback(self, message_id: str, score: str, reason: str = "") -> dict[str, Any] | None:
        """Rate an answer "up" or "down"; calling again replaces the earlier rating."""
        return self._json("POST", f"/messages/{_segment(message_id)}/feedback", json={"score": score, "reason": reason})
