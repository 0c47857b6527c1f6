"""The agent's tools: the ast calculator (and its safety), unit conversion, date/time, tool wrappers."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from configs import Settings
from server.chat.calculator import CalculatorError, calculate, format_number
from server.chat.tools import ToolContext, build_tools, call_tool, describe
from server.chat.units import UnitError, convert


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(3 + 4) ** 2", "49"),
        ("(3 + 4) ^ 2", "49"),
        ("-2 ** 2", "-4"),
        ("7 // 2 + 7 % 3", "4"),
        ("10 / 4", "2.5"),
        ("sqrt(16) + abs(-3)", "7"),
        ("round(2.5678, 2)", "2.57"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("12 × 3 ÷ 4", "9"),
        ("log(e)", "1"),
    ],
)
def test_calculator_evaluates_arithmetic(expression, expected):
    assert format_number(calculate(expression)) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('echo hacked')",
        "().__class__.__bases__[0].__subclasses__()",
        "(1).real",
        "open('/etc/passwd')",
        "eval('1+1')",
        "x + 1",
        "[1, 2][0]",
        "'a' * 3",
        "lambda: 1",
        "1 if 1 else 2",
        "True + 1",
        "1 < 2",
        "1 << 100000",
    ],
)
def test_calculator_rejects_anything_but_arithmetic(expression):
    with pytest.raises(CalculatorError):
        calculate(expression)


@pytest.mark.parametrize("expression", ["9 ** 9 ** 9", "2 ** 100000", "10 ** 999 * 10 ** 999", "1000 ** 1000"])
def test_calculator_refuses_huge_powers_quickly(expression):
    started = time.monotonic()
    with pytest.raises(CalculatorError) as err:
        calculate(expression)
    assert time.monotonic() - started < 0.5
    assert "too large" in str(err.value) or "exponents" in str(err.value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [("1 / 0", "division by zero"), ("sqrt(-1)", "math domain"), ("", "empty"), ("1 +", "not a valid"),
     ("(-8) ** (1/3)", "not a real number"), ("1" * 600, "longer than")],
)
def test_calculator_errors_say_what_is_wrong(expression, message):
    with pytest.raises(CalculatorError) as err:
        calculate(expression)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (1, "mile", "km", 1.609344),
        (100, "C", "F", 212.0),
        (32, "fahrenheit", "celsius", 0.0),
        (0, "celsius", "K", 273.15),
        (2, "pounds", "kg", 0.90718474),
        (1, "gallon", "liters", 3.785411784),
        (36, "km/h", "m/s", 10.0),
        (1, "GiB", "MB", 1073.741824),
        (8, "bits", "bytes", 1.0),
        (90, "minutes", "hours", 1.5),
    ],
)
def test_unit_conversion(value, source, target, expected):
    assert convert(value, source, target) == pytest.approx(expected)


def test_unit_conversion_rejects_unknown_and_mismatched_units():
    with pytest.raises(UnitError, match="unknown unit 'furlong'"):
        convert(1, "furlong", "m")
    with pytest.raises(UnitError, match="cannot convert mass"):
        convert(1, "kg", "m")
    with pytest.raises(UnitError, match="absolute zero"):
        convert(-300, "C", "K")


class _NoKB:
    def list_kbs(self):
        return []


@pytest.fixture
def tools():
    return {t.name: t for t in build_tools(ToolContext(Settings(), _NoKB()))}


def run_tool(tools, name, args):
    return asyncio.run(call_tool(tools[name], args))


def test_tools_report_failures_as_messages_not_exceptions(tools):
    assert run_tool(tools, "calculator", {"expression": "6 * 7"}) == ("42", False)
    output, failed = run_tool(tools, "calculator", {"expression": "__import__('os')"})
    assert failed and "only these functions" in output
    output, failed = run_tool(tools, "calculator", {"wrong": "1"})
    assert failed and "expression" in output
    output, failed = run_tool(tools, "unit_convert", {"value": 3, "from_unit": "ft", "to_unit": "parsec"})
    assert failed and "unknown unit 'parsec'" in output
    output, failed = run_tool(tools, "kb_search", {"query": "anything"})
    assert failed and "kb_name" in output


def test_datetime_tool_gives_the_date_and_checks_the_zone(tools):
    output, failed = run_tool(tools, "current_datetime", {})
    assert not failed and datetime.now().strftime("%Y-%m-%d") in output
    output, failed = run_tool(tools, "current_datetime", {"timezone": "Asia/Shanghai"})
    assert not failed and "+0800" in output
    output, failed = run_tool(tools, "current_datetime", {"timezone": "Mars/Olympus"})
    assert failed and "unknown time zone" in output


def test_unit_tool_formats_the_result(tools):
    assert run_tool(tools, "unit_convert", {"value": 5, "from_unit": "km", "to_unit": "m"}) == ("5 km = 5000 m", False)


def test_web_search_tool_only_exists_with_an_engine(tools):
    assert "web_search" not in tools
    assert set(tools) == {"calculator", "kb_search", "current_datetime", "unit_convert"}
    assert "calculator:" in describe(list(tools.values()))
