"""Knowledge-base answers begun for the model (chat.answer_lead), through the API, on the real SmolLM2 server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from configs import Settings
from server.app import create_app
from server.llm.local.assemble import ensure_weights
from server.llm.local.builtin import BUILTIN_MODELS
from server.services import build_services
from tests.chat_support import build_garden_kb

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def settings(smollm2_server, tmp_path_factory) -> Settings:
    data_root = tmp_path_factory.mktemp("lead")
    return Settings(paths={"data_root": data_root},
                    llm={"default_model": "smollm2-135m", "local": {"port": smollm2_server.port}},
                    chat={"llm_titles": False, "rewrite_query": False})


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    ensure_weights(BUILTIN_MODELS["smollm2-135m"], settings.paths.model_dir)
    services = build_services(settings)
    build_garden_kb(services)
    services.kb.add_files("garden", [("compost_zh.txt", "堆肥堆每两周翻一次，保持通气，就不会发臭。".encode())])
    with TestClient(create_app(services=services)) as test_client:
        yield test_client


def ask(client: TestClient, query: str, **body: object) -> dict:
    response = client.post("/chat/kb", json={"query": query, "kb_name": "garden", "stream": False,
                                             "temperature": 0, "max_tokens": 24, **body})
    assert response.status_code == 200, response.text
    result: dict = response.json()
    return result


def stored_answer(client: TestClient, answer: dict) -> str:
    messages = client.get(f"/conversations/{answer['conversation_id']}").json()["messages"]
    content: str = messages[-1]["content"]
    return content


@pytest.mark.parametrize(("query", "lead"), [
    ("How often should I turn the compost heap?", "According to ["),
    ("堆肥多久翻一次？", "根据资料["),
])
def test_the_answer_begins_with_the_lead_in_the_question_s_language(client, query, lead):
    answer = ask(client, query)
    assert answer["sources"] and answer["answer"].startswith(lead)
    assert len(answer["answer"]) > len(lead)  # the model went on from it
    assert stored_answer(client, answer) == answer["answer"]


def test_without_the_lead_the_model_begins_the_answer_itself(client, settings, monkeypatch):
    monkeypatch.setattr(settings.chat, "answer_lead", False)
    answer = ask(client, "How often should I turn the compost heap?")
    assert answer["answer"].strip() and not answer["answer"].startswith("According to [")
