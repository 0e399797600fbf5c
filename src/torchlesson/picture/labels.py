"""The text on the graph's nodes, as the code wrote it: tensor names, facts, values, op labels.

``x``, ``[3] float32``, ``[1., 2.5]``, ``× 2``, ``+= 1``: what a node says, and the font metrics
that size its box. Pure Python, no torch; the layout and the static SVG both use these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

# px per character of the 12px / 11px monospace fonts: no text of the picture is smaller than 11 px
CHAR_W, SMALL_CHAR_W = 7.3, 6.7
MAX_LABEL, MAX_SUBLABEL, MAX_GRAD_LABEL = 28, 36, 44  # characters of a name, facts, a gradient row

# op name -> operator as code writes it; reversed forms (`2 - x` is `rsub`) put the value first
_OPERATORS = {
    "add": "+",
    "sub": "−",
    "subtract": "−",
    "mul": "×",
    "multiply": "×",
    "div": "÷",
    "divide": "÷",
    "truediv": "÷",
    "true_divide": "÷",
    "floordiv": "//",
    "floor_divide": "//",
    "matmul": "@",
    "pow": "**",
    "mod": "%",
    "remainder": "%",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "and": "&",
    "or": "|",
    "xor": "^",
}
_UNARY = {"neg": "−", "negative": "−", "pos": "+", "invert": "~"}


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(message: Any) -> str:
    """The first line of a message, or "" (``assert False`` and ``raise ValueError()`` have none)."""
    lines = str(message or "").strip().splitlines()
    return lines[0] if lines else ""


def tensor_label(tensor: dict[str, Any]) -> str:
    """A tensor's display name: the tracer's ``label`` when the trace has one (unique, never empty);
    else its variable name; else, for one a module made, what it is there (``model.0 output``,
    ``softmax in model.attn``); else ``tensor@line 3``."""
    if tensor.get("label"):
        return str(tensor["label"])
    if tensor.get("name"):
        return str(tensor["name"])
    if tensor.get("output_of"):
        return f"{tensor['output_of']} output"
    if tensor.get("module") and tensor.get("made_by"):
        return f"{tensor['made_by']} in {tensor['module']}"
    line = tensor.get("line")
    return f"tensor@line {line}" if line is not None else f"tensor {tensor.get('id', '?')}"


def root_label(names: list[str]) -> str:
    """The ``loss`` of ``∂loss/∂x``: the root of a backward pass; ``out`` when it had several (or
    none we know), as graph.js writes it."""
    return names[0] if len(names) == 1 else "out"


def short_name(tensor: dict[str, Any], box: str | None = None) -> str:
    """The label inside a module's box (``box``, else the tensor's own module): ``weight`` for
    ``model.0.weight`` in ``model.0``, ``output`` for what ``model.0`` returned."""
    label = tensor_label(tensor)
    box = box if box is not None else tensor.get("module")
    if not box:
        return label
    if tensor.get("label") or tensor.get("name"):
        if label.startswith((box + ".", box + " output")):  # model.0.weight, model.0 output (2)
            return label[len(box) + 1 :]
        return label
    if tensor.get("output_of") == box:
        return "output"
    if not tensor.get("output_of") and tensor.get("module") == box and tensor.get("made_by"):
        return f"{tensor['made_by']} result"
    return label


def shape_text(shape: Any) -> str:
    if not isinstance(shape, (list, tuple)):
        return "?"
    return "[" + ", ".join(str(s) for s in shape) + "]"


def facts_text(item: dict[str, Any]) -> str:
    """``[3] float32`` (``scalar float32`` for shape ``[]``)."""
    shape = "scalar" if item.get("shape") == [] else shape_text(item.get("shape"))
    return f"{shape} {str(item.get('dtype') or '').removeprefix('torch.')}".strip()


def printed(values: Any) -> Iterator[Any]:
    """The pieces of nested lists in print order: ``"["``, ``", "``, ``"]"`` and the values
    (iteratively, for any depth). Strings, brackets or values such as ``"nan"``, print as they are."""
    stack: list[Any] = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.append("]")
            for k in range(len(item) - 1, -1, -1):
                stack.append(item[k])
                if k:
                    stack.append(", ")
            stack.append("[")
        else:
            yield item


def number_format(values: Any, dtype: str = "float32") -> Callable[[Any], str]:
    """A formatter for all the numbers of one tensor, as torch prints them: ``2.`` when all are
    whole, else 4 decimals (``-3.3910``), or ``1.0000e-05`` when some are tiny or huge; integers and
    booleans as they are; non-finite numbers (floats, or the strings the trace writes) as ``nan``,
    ``inf``, ``-inf``. The one number format of the picture: boxes, panel, table, text and SVG."""
    dtype = str(dtype or "")
    if "bool" in dtype or any(word in dtype for word in ("int", "long", "short")):
        return str
    finite = [float(v) for v in _flat(values) if _is_number(v) and math.isfinite(v)]
    mags = [abs(v) for v in finite if v]
    big, small = max(mags, default=0.0), min(mags, default=1.0)
    if all(v.is_integer() for v in finite) and big < 1e8:
        spec, suffix = ".0f", "."
    else:
        # torch's own rule: scientific when some are huge or tiny, or far apart (max / min > 1000)
        spec, suffix = (".4e", "") if big >= 1e8 or small < 1e-4 or big / small > 1000 else (".4f", "")

    def fmt(value: Any) -> str:
        if _is_number(value) and math.isfinite(value):
            return format(float(value), spec) + suffix
        if isinstance(value, float):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return str(value)

    return fmt


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_text(values: Any, dtype: str = "float32", limit: int | None = None) -> str | None:
    """Nested values on one line as torch prints them (``[1., 2.5000]``); None if longer than ``limit``."""
    fmt = number_format(values, dtype)
    parts: list[str] = []
    length = 0
    for item in printed(values):
        parts.append(item if isinstance(item, str) and item in ("[", "]", ", ") else fmt(item))
        length += len(parts[-1])
        if limit is not None and length > limit:
            return None
    return "".join(parts)


def values_block(values: Any, dtype: str = "float32") -> str:
    """Nested values with one row per line, like torch's repr of a matrix."""
    if not isinstance(values, list) or not any(isinstance(v, list) for v in values):
        return values_text(values, dtype) or ""
    fmt = number_format(values, dtype)
    rows = ["".join(p if isinstance(p, str) and p in ("[", "]", ", ") else fmt(p) for p in printed(row))
            for row in values]  # fmt: skip
    return "[" + ",\n ".join(rows) + "]"


