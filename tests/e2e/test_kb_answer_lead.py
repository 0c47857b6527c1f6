"""Knowledge-base answers begun for the model (chat.answer_lead), through the API, on the real SmolLM2 server."""

from __future__ import annotations

import re
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


LAW = """# 中华人民共和国劳动合同法

## 第三章 劳动合同的订立

第十九条 劳动合同期限三个月以上不满一年的，试用期不得超过一个月；劳动合同期限一年以上不满三年的，试用期不得超过二个月。

同一用人单位与同一劳动者只能约定一次试用期。

第二十条 劳动者在试用期的工资不得低于本单位相同岗位最低档工资或者劳动合同约定工资的百分之八十。
"""

# The quoting lead (kb_answer_quote_zh): passage number, law and article, the clause.
QUOTE = re.compile(r"根据资料\[(\d)\]《中华人民共和国劳动合同法》(第[一二三四五六七八九十]+条)：“(.+?)”")


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
    services.kb.add_files("garden", [("compost_zh.txt", "堆肥堆每两周翻一次，保持通气，就不会发臭。".encode()),
                                     ("labour_law.md", LAW.encode())])
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


def test_a_chinese_answer_begins_by_quoting_the_highlighted_clause_with_its_law_and_article(client):
    answer = ask(client, "我签了两年的劳动合同，试用期最长能约定多久？", top_k=3)
    quote = QUOTE.match(answer["answer"])
    assert quote, answer["answer"]
    number, article, sentence = int(quote[1]), quote[2], quote[3]
    source = next(s for s in answer["sources"] if s["index"] == number)
    assert source["file"] == "labour_law.md" and f"{article} " in source["text"]
    # The quoted clause is one the source highlights, in the article named.
    highlighted = "".join(source["text"][s:e] for s, e in source["highlights"])
    assert sentence in highlighted
    assert source["text"].index(sentence) > source["text"].index(article)
    assert stored_answer(client, answer) == answer["answer"]


def test_without_quoting_the_chinese_answer_begins_with_the_plain_lead(client, settings, monkeypatch):
    monkeypatch.setattr(settings.chat, "quote_evidence", [])
    answer = ask(client, "我签了两年的劳动合同，试用期最长能约定多久？", top_k=3)
    assert answer["answer"].startswith("根据资料[") and not QUOTE.match(answer["answer"])
