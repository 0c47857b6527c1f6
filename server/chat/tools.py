"""The agent's tools, defined as langchain StructuredTools: calculator, KB search, web search, date/time, units."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, ValidationError

from configs import Settings
from server.chat.calculator import CalculatorError, calculate, format_number
from server.chat.schemas import Source
from server.chat.search_engines import EngineFactory
from server.chat.sources import kb_source, passage, web_source
from server.chat.units import UnitError, convert
from server.errors import AppError, validation_message
from server.knowledge_base.manager import KnowledgeBaseManager

# Characters of each passage shown to the model in a search tool's output.
OBSERVATION_PASSAGE_CHARS = 600


class ToolError(ValueError):
    """A tool could not do what it was asked; the message goes back to the model."""


@dataclass
class ToolContext:
    """What the tools of one agent answer may reach, and the sources their searches found."""

    settings: Settings
    kb: KnowledgeBaseManager | None = None
    kb_name: str | None = None
    engines: EngineFactory | None = None
    sources: list[Source] = field(default_factory=list)

    def add_sources(self, items: list[tuple[Source, str]]) -> str:
        """Number new sources after the earlier ones, so [n] stays unique across tool calls."""
        lines = []
        for source, text in items:
            numbered = source.copy()
            numbered["index"] = len(self.sources) + 1
            self.sources.append(numbered)
            lines.append(passage(numbered, text[:OBSERVATION_PASSAGE_CHARS]))
        return "\n\n".join(lines)


class CalculatorArgs(BaseModel):
    expression: str = Field(description="Arithmetic expression, e.g. '(3 + 4) * 2 ** 3' or 'sqrt(2) / 3'.")


class KBSearchArgs(BaseModel):
    query: str = Field(description="What to look for in the knowledge base.")
    kb_name: str | None = Field(None, description="Knowledge base to search when the chat has none chosen; a chat "
                                "with a chosen knowledge base searches only that one.")


class WebSearchArgs(BaseModel):
    query: str = Field(description="Web search query.")


class DateTimeArgs(BaseModel):
    timezone: str | None = Field(None, description="IANA time zone such as 'Asia/Shanghai'; default: server time.")


class UnitArgs(BaseModel):
    value: float = Field(description="The amount to convert.")
    from_unit: str = Field(description="Unit of the amount, e.g. 'km', 'lb', 'C', 'GiB', 'mph'.")
    to_unit: str = Field(description="Unit to convert to.")


async def _calculator(expression: str) -> str:
    try:
        return format_number(calculate(expression))
    except CalculatorError as exc:
        raise ToolError(str(exc)) from exc


async def _unit_convert(value: float, from_unit: str, to_unit: str) -> str:
    try:
        result = convert(value, from_unit, to_unit)
    except UnitError as exc:
        raise ToolError(str(exc)) from exc
    return f"{format_number(value)} {from_unit} = {format_number(round(result, 10))} {to_unit}"


async def _current_datetime(timezone: str | None = None) -> str:
    try:
        now = datetime.now(ZoneInfo(timezone)) if timezone else datetime.now().astimezone()
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolError(f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/Paris'") from exc
    return now.strftime("%A %Y-%m-%d %H:%M:%S %Z (UTC%z)")


async def _kb_search(tools: ToolContext, query: str, kb_name: str | None = None) -> str:
    kb = tools.kb
    if kb is None:
        raise ToolError("no knowledge base can be searched here")
    name = kb_name or tools.kb_name
    if tools.kb_name and name != tools.kb_name:
        # The chat's knowledge base was chosen by the user; a passage or page cannot send the agent elsewhere.
        raise ToolError(f"this chat may search only knowledge base {tools.kb_name!r}")
    if not name:
        names = [info.name for info in await anyio.to_thread.run_sync(kb.list_kbs)]
        raise ToolError(f"say which knowledge base to search (kb_name); available: {', '.join(names) or 'none'}")
    try:
        hits = await anyio.to_thread.run_sync(partial(kb.search, name, query))
    except AppError as exc:
        raise ToolError(exc.message) from exc
    if not hits:
        return f"No passage in knowledge base {name!r} matched {query!r}."
    return tools.add_sources([(kb_source(0, hit, name), hit.text) for hit in hits])


async def _web_search(engines: EngineFactory, tools: ToolContext, query: str) -> str:
    engine = engines.get(None)
    try:
        results = await engine.search(query, tools.settings.chat.search.result_count)
    except AppError as exc:
        raise ToolError(exc.message) from exc
    if not results:
        return f"The web search returned nothing for {query!r}."
    return tools.add_sources([(web_source(0, r), r.snippet or r.title) for r in results])


def build_tools(tools: ToolContext) -> list[BaseTool]:
    """The agent's tool set: those of ``chat.agent_tools``, web search only when an engine factory is available."""
    made: list[BaseTool] = [
        StructuredTool.from_function(
            coroutine=_calculator, name="calculator", args_schema=CalculatorArgs,
            description="Evaluate an arithmetic expression exactly: + - * / // % ** and sqrt, log, sin, cos, abs, "
            "round. Use it for every calculation.",
        ),
        StructuredTool.from_function(
            coroutine=partial(_kb_search, tools), name="kb_search", args_schema=KBSearchArgs,
            description="Search the user's knowledge base (their documents) and return numbered passages.",
        ),
        StructuredTool.from_function(
            coroutine=_current_datetime, name="current_datetime", args_schema=DateTimeArgs,
            description="The current date, weekday and time.",
        ),
        StructuredTool.from_function(
            coroutine=_unit_convert, name="unit_convert", args_schema=UnitArgs,
            description="Convert an amount between units of length, mass, volume, speed, data size, time "
            "or temperature.",
        ),
    ]
    if tools.engines is not None:
        made.insert(
            2,
            StructuredTool.from_function(
                coroutine=partial(_web_search, tools.engines, tools), name="web_search", args_schema=WebSearchArgs,
                description="Search the web and return numbered results with their URLs.",
            ),
        )
    allowed = set(tools.settings.chat.agent_tools)
    return [tool for tool in made if tool.name in allowed]


async def call_tool(tool: BaseTool, arguments: dict[str, Any]) -> tuple[str, bool]:
    """Run a tool; returns (output, error). Failures become messages for the model, never exceptions."""
    try:
        result = await tool.ainvoke(arguments)
    except ToolError as exc:
        return str(exc), True
    except ValidationError as exc:
        return f"bad arguments for {tool.name}: {validation_message(exc)}", True
    except (AppError, ValueError, TypeError) as exc:
        return f"{tool.name} failed: {exc}", True
    return str(result), False


def describe(tools: list[BaseTool]) -> str:
    """One line per tool with its arguments, for the ReAct prompt."""
    lines = []
    for tool in tools:
        args = ", ".join(f'"{name}"' for name in tool.args)
        lines.append(f"{tool.name}: {tool.description} Arguments (JSON object): {{{args}}}")
    return "\n".join(lines)


def input_text(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False)