def stats_text(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """``[("min", "-1.2000"), ...]``: the statistics a summary has, in one format."""
    keys = [k for k in ("min", "max", "mean", "std", "norm") if summary.get(k) is not None]
    fmt = number_format([summary[k] for k in keys], str(summary.get("dtype") or "float32"))
    return [(k, fmt(summary[k])) for k in keys]


def summary_text(summary: dict[str, Any] | None, limit: int = 24) -> str | None:
    """A summary in a box: its values as torch prints them when there are few and they fit
    ``limit`` characters, else its norm (``norm 3.464``); what could not be read says why
    (``uninitialised``: ``torch.empty``'s garbage is never shown as numbers)."""
    if not isinstance(summary, dict) or not summary:
        return None
    if summary.get("unavailable"):
        return str(summary["unavailable"])
    numel = summary.get("numel")
    if summary.get("values") is not None and (not isinstance(numel, int) or numel <= 6):
        text = values_text(summary["values"], str(summary.get("dtype") or "float32"), limit)
        if text is not None:
            return text
    norm = summary.get("norm")
    if _is_number(norm):
        return f"norm {norm:.4g}"
    if isinstance(norm, str) and norm:
        return f"norm {norm}"
    return facts_text(summary)


def _flat(values: Any) -> list[Any]:
    flat, stack = [], [values]
    while stack:  # iterative: nested lists of any depth
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            flat.append(item)
    return flat


def op_label(op: dict[str, Any]) -> tuple[str, str | None]:
    """(label, sublabel) of an op as code wrote it: ``× 2``, ``+ 3``, ``@``, ``sum``, ``relu_``."""
    name = str(op.get("name") or "?")
    if name.startswith("aten."):
        name = name.split(".")[1]
    name = name.rsplit(".", 1)[-1]
    inplace, swapped = bool(op.get("inplace")), False
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        name = name[2:-2]
        if name[:1] in "ir" and name[1:] in _OPERATORS:
            inplace, swapped = inplace or name[0] == "i", name[0] == "r"
            name = name[1:]
    elif name.startswith("r") and name[1:] in _OPERATORS and name not in _OPERATORS:
        name, swapped = name[1:], True
    base = name.removesuffix("_") if name.endswith("_") and not name.endswith("__") else name
    inplace = inplace or base != name
    items = [i for i in op.get("inputs") or () if "value" in i]
    values = [shorten(str(i["value"]), 12) for i in items if "arg" not in i]
    keywords = [f"{i['arg']}={shorten(str(i['value']), 12)}" for i in items if "arg" in i]
    if base in _OPERATORS:
        symbol = _OPERATORS[base] + ("=" if inplace else "")
        if not values:
            return symbol, ", ".join(keywords) or None
        first_is_value = "value" in (op.get("inputs") or [{}])[0]
        label = f"{values[0]} {symbol}" if first_is_value != swapped else f"{symbol} {values[0]}"
        return label, ", ".join(values[1:] + keywords) or None
    if base in _UNARY and not values:
        return _UNARY[base], ", ".join(keywords) or None
    sub = shorten("(" + ", ".join(values + keywords) + ")", MAX_SUBLABEL) if values or keywords else None
    return shorten(base + ("_" if inplace else ""), MAX_LABEL), sub
