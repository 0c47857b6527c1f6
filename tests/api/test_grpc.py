"""The gRPC Chat service, called through the checked-in stubs against a real server on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from server.grpc import chat_pb2, chat_pb2_grpc
from server.grpc.convert import event_message
from server.grpc.server import peer_host
from server.services import build_services
from tests.api.transport_support import GrpcServer, fake_llm_settings
from tests.fakes.fixtures import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def services(tmp_path_factory, fake):
    services = build_services(fake_llm_settings(tmp_path_factory.mktemp("grpc"), fake.base_url))
    yield services
    services.close()


@pytest.fixture(scope="module")
def channel(services):
    with GrpcServer(services.settings, services) as server, grpc.insecure_channel(server.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel):
    return chat_pb2_grpc.ChatStub(channel)


def ask(stub, **fields) -> list[chat_pb2.AskEvent]:
    return list(stub.Ask(chat_pb2.AskRequest(**fields), timeout=30))


def test_ask_streams_typed_events_ending_with_done(stub, fake):
    fake.queue("Answer over gRPC.")
    events = ask(stub, query="Hello gRPC")
    kinds = [e.type for e in events]
    assert kinds[-1] == "done" and "delta" in kinds
    assert "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta") == "Answer over gRPC."
    done = events[-1]
    assert done.WhichOneof("event") == "done" and done.done.conversation_id and done.done.message_id
    assert json.loads(done.json)["conversation_id"] == done.done.conversation_id
    assert all(json.loads(e.json)["type"] == e.type for e in events)


def test_a_second_question_continues_the_conversation(stub, fake):
    fake.queue("My name is Fake.", "You asked my name.")
    first = ask(stub, query="What is your name?")
    conversation_id = first[-1].done.conversation_id
    second = ask(stub, query="What did I ask?", conversation_id=conversation_id)
    assert second[-1].done.conversation_id == conversation_id
    sent = [m["content"] for m in fake.requests[-1]["messages"]]
    assert "What is your name?" in sent and "My name is Fake." in sent


def test_typed_fields_options_and_history_reach_the_model(stub, fake):
    fake.queue("ok")
    history = [chat_pb2.HistoryMessage(role="user", content="Earlier question"),
               chat_pb2.HistoryMessage(role="assistant", content="Earlier answer")]
    events = ask(stub, query="Now this", max_tokens=42, history=history, options={"temperature": "0.25"})
    assert events[-1].type == "done"
    sent = fake.requests[-1]
    assert sent["max_tokens"] == 42 and sent["temperature"] == 0.25
    contents = [m["content"] for m in sent["messages"]]
    assert contents.index("Earlier question") < contents.index("Earlier answer") < contents.index("Now this")


def test_failures_while_answering_arrive_as_an_error_event(stub, fake):
    events = ask(stub, query="anything", mode="kb", kb="absent")
    assert events[-1].type == "error" and events[-1].error.code == "not_found"
    fake.queue_error(500, "model exploded")
    events = ask(stub, query="anything")
    assert events[-1].error.code.startswith("llm_") and "model exploded" in events[-1].error.message


def test_a_cancelled_call_keeps_the_partial_answer_flagged_incomplete(stub, fake, services):
    fake.queue_hang(30)
    call = stub.Ask(chat_pb2.AskRequest(query="This will be cancelled"), timeout=30)
    start = next(call)
    assert start.type == "start"
    call.cancel()
    deadline = time.monotonic() + 10
    messages = []
    while time.monotonic() < deadline:
        messages = services.chat.conversations.get(start.start.conversation_id).messages
        if len(messages) == 2:
            break
        time.sleep(0.05)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].meta["incomplete"] is True and messages[1].meta["error"]["code"] == "cancelled"


@pytest.mark.parametrize(
    "fields, field_name",
    [({"query": ""}, "query"), ({"query": "hi", "mode": "telepathy"}, "mode"),
     ({"query": "hi", "temperature": 9.0}, "temperature"), ({"query": "hi", "options": {"top_k": "many"}}, "top_k")],
)
def test_invalid_requests_end_with_invalid_argument(stub, fields, field_name):
    with pytest.raises(grpc.RpcError) as err:
        ask(stub, **fields)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_name in err.value.details()


def test_sources_events_convert_to_typed_sources_keeping_the_json():
    event = {"type": "sources", "sources": [
        {"index": 1, "file": "劳动法.md", "location": "§ 第十条", "score": 0.82, "text": "第十条 ...",
         "url": "/kbs/laws/files/%E5%8A%B3.md/download", "kb": "laws"},
        {"index": 2, "file": "Example", "location": "", "score": 0.5, "text": "web", "url": None, "kb": None},
    ]}
    message = event_message(event)
    assert message.type == "sources" and message.WhichOneof("event") == "sources"
    first, second = message.sources.sources
    assert (first.index, first.file, first.location, first.kb) == (1, "劳动法.md", "§ 第十条", "laws")
    assert first.score == pytest.approx(0.82) and second.url == "" and second.kb == ""
    assert json.loads(message.json) == event
    assert event_message({"type": "sources", "sources": []}).WhichOneof("event") == "sources"
    assert event_message({"type": "future", "x": 1}).WhichOneof("event") is None


@pytest.mark.parametrize(
    "peer, host",
    [("ipv4:127.0.0.1:5000", "127.0.0.1"), ("ipv6:[::1]:5000", "::1"), ("ipv6:%5B::1%5D:5000", "::1"),
     ("ipv4:10.1.2.3:40000", "10.1.2.3"), ("unix:/tmp/s.sock", "localhost"), ("", None)],
)
def test_peer_strings_yield_the_client_host(peer, host):
    assert peer_host(peer) == host


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gRPC server exited early: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gRPC server did not start listening")


def test_python_m_server_grpc_server_serves_until_sigterm(tmp_path, fake):
    port = free_port()
    models = {"fake": {"kind": "openai_compatible", "base_url": fake.base_url, "model": "fake-model"}}
    env = {
        **os.environ,
        "KBCHAT_PATHS__DATA_ROOT": str(tmp_path),
        "KBCHAT_SERVER__GRPC_PORT": str(port),
        "KBCHAT_LLM__DEFAULT_MODEL": "fake",
        "KBCHAT_LLM__MODELS": json.dumps(models),
        "KBCHAT_CHAT__LLM_TITLES": "false",
    }
    log = tmp_path / "grpc.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.grpc.server"], cwd=REPO_ROOT, env=env,
            stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log, 60)
        fake.queue("From the standalone server.")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            events = list(chat_pb2_grpc.ChatStub(channel).Ask(chat_pb2.AskRequest(query="hi"), timeout=30))
        assert "".join(e.delta.text for e in events) == "From the standalone server."
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()
        assert "gRPC chat service stopping" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_malformed_message_is_refused_and_the_server_keeps_serving(channel, stub, fake):
    raw = channel.unary_stream("/kbchat.chat.v1.Chat/Ask")  # no serializers: the bytes go out as they are
    with pytest.raises(grpc.RpcError) as err:
        list(raw(b"\xff\xff\xff\xff not a protobuf", timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid message" in err.value.details()
    fake.queue("Still here.")
    assert ask(stub, query="hi")[-1].type == "done"
