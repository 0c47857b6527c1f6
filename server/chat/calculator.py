"""A safe arithmetic evaluator: parses with ``ast`` and walks only whitelisted nodes (no eval)."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000
# Integers beyond this many bits are refused: they cost time and memory and no answer needs them.
MAX_INT_BITS = 4096

FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
}
CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or its value cannot be computed."""


def _check_size(value: float) -> float:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("the result is too large")
    return value


def _power(base: float, exponent: float) -> float:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponents larger than {MAX_EXPONENT} are not allowed")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        # Estimate the size first so 10**999 * ... cannot build a huge integer.
        if base.bit_length() * exponent > MAX_INT_BITS:
            raise CalculatorError("the result is too large")
    result: float = base**exponent
    return result


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        # '^' is how people write powers; Python's bitwise xor is never what they mean here.
        if isinstance(node.op, ast.Pow | ast.BitXor):
            return _check_size(_power(left, right))
        op = _BINARY.get(type(node.op))
        if op is None:
            raise CalculatorError(f"operator {type(node.op).__name__} is not allowed")
        return _check_size(op(left, right))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise CalculatorError(f"only these functions are allowed: {', '.join(FUNCTIONS)}")
        if node.keywords or len(node.args) > 2:
            raise CalculatorError(f"{node.func.id}() takes one or two plain arguments")
        return _check_size(FUNCTIONS[node.func.id](*(_eval(a) for a in node.args)))
    raise CalculatorError(f"{type(node).__name__} is not allowed in an arithmetic expression")


def calculate(expression: str) -> float:
    """The value of an arithmetic expression: numbers, + - * / // % ** (or ^), parentheses, a few functions."""
    expression = (expression or "").strip().replace("×", "*").replace("÷", "/")
    if not expression:
        raise CalculatorError("the expression is empty")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not a valid expression: {exc.msg}") from exc
    try:
        value = _eval(tree)
    except RecursionError as exc:
        raise CalculatorError("the expression is nested too deeply") from exc
    except ZeroDivisionError as exc:
        raise CalculatorError("division by zero") from exc
    except OverflowError as exc:
        raise CalculatorError("the result is too large") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CalculatorError):
            raise
        raise CalculatorError(f"cannot compute: {exc}") from exc
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    return value


def format_number(value: float) -> str:
    """Integers as they are; floats to 12 significant digits without float noise."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:.12g}"
