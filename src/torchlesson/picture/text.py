"""Trace dict -> a plain-text summary (terminals, ``--text``, ``text/plain`` of the display).

Total (NOTE [the display is total] in failures.py): every field is read with a default, and a row
that still cannot be written is replaced by a line that says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from .failures import failed
from .labels import first_line, root_label, shape_text, stats_text, tensor_label, values_text

MAX_TENSOR_ROWS = 40
MAX_OP_ROWS = 40
MAX_ROW_VALUES = 8  # a table row lists this many values at most, else their statistics
MAX_PASSES = 5  # backward passes listed in full: the first two and the last three


def format_summary(summary: dict | None, max_values: int | None = None) -> str:
    """``[2., 2., 2.]`` when the values are known (and at most ``max_values``), else
    ``min .. max .. mean .. norm``, in the picture's one number format; what could not be read
    says why (``uninitialised``, ``freed``)."""
    if not isinstance(summary, dict):
        return "-"
    facts = f"{shape_text(summary.get('shape'))} {summary.get('dtype') or ''}".rstrip()
    why = summary.get("unavailable")
    if why:  # torch.empty's garbage, a freed tensor: never numbers
        return f"{facts} ({why})"
    values = summary.get("values")
    numel = summary.get("numel")
    stats = [(k, v) for k, v in stats_text(summary) if k != "std"]
    few = max_values is None or not isinstance(numel, int) or numel <= max_values or not stats
    if values is not None and few:
        return values_text(values, str(summary.get("dtype") or "float32")) or ""
    return " ".join(f"{k} {v}" for k, v in stats) if stats else facts


def _rows(out: list[str], items: Iterable[Any], write: Callable[[Any], str | None], what: str) -> None:
    """``write(item)`` for each item into ``out``; a row that fails becomes a line saying so."""
    for item in items:
        try:
            line = write(item)
        except Exception as exc:  # NOTE [the display is total]
            line = "  " + failed(f"a row of the {what}", exc)
        if line is not None:
            out.append(line)


def render_text(trace: dict) -> str:
    """The text summary of a trace: tensors, operations, backward passes, cuts and the error."""
    try:
        return _render(trace)
    except Exception as exc:  # NOTE [the display is total]
        return f"autograd trace: {failed('the summary', exc)}"


def _list(trace: dict, key: str) -> list:
    value = trace.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _render(trace: dict) -> str:
    tensor_list = _list(trace, "tensors")
    tensors = {t.get("id"): t for t in tensor_list}
    autograd = trace.get("autograd") if isinstance(trace.get("autograd"), dict) else {}
    node_list = [n for n in autograd.get("nodes") or () if isinstance(n, dict)]
    nodes = {n.get("id"): n for n in node_list}
    ops, passes, cuts = _list(trace, "ops"), _list(trace, "backward"), _list(trace, "cuts")

    def name(tid: Any) -> str:
        return tensor_label(tensors.get(tid) or {"id": tid})

    out = [
        f"autograd trace: {len(tensor_list)} tensors, {len(ops)} operations, "
        f"{len(node_list)} autograd nodes, {len(passes)} backward pass(es)"
    ]
    if trace.get("truncated"):
        out.append(
            f"  (truncated: recorded the first {trace.get('max_ops')} of {trace.get('op_count')} operations)"
        )
    stopped = trace.get("stopped")
    if isinstance(stopped, dict):
        message = first_line(stopped.get("message"))
        why = f"{stopped.get('type') or 'error'}" + (f": {message}" if message else "")
        count = stopped.get("op_count")
        out.append(f"  (recording stopped after {count} operations: {why}; the cell ran on unchanged)")
    out.append("tensors:")
    shown = tensor_list[:MAX_TENSOR_ROWS]
    width = 16
    for t in shown:  # a name that cannot be written is found (and said) in its own row
        with contextlib.suppress(Exception):
            width = min(max(width, len(tensor_label(t))), 40)

    def tensor_row(t: dict) -> str:
        flags = [
            "leaf" if t.get("is_leaf") else (t.get("grad_fn") or "non-leaf"),
            "requires_grad" if t.get("requires_grad") else "no grad",
        ]
        if t.get("kind") == "parameter":
            flags.insert(0, "parameter")
        line = f"line {t['line']}" if t.get("line") is not None else "earlier"
        text = (
            f"  {tensor_label(t):<{width}} {shape_text(t.get('shape')):<12} {t.get('dtype') or '?':<8} "
            f"{t.get('device') or '?':<6} {', '.join(flags):<28} {line}"
        )
        if t.get("grad") is not None:
            text += f"  .grad = {format_summary(t['grad'], max_values=MAX_ROW_VALUES)}"
        elif isinstance(t.get("value"), dict) and t["value"].get("unavailable") == "uninitialised":
            text += "  (uninitialised)"
        return text.rstrip()

    _rows(out, shown, tensor_row, "tensor table")
    if len(tensor_list) > MAX_TENSOR_ROWS:
        out.append(f"  ... and {len(tensor_list) - MAX_TENSOR_ROWS} more")
    shown_ops = [
        op
        for op in ops
        if any("tensor" in i for i in op.get("inputs") or () if isinstance(i, dict)) or op.get("outputs")
    ]
    if shown_ops:
        out.append("operations:")

        def op_row(op: dict) -> str:
            args = ", ".join(
                (f"{i['arg']}=" if "arg" in i else "")
                + (name(i["tensor"]) if "tensor" in i else str(i.get("value")))
                for i in op.get("inputs") or ()
            )
            results = ", ".join(name(o) for o in op.get("outputs") or ())
            where = f"line {op['line']}" if op.get("line") is not None else "      "
            extra = "" if op.get("grad_enabled", True) else "  [grad disabled]"
            module = f"  in {op['module']}" if op.get("module") else ""
            return f"  {where:<8} {op.get('name') or '?'}({args}) -> {results}{module}{extra}"

        _rows(out, shown_ops[:MAX_OP_ROWS], op_row, "operation list")
        if len(shown_ops) > MAX_OP_ROWS:
            out.append(f"  ... and {len(shown_ops) - MAX_OP_ROWS} more")
    numbered = list(enumerate(passes, 1))
    if len(numbered) > MAX_PASSES:  # a training loop: the first passes and the last ones
        numbered = [*numbered[:2], (0, {}), *numbered[-(MAX_PASSES - 2) :]]
    for number, passage in numbered:
        if not number:
            out.append(f"... {len(passes) - MAX_PASSES} more backward passes ...")
            continue
        roots = [name(r) for r in passage.get("root") or ()]
        out.append(
            f"backward pass {number} ({passage.get('kind') or 'backward'}, line {passage.get('line')}, "
            f"from {', '.join(roots)}):"
        )
        order = [str(nodes[n].get("name")) for n in passage.get("order") or () if n in nodes]
        if order:
            out.append("  engine ran: " + " -> ".join(order[:12]) + (" ..." if len(order) > 12 else ""))
        root_name = root_label(roots)
        accumulated = set(passage.get("accumulated") or ())
        grads = passage.get("grads") if isinstance(passage.get("grads"), dict) else {}

        def grad_row(
            item: tuple[str, Any], root_name: str = root_name, accumulated: set = accumulated
        ) -> str:
            tensor_id, grad = item
            stored = "  (added to .grad)" if tensor_id in accumulated else ""
            flowed = format_summary(grad, max_values=MAX_ROW_VALUES)
            return f"  d{root_name}/d{name(tensor_id)} = {flowed}{stored}"

        _rows(out, list(grads.items())[:MAX_TENSOR_ROWS], grad_row, "gradient list")

    def cut_row(cut: dict) -> str:
        source = name(cut["source"]) if cut.get("source") else "?"
        return (
            f"gradient stops at {name(cut.get('tensor'))} (line {cut.get('line')}): "
            f"{cut.get('reason') or '?'} (from {source})"
        )

    _rows(out, cuts, cut_row, "list of cuts")
    error = trace.get("error")
    if isinstance(error, dict):
        where = f" in {error['op_name']}" if error.get("op_name") else ""
        message = first_line(error.get("message"))
        kind = error.get("type") or "error"
        out.append(f"error at line {error.get('line')}{where}: {kind}" + (f": {message}" if message else ""))
        _rows(
            out,
            enumerate(i for i in error.get("inputs") or () if isinstance(i, dict)),
            lambda item: (
                f"  input {item[0]}: {shape_text(item[1].get('shape'))} {item[1].get('dtype')} "
                f"on {item[1].get('device')}"
            ),
            "failing operation's inputs",
        )
        if error.get("modified_by"):
            op = next((o for o in ops if o.get("id") == error["modified_by"]), None)
            if op is not None:
                out.append(
                    "  a tensor backward needs was modified in place by "
                    f"{op.get('name')} on line {op.get('line')}"
                )
    return "\n".join(out)
