"""The agent with a scripted model: tool calling and the ReAct text loop, with calculator and KB search."""

from __future__ import annotations

import json
import time

import pytest

from tests.chat_support import answer_of, build_garden_kb, collect, kb_services, only


@pytest.fixture(scope="module")
def kb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent_kb")
    services = kb_services(root, "http://127.0.0.1:9/v1")
    build_garden_kb(services)
    services.close()
    return root


@pytest.fixture
def tool_agent(kb_root, fake_openai):
    services = kb_services(kb_root, fake_openai.base_url, tools=True, chat={"agent_max_steps": 3})
    yield services
    services.close()


@pytest.fixture
def react_agent(kb_root, fake_openai):
    services = kb_services(kb_root, fake_openai.base_url, tools=False, chat={"agent_max_steps": 3})
    yield services
    services.close()


def tools_of(events):
    return [{k: v for k, v in e.items() if k != "type"} for e in events if e["type"] == "tool"]


def test_tool_calling_agent_uses_the_calculator(tool_agent, fake_openai):
    fake_openai.queue_tool_call("calculator", {"expression": "23 * 19"})
    fake_openai.queue("23 times 19 is 437.")
    events = collect(tool_agent, query="What is 23 times 19?", mode="agent")
    assert tools_of(events) == [{"tool": "calculator", "input": '{"expression": "23 * 19"}', "output": "437",
                                 "error": False}]
    assert answer_of(events) == "23 times 19 is 437." and events[-1]["type"] == "done"
    first, second = fake_openai.requests
    assert {t["function"]["name"] for t in first["tools"]} >= {"calculator", "kb_search", "unit_convert"}
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "437"
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "calculator"
    stored = tool_agent.chat.conversations.get(events[0]["conversation_id"]).messages[-1]
    assert stored.meta["tools"] == tools_of(events) and stored.meta["agent"] == "tool_calling"


def test_tool_calling_agent_searches_the_knowledge_base_and_cites_it(tool_agent, fake_openai):
    fake_openai.queue_tool_call("kb_search", {"query": "how often to turn compost"})
    fake_openai.queue("Every two weeks [1].")
    events = collect(tool_agent, query="How often should compost be turned?", mode="agent", kb_name="garden")
    step = tools_of(events)[0]
    assert step["tool"] == "kb_search" and not step["error"]
    assert step["output"].startswith("[1] (garden.md, § Garden guide > Compost)")
    assert "every two weeks" in step["output"]
    sources = only(events, "sources")["sources"]
    assert sources[0]["file"] == "garden.md" and sources[0]["kb"] == "garden" and sources[0]["index"] == 1
    assert answer_of(events) == "Every two weeks [1]."


def test_a_failing_tool_is_reported_and_fed_back(tool_agent, fake_openai):
    fake_openai.queue_tool_call("calculator", {"expression": "__import__('os').getcwd()"})
    fake_openai.queue_tool_call("calculator", {"expression": "2 ** 10"})
    fake_openai.queue("It is 1024.")
    events = collect(tool_agent, query="Compute two to the tenth", mode="agent")
    failed, ok = tools_of(events)
    assert failed["error"] is True and "only these functions" in failed["output"]
    assert ok == {**ok, "output": "1024", "error": False}
    assert fake_openai.requests[1]["messages"][-1]["content"] == failed["output"]
    assert answer_of(events) == "It is 1024." and events[-1]["type"] == "done"


def test_unknown_tools_are_errors_the_model_can_recover_from(tool_agent, fake_openai):
    fake_openai.queue_tool_call("teleport", {"to": "Mars"})
    fake_openai.queue("I cannot do that.")
    events = collect(tool_agent, query="Teleport me", mode="agent")
    step = tools_of(events)[0]
    assert step["error"] and "tool 'teleport' is not allowed here" in step["output"] and "calculator" in step["output"]
    assert answer_of(events) == "I cannot do that."


