"""Streaming multipart upload parsing: file parts go to a temporary folder while their size is counted.

Starlette's form parser spools whole files before a route sees them; this parser checks each file's
name and size as the bytes arrive, so an oversized upload is refused (413) without being stored, and
a bad file name (422) is refused before any byte of it is written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

import anyio
from pydantic import BaseModel
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from configs import Settings
from server.errors import InvalidInput, PayloadTooLarge
from server.knowledge_base.names import validate_file_name

logger = logging.getLogger(__name__)

MAX_FIELD_BYTES = 64 * 1024
MAX_FILES = 1000


@dataclass
class Upload:
    """Form fields and staged files of one multipart request; call cleanup() when done."""

    folder: Path
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def file_names(self) -> list[str]:
        return [path.name for path in self.files]

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _file_name(options: dict[bytes, bytes], raw: bytes) -> str | None:
    if b"filename" in options:
        return options[b"filename"].decode("utf-8", errors="replace")
    # RFC 7578 forbids filename*, but some clients send only that form (RFC 5987: charset''percent-encoded).
    text = raw.decode("latin-1")
    marker = "filename*="
    if marker in text:
        value = text.split(marker, 1)[1].split(";", 1)[0].strip().strip('"')
        charset, _, encoded = value.partition("''")
        return unquote(encoded or value, encoding=charset or "utf-8", errors="replace")
    return None


class _Collector:
    """MultipartParser callbacks that write file parts to disk and keep small fields in memory."""

    def __init__(self, upload: Upload, max_file_bytes: int, max_total_bytes: int) -> None:
        self.upload = upload
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self._total = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._name = ""
        self._file: BinaryIO | None = None
        self._file_name = ""
        self._size = 0
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._headers, self._size, self._data, self._file = {}, 0, bytearray(), None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        raw = self._headers.get(b"content-disposition", b"")
        _, options = parse_options_header(raw)
        self._name = options.get(b"name", b"").decode("utf-8", errors="replace")
        file_name = _file_name(options, raw)
        if file_name is None:
            return
        if len(self.upload.files) >= MAX_FILES:
            raise InvalidInput(f"too many files in one upload (at most {MAX_FILES})")
        self._file_name = validate_file_name(file_name)
        # One sub-folder per part, so two parts with the same name never overwrite each other.
        folder = self.upload.folder / str(len(self.upload.files))
        folder.mkdir()
        path = folder / self._file_name
        self.upload.files.append(path)
        self._file = open(path, "wb")  # noqa: SIM115 - closed in on_part_end or by cleanup

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        self._total += end - start
        if self._total > self.max_total_bytes:
            limit = self.max_total_bytes / (1024 * 1024)
            raise PayloadTooLarge(f"the upload is larger than {limit:g} MiB in all (kb.max_request_mb)")
        if self._file is not None:
            if self._size > self.max_file_bytes:
                self._file.close()
                limit = self.max_file_bytes / (1024 * 1024)
                raise PayloadTooLarge(f"file {self._file_name!r} is larger than the {limit:g} MiB upload limit")
            self._file.write(data[start:end])
        else:
            if self._size > MAX_FIELD_BYTES:
                raise InvalidInput(f"form field {self._name!r} is too large")
            self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        else:
            self.upload.fields[self._name] = self._data.decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def read_settings_upload(request: Request, settings: Settings) -> Upload:
    """``read_upload`` staging files under the cache folder, with the configured size limits."""
    mib = 1024 * 1024
    return await read_upload(request, settings.paths.cache_dir / "uploads", settings.kb.max_upload_mb * mib,
                             settings.kb.max_request_mb * mib)


async def read_upload(request: Request, staging_root: Path, max_file_bytes: int, max_total_bytes: int) -> Upload:
    """Parse a multipart/form-data request into fields and staged files (422/413 on bad input)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput("the upload must be sent as multipart/form-data with one or more 'files' parts")
    staging_root.mkdir(parents=True, exist_ok=True)
    upload = Upload(Path(tempfile.mkdtemp(prefix="upload-", dir=staging_root)))
    collector = _Collector(upload, max_file_bytes, max_total_bytes)
    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": collector.on_part_begin,
        "on_part_data": collector.on_part_data,
        "on_part_end": collector.on_part_end,
        "on_header_field": collector.on_header_field,
        "on_header_value": collector.on_header_value,
        "on_header_end": collector.on_header_end,
        "on_headers_finished": collector.on_headers_finished,
    })
    try:
        async for chunk in request.stream():
            if chunk:
                await anyio.to_thread.run_sync(parser.write, chunk)
        parser.finalize()
    except FormParserError as exc:
        collector.close()
        upload.cleanup()
        raise InvalidInput(f"malformed multipart body: {exc}") from exc
    except BaseException:
        collector.close()
        upload.cleanup()
        raise
    return upload


def multipart_openapi(fields: type[BaseModel] | None = None) -> dict[str, Any]:
    """The ``openapi_extra`` of a route reading a multipart upload: its 'files' parts and the form fields of
    ``fields`` (the route parses the body itself, so FastAPI cannot see it)."""
    properties: dict[str, Any] = {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}
    if fields is not None:
        properties.update(fields.model_json_schema()["properties"])
    schema = {"type": "object", "required": ["files"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
