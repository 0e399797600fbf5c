"""The source text of the expression that made a tensor: ``enc(tokens).pow(2).mean()``, ``m[sel]``.

A tensor no variable held still came from an expression of the learner's code. Python 3.11 keeps, for
every instruction of compiled code, the lines and columns of the source it came from
(``code.co_positions()``); the instruction the block was running when a torch call was made (its
``f_lasti``) is the call, operator or subscript that made the tensor, so its position is the exact text.
On Python 3.10 the text is found from the line alone: the one call, operator or subscript on the
statement's line that the operation's name matches.
"""

from __future__ import annotations

import ast
import functools
import sys
from types import CodeType

MAX_EXPRESSION = 28  # characters of a label made from an expression

# torch's name of an operation -> the Python operator that calls it (NOTE [operator names] in _calls.py)
_OPERATORS = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.FloorDiv: "floor_divide",
    ast.Mod: "remainder", ast.Pow: "pow", ast.MatMult: "matmul", ast.BitAnd: "bitwise_and",
    ast.BitOr: "bitwise_or", ast.BitXor: "bitwise_xor", ast.LShift: "bitwise_left_shift",
    ast.RShift: "bitwise_right_shift", ast.USub: "neg", ast.Invert: "bitwise_not",
    ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne",
}  # fmt: skip


@functools.lru_cache(maxsize=256)
def _positions(code: CodeType) -> tuple:
    return tuple(code.co_positions())


def instruction_text(code: CodeType, lasti: int, lines: list[str]) -> str | None:
    """The source text of the instruction at byte offset ``lasti`` of ``code`` (Python 3.11+)."""
    if not hasattr(code, "co_positions") or lasti < 0:
        return None
    positions = _positions(code)
    index = lasti // 2
    if index >= len(positions):
        return None
    start, end, column, end_column = positions[index]
    if start is None or end is None or column is None or end_column is None or end > len(lines):
        return None
    if start == end:
        text = lines[start - 1][column:end_column]
    else:
        parts = [lines[start - 1][column:], *lines[start : end - 1], lines[end - 1][:end_column]]
        text = " ".join(part.strip() for part in parts)
    return text.strip() or None


def text_on_line(op_name: str, line: int, lines: list[str], source: str) -> str | None:
    """Python 3.10's fallback: the one call, operator or subscript of the statement on ``line`` that an
    operation named ``op_name`` could be."""
    tree = _parse(source)
    if tree is None:
        return None
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) != line or not isinstance(node, ast.expr):
            continue
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            matches = called in (op_name, op_name.rstrip("_"))
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)):
            matches = _OPERATORS.get(type(node.op)) == op_name
        elif isinstance(node, ast.Compare):
            matches = len(node.ops) == 1 and _OPERATORS.get(type(node.ops[0])) == op_name
        elif isinstance(node, ast.Subscript):
            matches = op_name == "getitem"
        else:
            matches = False
        if matches:
            found.append(node)
    if len(found) != 1:
        return None
    return ast.get_source_segment(source, found[0])


@functools.lru_cache(maxsize=16)
def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def shorten(text: str, limit: int = MAX_EXPRESSION) -> str:
    """A long expression made short enough to label a box, keeping what made the tensor last: the end of
    a chain of calls (``….pow(2).mean()``), else the beginning and the end (``a * b + … * d``)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    tail = _chain_tail(text, limit - 1)
    if tail is not None:
        return "…" + tail
    keep = limit - 1
    return text[: keep - keep // 2] + "…" + text[len(text) - keep // 2 :]


def _chain_tail(text: str, limit: int) -> str | None:
    """The longest ``.method(...)`` suffix of a call chain that fits in ``limit`` characters."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    cuts = []  # column where each ".attr" of the chain starts, outermost last
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Attribute):
            cuts.append(node.value.end_col_offset)
            node = node.value
        else:
            break
    for cut in sorted(cuts):
        tail = text[text.index(".", cut) :]  # from the dot: past a closing parenthesis
        if len(tail) <= limit:
            return tail
    return None


HAS_POSITIONS = sys.version_info >= (3, 11)
