"""Adapter for iFlytek Spark chat models over its signed websocket API."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlparse

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from configs.settings import LLMModelConfig
from server.llm.base import (
    BAD_RESPONSE,
    OVERLOADED,
    TIMEOUT,
    UNAVAILABLE,
    UNREACHABLE,
    ChatModel,
    LLMError,
    Message,
    Sampling,
)

DEFAULT_HOST = "wss://spark-api.xf-yun.com"
# version -> (domain, path); override or extend with options["versions"].
DEFAULT_VERSIONS: dict[str, tuple[str, str]] = {
    "v1.5": ("general", "/v1.1/chat"),
    "v2.0": ("generalv2", "/v2.1/chat"),
    "v3.0": ("generalv3", "/v3.1/chat"),
    "v3.5": ("generalv3.5", "/v3.5/chat"),
}
# Versions whose API rejects the "system" role: the system text is folded into the first user turn.
NO_SYSTEM_ROLE = {"v1.5", "v2.0"}
# Spark error codes for exceeded daily quota, QPS and concurrency limits.
OVERLOAD_CODES = {11201, 11202, 11203}


def rfc1123_now() -> str:
    return format_datetime(datetime.now(timezone.utc), usegmt=True)


def sign(api_secret: str, host: str, date: str, path: str) -> str:
    """The request signature: base64(HMAC-SHA256(secret, "host: ..\\ndate: ..\\nGET path HTTP/1.1"))."""
    origin = f"host: {host}\ndate: {date}\nGET {path} HTTP/1.1"
    mac = hmac.new(api_secret.encode(), origin.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def auth_url(url: str, api_key: str, api_secret: str, date: str | None = None) -> str:
    """``url`` with the authorization, date and host query parameters Spark expects."""
    parsed = urlparse(url)
    host = parsed.netloc
    date = date or rfc1123_now()
    signature = sign(api_secret, host, date, parsed.path)
    authorization = (
        f'api_key="{api_key}", algorithm="hmac-sha256", headers="host date request-line", signature="{signature}"'
    )
    query = urlencode({"authorization": base64.b64encode(authorization.encode()).decode(), "date": date, "host": host})
    return f"{url}?{query}"


class SparkModel(ChatModel):
    """A Spark model; options: app_id, version (v1.5/v2.0/v3.0/v3.5), versions, domain, url, uid."""

    def __init__(self, name: str, config: LLMModelConfig, default_temperature: float = 0.5) -> None:
        super().__init__(name, config, default_temperature)
        options = config.options
        self.version = str(options.get("version", "v3.5"))
        versions = {**DEFAULT_VERSIONS, **{k: tuple(v) for k, v in (options.get("versions") or {}).items()}}
        if self.version not in versions:
            raise LLMError(
                f"unknown Spark version {self.version!r} for model {name!r}; known: {', '.join(sorted(versions))}",
                code=UNAVAILABLE,
            )
        domain, path = versions[self.version]
        self.domain = str(options.get("domain") or config.model or domain)
        base = (config.base_url or DEFAULT_HOST).rstrip("/")
        self.url = str(options.get("url") or f"{base}{path}")
        self.app_id = str(options.get("app_id", ""))
        self.uid = str(options.get("uid") or uuid.uuid4().hex[:16])

    def _credentials(self) -> tuple[str, str]:
        key = self.config.api_key.get_secret_value() if self.config.api_key else ""
        secret = self.config.api_secret.get_secret_value() if self.config.api_secret else ""
        if not (key and secret and self.app_id):
            raise LLMError(
                f"Spark model {self.name!r} needs options.app_id, api_key and api_secret "
                "(set them through the environment)",
                code=UNAVAILABLE,
            )
        return key, secret

    def _messages(self, messages: list[Message]) -> list[Message]:
        out = [{"role": m["role"], "content": str(m.get("content") or "")} for m in messages]
        if self.version in NO_SYSTEM_ROLE:
            system = "\n".join(m["content"] for m in out if m["role"] == "system")
            out = [m for m in out if m["role"] != "system"]
            if system:
                first_user = next((m for m in out if m["role"] == "user"), None)
                if first_user is None:
                    out.insert(0, {"role": "user", "content": system})
                else:
                    first_user["content"] = f"{system}\n\n{first_user['content']}"
        return out

    def _payload(self, messages: list[Message], sampling: Sampling) -> dict[str, Any]:
        # Spark accepts temperature in (0, 1].
        temp = min(1.0, max(0.01, sampling.temperature))
        return {
            "header": {"app_id": self.app_id, "uid": self.uid},
            "parameter": {
                "chat": {"domain": self.domain, "temperature": temp, "max_tokens": sampling.max_tokens}
            },
            "payload": {"message": {"text": self._messages(messages)}},
        }

    async def _stream(self, messages: list[Message], sampling: Sampling) -> AsyncIterator[str]:
        key, secret = self._credentials()
        payload = self._payload(messages, sampling)
        timeout = self.config.timeout
        try:
            async with connect(auth_url(self.url, key, secret), open_timeout=timeout, close_timeout=2) as ws:
                await ws.send(json.dumps(payload, ensure_ascii=False))
                async for delta in self._frames(ws, timeout):
                    yield delta
        except TimeoutError as exc:
            raise LLMError(f"Spark server at {self.url} timed out after {timeout:g}s", code=TIMEOUT) from exc
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = (exc.response.body or b"").decode("utf-8", "replace")[:300]
            hint = " (check api_key, api_secret and the machine clock)" if status in (401, 403) else ""
            raise LLMError(
                f"Spark server at {self.url} refused the connection with HTTP {status}: {body or 'no details'}{hint}",
                code=OVERLOADED if status == 429 else BAD_RESPONSE,
            ) from exc
        except (InvalidHandshake, InvalidURI) as exc:
            raise LLMError(
                f"Spark server at {self.url} broke the websocket handshake: {exc}", code=BAD_RESPONSE
            ) from exc
        except ConnectionClosed as exc:
            raise LLMError(
                f"Spark server at {self.url} closed the connection before the answer ended", code=BAD_RESPONSE
            ) from exc
        except OSError as exc:
            raise LLMError(f"cannot reach Spark server at {self.url}: {exc}", code=UNREACHABLE) from exc

    def _bad_frame(self, raw: object) -> LLMError:
        return LLMError(f"Spark server at {self.url} sent a malformed frame: {str(raw)[:200]!r}", code=BAD_RESPONSE)

    async def _frames(self, ws: ClientConnection, timeout: float) -> AsyncIterator[str]:
        while True:
            # The timeout applies to each frame, so long answers that keep streaming are fine.
            raw = await asyncio.wait_for(ws.recv(), timeout)
            try:
                frame = json.loads(raw)
                header = frame["header"]
                code = int(header.get("code", 0))
                texts = ((frame.get("payload") or {}).get("choices") or {}).get("text") or []
                content = texts[0].get("content", "") if texts else ""
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                raise self._bad_frame(raw) from exc
            if code != 0:
                raise LLMError(
                    f"Spark error {code}: {header.get('message', 'no message')}",
                    code=OVERLOADED if code in OVERLOAD_CODES else BAD_RESPONSE,
                )
            if content:
                yield content
            if header.get("status") == 2:
                return
