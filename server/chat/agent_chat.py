"""Agent chat: tool calling when the model supports it, otherwise a ReAct text loop.

Every tool call is streamed as a ``tool`` event; a failing tool is reported to the model
(and shown with ``error: true``) rather than ending the answer. Steps and wall time are
bounded by settings.chat.agent_max_steps / agent_max_seconds.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar

import anyio
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from server.chat import events
from server.chat.events import ChatEvent
from server.chat.context import ChatContext
from server.chat.tools import ToolContext, build_tools, call_tool, describe, input_text
from server.errors import AppError

T = TypeVar("T")
STEP_LIMIT_NOTE = "You have used all the tool calls you may make. Answer the question now from what you found."
_ACTION = re.compile(r"Action\s*:\s*(?P<tool>[^\n]+?)\s*\n+\s*Action\s*Input\s*:\s*(?P<input>.*)", re.S | re.I)
_FINAL = re.compile(r"Final\s*Answer\s*:\s*", re.I)
_REACT_STOP = ["\nObservation:", "Observation:"]


class AgentTimeout(AppError):
    """The agent ran out of its time budget."""

    status = 504
    code = "agent_timeout"


class _Clock:
    """The agent's wall-time budget."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def check(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AgentTimeout(f"the agent did not finish within {self.seconds:g} seconds")
        return left

    async def run(self, awaitable: Awaitable[T]) -> T:
        try:
            with anyio.fail_after(self.check()):
                return await awaitable
        except TimeoutError:
            raise AgentTimeout(f"the agent did not finish within {self.seconds:g} seconds") from None


async def run(ctx: ChatContext) -> AsyncGenerator[ChatEvent, None]:
    """Answer with tools; ends with a ``sources`` event when a search tool found passages."""
    tool_ctx = ToolContext(ctx.settings, ctx.kb, ctx.request.kb_name, ctx.engines)
    tools = build_tools(tool_ctx)
    clock = _Clock(ctx.settings.chat.agent_max_seconds)
    uses_tools = ctx.llm.supports_tools
    ctx.meta["agent"] = "tool_calling" if uses_tools else "react"
    loop = _tool_calling(ctx, tools, clock) if uses_tools else _react(ctx, tools, clock)
    async for event in loop:
        yield event
    if tool_ctx.sources:
        yield events.sources(tool_ctx.sources)


def _find(tools: list[BaseTool], name: str) -> BaseTool | None:
    name = name.strip().strip("`'\"").lower()
    return next((t for t in tools if t.name.lower() == name), None)


async def _run_tool(tools: list[BaseTool], name: str, arguments: dict[str, Any], clock: _Clock) -> tuple[str, bool]:
    tool = _find(tools, name)
    if tool is None:
        return f"tool {name!r} is not allowed here; use one of: {', '.join(t.name for t in tools)}", True
    return await clock.run(call_tool(tool, arguments))


async def _tool_calling(ctx: ChatContext, tools: list[BaseTool], clock: _Clock) -> AsyncGenerator[ChatEvent, None]:
    specs = [convert_to_openai_tool(t) for t in tools]
    messages: list[dict[str, Any]] = ctx.messages(ctx.render(ctx.template("agent_tools")))
    steps_left = ctx.settings.chat.agent_max_steps
    while steps_left > 0:
        ctx.prompt_tokens += ctx.prompt_size(messages)
        reply = await clock.run(
            ctx.llm.complete_with_tools(
                messages, specs, temperature=ctx.request.temperature, max_tokens=ctx.max_tokens
            )
        )
        calls = reply.get("tool_calls") or []
        content = reply.get("content") or ""
        ctx.completion_tokens += ctx.count(content + "".join(json.dumps(c["arguments"]) for c in calls))
        if not calls:
            if content:
                yield events.delta(content)
            return
        messages.append(
            {
                "role": "assistant",
                "content": content or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function",
                     "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
                    for c in calls
                ],
            }
        )
        for call in calls:
            if steps_left > 0:
                output, failed = await _run_tool(tools, call["name"], call["arguments"], clock)
                steps_left -= 1
                yield events.tool(call["name"], input_text(call["arguments"]), output, failed)
            else:
                output = "not run: the tool-call limit was reached"
            # Every call needs an answer, or OpenAI-style servers reject the next turn.
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": output})
    messages.append({"role": "user", "content": STEP_LIMIT_NOTE})
    async for piece in ctx.stream(messages):
        clock.check()
        yield events.delta(piece)


def _parse_input(raw: str, tool: BaseTool | None) -> dict[str, Any]:
    """Action Input as a dict: a JSON object, else the raw text for the tool's first argument."""
    text = raw.strip().strip("`").strip()
    if text.lower().startswith("json"):
        text = text[4:].strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text.strip("'\"")
    if isinstance(value, dict):
        return value
    first = next(iter(tool.args), "input") if tool is not None else "input"
    return {first: value}


class _FinalAnswerStream:
    """Feeds ReAct output through and reports the text after 'Final Answer:' as it arrives."""

    def __init__(self) -> None:
        self.text = ""
        self._start: int | None = None
        self._sent = 0

    def feed(self, piece: str) -> str:
        self.text += piece
        if self._start is None:
            match = _FINAL.search(self.text)
            if match is None:
                return ""
            self._start = match.end()
        answer = self.text[self._start :].lstrip()
        new, self._sent = answer[self._sent :], len(answer)
        return new

    @property
    def final(self) -> str | None:
        return None if self._start is None else self.text[self._start :].strip()


async def _react(ctx: ChatContext, tools: list[BaseTool], clock: _Clock) -> AsyncGenerator[ChatEvent, None]:
    template = ctx.templates["agent_react"]
    tool_list, names = describe(tools), ", ".join(t.name for t in tools)
    scratchpad = ""
    for step in range(ctx.settings.chat.agent_max_steps + 1):
        last = step == ctx.settings.chat.agent_max_steps
        if last:
            scratchpad += f" {STEP_LIMIT_NOTE}\nFinal Answer:"
        prompt = ctx.render(template, tools=tool_list, tool_names=names, question=ctx.question, scratchpad=scratchpad)
        reader = _FinalAnswerStream()
        if last:
            reader.feed("Final Answer:")
        async for piece in ctx.stream(ctx.messages("", question=prompt), stop=_REACT_STOP):
            clock.check()
            new = reader.feed(piece)
            if new:
                yield events.delta(new)
        if reader.final is not None:
            return
        action = _ACTION.search(reader.text)
        if action is None:
            # A model that ignores the format has still answered; show that rather than loop.
            yield events.delta(re.sub(r"^\s*Thought\s*:\s*", "", reader.text, flags=re.I).strip())
            return
        name = action.group("tool").strip()
        arguments = _parse_input(action.group("input").split("\nObservation")[0], _find(tools, name))
        output, failed = await _run_tool(tools, name, arguments, clock)
        yield events.tool(name, input_text(arguments), output, failed)
        observation = f"Error: {output}" if failed else output
        scratchpad += f"{reader.text.rstrip()}\nObservation: {observation}\nThought:"
