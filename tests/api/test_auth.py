"""The same access rule on every transport: HTTP, WebSocket and gRPC.

With server.api_key set every caller needs ``Bearer <key>``; without a key only loopback
clients are served.
"""

from __future__ import annotations

import socket

import grpc
import openai
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from server.app import create_app
from server.grpc import chat_pb2, chat_pb2_grpc
from server.services import build_services
from tests.api.transport_support import GrpcServer, fake_llm_settings

KEY = "s3cret-key"
REMOTE = ("10.1.2.3", 40000)


def _app(tmp_path, fake, **overrides):
    # Services passed in stay open across the several TestClient sessions of one test.
    services = build_services(fake_llm_settings(tmp_path, fake.base_url, **overrides))
    yield create_app(services=services)
    services.close()


@pytest.fixture
def keyed_app(tmp_path, fake):
    yield from _app(tmp_path, fake, server={"api_key": KEY})


@pytest.fixture
def open_app(tmp_path, fake):
    yield from _app(tmp_path, fake)


# ---- HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_addr", [("127.0.0.1", 50000), REMOTE])
def test_http_with_a_key_needs_the_bearer_key_from_everyone_but_health(keyed_app, client_addr):
    with TestClient(keyed_app, client=client_addr) as client:
        missing = client.get("/v1/models")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        wrong = client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert client.get("/v1/models", headers={"Authorization": KEY}).status_code == 401
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert client.get("/health").status_code == 200


def test_http_without_a_key_serves_loopback_and_refuses_other_clients(open_app):
    with TestClient(open_app, client=("127.0.0.1", 50000)) as local:
        assert local.get("/v1/models").status_code == 200
    with TestClient(open_app, client=("::1", 50000)) as local6:
        assert local6.get("/v1/models").status_code == 200
    with TestClient(open_app, client=REMOTE) as remote:
        refused = remote.post("/v1/chat/completions", json={"model": "fake", "messages": []})
        assert refused.status_code == 401 and "this machine" in refused.json()["error"]["message"]
        assert remote.get("/v1/models", headers={"Authorization": "Bearer anything"}).status_code == 401
        assert remote.get("/health").status_code == 200


