"""Two API processes on different ports, one PostgreSQL database (metadata, history and pgvector) and one data
folder: what is uploaded through one is searched through the other at once, and a conversation started on
one continues on the other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.chat_support import GARDEN_FILES, parse_sse
from tests.fakes.fixtures import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BEES = "Bees visit lavender and clover; a strong hive holds about fifty thousand bees in summer."


@contextmanager
def api_process(name: str, env: dict[str, str], log_dir: Path) -> Iterator[httpx.Client]:
    """`uvicorn server.app:create_app` in its own process on a free port; a client for it."""
    port = free_port()
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=REPO_ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, trust_env=False)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"API {name} did not start:\n{(log_dir / f'{name}.log').read_text()[-3000:]}")
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield client
    finally:
        client.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def replicas(tmp_path, fake, pg_url) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    models = {"fake": {"kind": "openai_compatible", "base_url": fake.base_url, "model": "fake-model",
                       "timeout": 30}}
    env = {"KBCHAT_PATHS__DATA_ROOT": str(tmp_path / "data"), "KBCHAT_PATHS__DATABASE_URL": pg_url,
           "KBCHAT_LLM__MODELS": json.dumps(models), "KBCHAT_LLM__DEFAULT_MODEL": "fake",
           "KBCHAT_CHAT__LLM_TITLES": "false", "KBCHAT_CHAT__REWRITE_QUERY": "false"}
    with ExitStack() as stack:
        first = stack.enter_context(api_process("api-a", env, tmp_path))
        second = stack.enter_context(api_process("api-b", env, tmp_path))
        yield first, second


def _search(client: httpx.Client, query: str) -> list[str]:
    response = client.post("/kbs/garden/search", json={"query": query, "top_k": 1, "score_threshold": 0})
    assert response.status_code == 200, response.text
    return [hit["metadata"]["source"] for hit in response.json()]


def test_two_api_processes_share_knowledge_bases_and_conversations(replicas, fake):
    a, b = replicas
    assert a.post("/kbs", json={"name": "garden", "vector_store": "pgvector"}).status_code == 201
    upload = a.post("/kbs/garden/files", files=[("files", (n, t.encode())) for n, t in GARDEN_FILES.items()])
    assert upload.status_code == 200, upload.text
    assert [k["name"] for k in b.get("/kbs").json()] == ["garden"]
    assert _search(b, "How often should compost be turned?") == ["garden.md"]  # at once, on the other one
    assert b.post("/kbs/garden/files", files=[("files", ("bees.txt", BEES.encode()))]).status_code == 200
    assert _search(a, "How many bees live in a hive?") == ["bees.txt"]  # a's loaded store sees b's upload
    assert {f["file_name"] for f in a.get("/kbs/garden/files").json()} == {*GARDEN_FILES, "bees.txt"}

    # The follow-up on b is first rewritten to stand alone, from the history a stored.
    fake.queue("Every two weeks [1].", "How many bees are in a hive?", "In summer, about fifty thousand [1].")
    first = parse_sse(a.post("/chat/kb", json={"query": "How often is compost turned?", "kb_name": "garden",
                                               "top_k": 1}).text)
    conversation_id = first[-2]["conversation_id"]
    second = parse_sse(b.post("/chat/kb", json={"query": "And how many bees are in a hive?", "kb_name": "garden",
                                                "top_k": 1, "conversation_id": conversation_id}).text)
    assert second[-2]["type"] == "done"
    condensing = json.dumps(fake.requests[-2]["messages"])
    assert "How often is compost turned?" in condensing and "Every two weeks" in condensing  # b read a's turn
    stored = a.get(f"/conversations/{conversation_id}").json()["messages"]
    assert [m["content"] for m in stored] == ["How often is compost turned?", "Every two weeks [1].",
                                              "And how many bees are in a hive?",
                                              "In summer, about fifty thousand [1]."]
