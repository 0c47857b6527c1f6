"""Access rules shared by HTTP, WebSocket and gRPC.

With an API key set, every caller must present ``Bearer <key>``. Without one,
only loopback clients may connect.
"""

from __future__ import annotations

import hmac
import ipaddress

from configs import Settings
from server.errors import Unauthorized


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check_access(settings: Settings, authorization: str | None, client_host: str | None) -> None:
    """Raise ``Unauthorized`` unless the caller may use the API."""
    key = settings.server.api_key
    if key is None or not key.get_secret_value():
        if is_loopback(client_host):
            return
        raise Unauthorized("no API key is configured, so only clients on this machine may connect")
    expected = f"Bearer {key.get_secret_value()}"
    if not authorization or not hmac.compare_digest(authorization.strip().encode(), expected.encode()):
        raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")