def test_openai_sdk_gets_authentication_error_with_a_wrong_key(keyed_app, fake):
    with TestClient(keyed_app) as http:
        wrong = openai.OpenAI(base_url="http://testserver/v1", api_key="nope", http_client=http, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        fake.queue("Authorised answer.")
        right = openai.OpenAI(base_url="http://testserver/v1", api_key=KEY, http_client=http, max_retries=0)
        reply = right.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Authorised answer."


# ---- WebSocket -------------------------------------------------------------------------------


def _ask_over_ws(ws) -> str:
    ws.send_json({"id": "a", "query": "hi"})
    while True:
        frame = ws.receive_json()
        if frame["type"] in ("done", "error"):
            return frame["type"]


def _assert_ws_refused(client: TestClient, url: str, headers: dict | None = None) -> None:
    with client.websocket_connect(url, headers=headers or {}) as ws:
        frame = ws.receive_json()
        assert frame["type"] == "error" and frame["code"] == "unauthorized" and frame["request_id"] is None
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401


def test_websocket_with_a_key_takes_the_header_or_the_query_token(keyed_app, fake):
    with TestClient(keyed_app, client=REMOTE) as client:
        _assert_ws_refused(client, "/ws/chat")
        _assert_ws_refused(client, "/ws/chat", {"Authorization": "Bearer nope"})
        _assert_ws_refused(client, "/ws/chat?api_key=nope")
        fake.queue("one", "two")
        with client.websocket_connect("/ws/chat", headers={"Authorization": f"Bearer {KEY}"}) as ws:
            assert _ask_over_ws(ws) == "done"
        with client.websocket_connect(f"/ws/chat?api_key={KEY}") as ws:
            assert _ask_over_ws(ws) == "done"


def test_websocket_without_a_key_refuses_non_loopback_clients(open_app, fake):
    with TestClient(open_app, client=REMOTE) as remote:
        _assert_ws_refused(remote, "/ws/chat")
    fake.queue("local answer")
    with TestClient(open_app, client=("127.0.0.1", 50000)) as local:
        with local.websocket_connect("/ws/chat") as ws:
            assert _ask_over_ws(ws) == "done"


# ---- gRPC ------------------------------------------------------------------------------------


def _grpc_ask(target: str, metadata=()) -> list[chat_pb2.AskEvent]:
    with grpc.insecure_channel(target) as channel:
        return list(chat_pb2_grpc.ChatStub(channel).Ask(chat_pb2.AskRequest(query="hi"), metadata=metadata, timeout=30))


def _assert_grpc_refused(target: str, metadata=()) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _grpc_ask(target, metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture
def grpc_services(tmp_path, fake, request):
    services = build_services(fake_llm_settings(tmp_path, fake.base_url, **request.param))
    yield services
    services.close()


@pytest.mark.parametrize("grpc_services", [{"server": {"api_key": KEY}}], indirect=True)
def test_grpc_with_a_key_needs_the_authorization_metadata(grpc_services, fake):
    with GrpcServer(grpc_services.settings, grpc_services) as server:
        _assert_grpc_refused(server.target)
        _assert_grpc_refused(server.target, (("authorization", "Bearer nope"),))
        fake.queue("Authorised gRPC answer.")
        events = _grpc_ask(server.target, (("authorization", f"Bearer {KEY}"),))
    assert events[-1].type == "done"
    assert "".join(e.delta.text for e in events) == "Authorised gRPC answer."


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            # Connecting a UDP socket sends nothing; it only picks the outgoing interface.
            probe.connect(("192.0.2.123", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.parametrize("grpc_services", [{}], indirect=True)
def test_grpc_without_a_key_refuses_peers_that_are_not_loopback(grpc_services, fake):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to call from")
    with GrpcServer(grpc_services.settings, grpc_services, host=address) as remote:
        _assert_grpc_refused(remote.target)
        # A key is no way around the rule when the server has none.
        _assert_grpc_refused(remote.target, (("authorization", "Bearer anything"),))
    with GrpcServer(grpc_services.settings, grpc_services) as local:
        fake.queue("Loopback gRPC answer.")
        assert _grpc_ask(local.target)[-1].type == "done"


# ---- Browsers: other web pages and DNS rebinding ----------------------------------------------

EVIL = "http://evil.example"


def test_a_foreign_web_page_cannot_upload_search_or_chat_through_a_local_browser(open_app, fake):
    with TestClient(open_app, client=("127.0.0.1", 50000)) as client:
        assert client.post("/kbs", json={"name": "docs"}).status_code in (200, 201)
        upload = client.post("/kbs/docs/files", files=[("files", ("secret.txt", b"the vault code is 4321"))],
                             headers={"Origin": EVIL})
        assert upload.status_code == 403 and upload.json()["error"]["code"] == "forbidden_origin"
        assert "secret.txt" not in client.get("/kbs/docs/files").text
        searched = client.post("/kbs/docs/search", json={"query": "vault"}, headers={"Origin": EVIL})
        assert searched.status_code == 403
        assert client.get("/kbs", headers={"Origin": "null"}).status_code == 403
        # The WebUI's own page and the API's own /docs page may call it; so may clients without an Origin.
        for origin in ("http://127.0.0.1:8501", "http://localhost:8501", "http://localhost:7861"):
            assert client.get("/kbs", headers={"Origin": origin}).status_code == 200, origin
        assert client.get("/kbs", headers={"Origin": "http://localhost:9999"}).status_code == 403


def test_a_text_plain_or_form_body_is_refused_before_anything_runs(open_app, fake):
    with TestClient(open_app, client=("127.0.0.1", 50000)) as client:
        plain = client.post("/chat/llm", content=b'{"query": "hi", "stream": false}',
                            headers={"content-type": "text/plain"})
        assert plain.status_code == 415 and plain.json()["error"]["code"] == "unsupported_media_type"
        form = client.post("/chat/llm", content=b"query=hi", headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.status_code == 415
        assert fake.requests == []  # the model was never asked
        assert client.get("/conversations").json()["items"] == []  # and nothing was stored


def test_without_a_key_a_foreign_host_name_is_refused_as_dns_rebinding(open_app):
    with TestClient(open_app, client=("127.0.0.1", 50000), base_url="http://attacker.example:7861") as rebound:
        refused = rebound.get("/kbs")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_host"
    for base in ("http://127.0.0.1:7861", "http://localhost:7861", "http://[::1]:7861"):
        with TestClient(open_app, client=("127.0.0.1", 50000), base_url=base) as local:
            assert local.get("/kbs").status_code == 200, base


def test_with_a_key_any_host_name_is_served_but_foreign_pages_are_not(keyed_app):
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(keyed_app, client=REMOTE, base_url="http://kb.example.org") as client:
        assert client.get("/kbs", headers=auth).status_code == 200
        assert client.get("/kbs", headers={**auth, "Origin": EVIL}).status_code == 403


def test_a_websocket_from_a_foreign_page_or_host_is_refused(open_app, fake):
    with TestClient(open_app, client=("127.0.0.1", 50000)) as client:
        with client.websocket_connect("/ws/chat", headers={"Origin": EVIL}) as ws:
            frame = ws.receive_json()
            assert frame["type"] == "error" and frame["code"] == "forbidden_origin"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
        assert closed.value.code == 4403
        fake.queue("fine")
        with client.websocket_connect("/ws/chat", headers={"Origin": "http://127.0.0.1:8501"}) as ws:
            assert _ask_over_ws(ws) == "done"
        with client.websocket_connect("/ws/chat", headers={"Host": "attacker.example"}) as ws:
            assert ws.receive_json()["code"] == "forbidden_host"
