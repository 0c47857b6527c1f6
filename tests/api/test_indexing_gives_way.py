"""Files added while a chat answer streams wait for the answer to end, over real HTTP: the answer keeps the
cores, and the files are indexed right after it."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from server.app import create_app
from server.services import build_services
from tests.api.transport_support import LiveServer, fake_llm_settings, wait_for

REPLY = "One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen."
LAW = "\n".join(f"第{i}条 用人单位应当按照劳动合同的约定，向劳动者及时足额支付第{i}项劳动报酬。" for i in range(1, 13))


@pytest.fixture
def live(tmp_path, fake):
    services = build_services(fake_llm_settings(tmp_path, fake.base_url))
    with LiveServer(create_app(services=services)) as server:
        yield server, services
    services.close()


def test_files_added_during_an_answer_are_indexed_after_it(live, fake):
    server, services = live
    services.kb.foreground.poll = 0.02
    upload: dict[str, object] = {}
    with httpx.Client(base_url=server.url, timeout=120, trust_env=False) as client:
        assert client.post("/kbs", json={"name": "laws"}).status_code == 201

        def add_file() -> None:
            # Streamed, as the web UI uploads: progress events, then the result.
            with client.stream("POST", "/kbs/laws/files", data={"stream": "true"},
                               files=[("files", ("law.txt", LAW.encode()))]) as response:
                events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
            upload.update(status=response.status_code, events=events, ended=time.monotonic())

        fake.queue_slow(REPLY, seconds_per_chunk=0.3)
        adding = threading.Thread(target=add_file)
        with client.stream("POST", "/chat/llm", json={"query": "Count slowly to sixteen."}) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data: {") and json.loads(line[6:]).get("type") == "delta":
                    break  # the answer is under way
            adding.start()
            wait_for(lambda: services.kb.foreground.waited > 0, "adding the file to give way to the answer", 60)
            for line in lines:
                pass  # the rest of the answer
            answer_ended = time.monotonic()
        adding.join(120)
    assert upload["status"] == 200, upload
    stages = [event["stage"] for event in upload["events"]]
    # The page is told why the file's progress stops, then it goes on.
    assert "paused" in stages and "chunks" in stages[stages.index("paused"):], stages
    paused = upload["events"][stages.index("paused")]
    assert paused["file_name"] == "law.txt" and paused["message"]
    assert upload["events"][-1]["stage"] == "result"
    assert upload["events"][-1]["results"][0]["status"] == "indexed"
    assert upload["ended"] >= answer_ended
    assert services.kb.foreground.busy() is False