def test_tool_calls_stop_at_the_step_limit(tool_agent, fake_openai):
    for n in range(3):
        fake_openai.queue_tool_call("calculator", {"expression": f"{n} + 1"})
    fake_openai.queue("Final after the limit.")
    events = collect(tool_agent, query="Keep calculating", mode="agent")
    assert [t["output"] for t in tools_of(events)] == ["1", "2", "3"]
    last = fake_openai.requests[-1]
    assert "tools" not in last and "all the tool calls" in last["messages"][-1]["content"]
    assert answer_of(events) == "Final after the limit." and len(fake_openai.requests) == 4


def test_agent_time_limit_ends_with_a_clear_error(kb_root, fake_openai):
    services = kb_services(kb_root, fake_openai.base_url, tools=True, chat={"agent_max_seconds": 0.5})
    try:
        fake_openai.queue_hang(5)
        started = time.monotonic()
        events = collect(services, query="Think for a long time", mode="agent")
        assert time.monotonic() - started < 3
        assert events[-1]["type"] == "error" and events[-1]["code"] == "agent_timeout"
        stored = services.chat.conversations.get(events[0]["conversation_id"]).messages[-1]
        assert stored.meta["incomplete"] is True
    finally:
        services.close()


def test_react_agent_parses_actions_and_streams_the_final_answer(react_agent, fake_openai):
    fake_openai.queue(
        ' I should multiply.\nAction: calculator\nAction Input: {"expression": "12 * 12"}',
        " I now know the final answer\nFinal Answer: 12 squared is 144.",
    )
    events = collect(react_agent, query="What is 12 squared?", mode="agent")
    assert tools_of(events) == [{"tool": "calculator", "input": '{"expression": "12 * 12"}', "output": "144",
                                 "error": False}]
    assert answer_of(events) == "12 squared is 144."
    first, second = fake_openai.requests
    assert "tools" not in first and first["stop"] == ["\nObservation:", "Observation:"]
    prompt = second["messages"][-1]["content"]
    assert "Question: What is 12 squared?" in prompt and "unit_convert" in prompt
    assert prompt.rstrip().endswith("Observation: 144\nThought:")
    stored = react_agent.chat.conversations.get(events[0]["conversation_id"]).messages[-1]
    assert stored.meta["agent"] == "react" and stored.content == "12 squared is 144."


def test_react_agent_takes_plain_text_action_input_and_kb_search(react_agent, fake_openai):
    fake_openai.queue(
        " Look it up.\nAction: kb_search\nAction Input: bees in a hive",
        " Final Answer: About fifty thousand [1].",
    )
    events = collect(react_agent, query="How many bees live in a hive?", mode="agent", kb_name="garden")
    step = tools_of(events)[0]
    assert json.loads(step["input"]) == {"query": "bees in a hive"} and "bees.txt" in step["output"]
    assert only(events, "sources")["sources"][0]["file"] == "bees.txt"
    assert answer_of(events) == "About fifty thousand [1]."


def test_react_tool_errors_become_observations(react_agent, fake_openai):
    fake_openai.queue(
        " Convert.\nAction: unit_convert\nAction Input: {\"value\": 3, \"from_unit\": \"cubits\", \"to_unit\": \"m\"}",
        " Final Answer: I do not know cubits.",
    )
    events = collect(react_agent, query="3 cubits in metres?", mode="agent")
    assert tools_of(events)[0]["error"] is True
    assert "Observation: Error: unknown unit 'cubits'" in fake_openai.requests[-1]["messages"][-1]["content"]
    assert answer_of(events) == "I do not know cubits."


def test_react_agent_forces_a_final_answer_at_the_step_limit(react_agent, fake_openai):
    for n in range(3):
        fake_openai.queue(f' Again.\nAction: calculator\nAction Input: {{"expression": "{n} * 2"}}')
    fake_openai.queue(" Six, probably.")
    events = collect(react_agent, query="Loop forever", mode="agent")
    assert len(tools_of(events)) == 3
    assert fake_openai.requests[-1]["messages"][-1]["content"].rstrip().endswith("Final Answer:")
    assert answer_of(events) == "Six, probably."


def test_react_agent_shows_replies_that_ignore_the_format(react_agent, fake_openai):
    fake_openai.queue(" Hello! I am just going to answer: 42.")
    events = collect(react_agent, query="Say something", mode="agent")
    assert tools_of(events) == [] and answer_of(events) == "Hello! I am just going to answer: 42."
