"""Access rules shared by HTTP, WebSocket and gRPC.

With an API key set, every caller must present ``Bearer <key>``. Without one,
only loopback clients may connect.

A browser is a loopback client too, whatever page it shows, so requests a browser makes for a page
are checked as well (``check_browser``): a request carrying an ``Origin`` must come from the WebUI or
the API's own pages on this machine (or ``server.allowed_origins``), and without an API key the
``Host`` must name this machine, so a hostile name resolved to 127.0.0.1 (DNS rebinding) is refused.
Clients that are not browsers send no ``Origin`` and are unaffected.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from configs import Settings
from server.errors import Forbidden, Unauthorized


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def api_key(settings: Settings) -> str:
    """The configured API key, or "" when there is none."""
    key = settings.server.api_key
    return key.get_secret_value() if key is not None else ""


def has_api_key(settings: Settings) -> bool:
    return bool(api_key(settings))


def check_access(settings: Settings, authorization: str | None, client_host: str | None) -> None:
    """Raise ``Unauthorized`` unless the caller may use the API."""
    key = api_key(settings)
    if not key:
        if is_loopback(client_host):
            return
        raise Unauthorized("no API key is configured, so only clients on this machine may connect")
    expected = f"Bearer {key}"
    if not authorization or not hmac.compare_digest(authorization.strip().encode(), expected.encode()):
        raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")


def _host_name(host: str) -> str:
    """The name of a Host header value or URL netloc, without port or IPv6 brackets, lower case."""
    return (urlsplit(f"//{host}").hostname or "").lower()


def _is_local_name(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def check_browser(settings: Settings, origin: str | None, host: str | None) -> None:
    """Raise ``Forbidden`` for a request a foreign web page made, or (without a key) one to a foreign Host."""
    server = settings.server
    if origin is not None:
        allowed = {o.rstrip("/").lower() for o in server.allowed_origins}
        parts = urlsplit(origin.strip().lower())
        own_port = parts.port in (server.webui_port, server.api_port)
        if origin.strip().rstrip("/").lower() not in allowed and not (
            parts.scheme in ("http", "https") and own_port and _is_local_name(parts.hostname or "")
        ):
            raise Forbidden(f"requests from the web page at {origin!r} are not allowed (server.allowed_origins)",
                            code="forbidden_origin")
    if not has_api_key(settings):
        name = _host_name(host or "")
        names = {_host_name(h) for h in server.allowed_hosts}
        if server.host not in ("0.0.0.0", "::"):
            names.add(_host_name(server.host))
        if not (_is_local_name(name) or name in names):
            raise Forbidden(f"this API answers to this machine's names only, not {host!r} (server.allowed_hosts)",
                            code="forbidden_host")
