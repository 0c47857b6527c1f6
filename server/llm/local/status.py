"""The client side of the bundled model server proxy's own endpoints: where they are and what they say."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from configs import Settings

# Answered by the proxy itself: how many generations run and wait, and how fast the model read a prompt.
QUEUE_PATH = "/queue"
SPEED_PATH = "/speed"
# Answered by the model process (scoring.py): how likely the model finds a text after each of several others.
SCORE_PATH = "/kbchat/score"
# Seconds to wait for the bundled model server's queue: it answers at once, or it does not run.
LOCAL_STATUS_TIMEOUT = 0.5


def local_base_url(settings: Settings) -> str:
    """The OpenAI base URL of the bundled model server (``kbchat llm serve``)."""
    local = settings.llm.local
    host = "127.0.0.1" if local.host in ("0.0.0.0", "::", "") else local.host
    return f"http://{host}:{local.port}/v1"


def status_url(base_url: str, path: str) -> str:
    """The proxy endpoint ``path`` of a bundled model server whose OpenAI base URL is ``base_url``."""
    return base_url.rstrip("/").removesuffix("/v1") + path


def local_score_url(settings: Settings) -> str:
    """Where the bundled model server (``kbchat llm serve``) scores continuations (``SCORE_PATH``)."""
    return status_url(local_base_url(settings), SCORE_PATH)


def auth_headers(api_key: SecretStr | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}


def queue_depth_of(body: dict[str, Any] | None) -> int | None:
    """Generations running and waiting, from a ``/queue`` answer; None when it says nothing usable."""
    try:
        return int(body["active"]) + int(body["waiting"]) if body else None
    except (KeyError, TypeError, ValueError):
        return None


def queue_depth(base_url: str, api_key: SecretStr | None, timeout: float) -> int | None:
    """Ask the bundled model server now (blocking); None when it does not answer."""
    try:
        response = httpx.get(status_url(base_url, QUEUE_PATH), headers=auth_headers(api_key), timeout=timeout,
                             trust_env=False)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return queue_depth_of(body if isinstance(body, dict) else None)


def local_model_busy(settings: Settings) -> bool:
    """Whether the bundled model server is generating or has generations waiting, for any process (blocking;
    False when it does not run)."""
    return bool(queue_depth(local_base_url(settings), settings.server.api_key, LOCAL_STATUS_TIMEOUT))
