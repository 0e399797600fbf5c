"""Trace dict -> a plain-text summary (terminals, ``--text``, ``text/plain`` of the display)."""

from __future__ import annotations

from typing import Any

from .labels import root_label, shape_text, tensor_label

MAX_TENSOR_ROWS = 40
MAX_OP_ROWS = 40
MAX_ROW_VALUES = 8  # a table row lists this many values at most, else their statistics


def format_summary(summary: dict | None, precision: int = 4, max_values: int | None = None) -> str:
    """``[2., 2., 2.]`` when the values are known (and at most ``max_values``), else
    ``min .. max .. mean .. norm``."""
    if summary is None:
        return "-"
    values = summary.get("values")
    few = max_values is None or (summary.get("numel") or 0) <= max_values or summary.get("min") is None
    if values is not None and few:
        return _format_values(values, precision)
    if summary.get("min") is None:
        why = summary.get("unavailable")
        return f"{shape_text(summary['shape'])} {summary['dtype']}" + (f" ({why})" if why else "")
    return (
        f"min {_num(summary['min'], precision)} max {_num(summary['max'], precision)} "
        f"mean {_num(summary['mean'], precision)} norm {_num(summary['norm'], precision)}"
    )


def _num(value: Any, precision: int) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    text = f"{value:.{precision}g}"
    return text + "." if text.lstrip("-").isdigit() else text


def _format_values(values: Any, precision: int) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_format_values(v, precision) for v in values) + "]"
    return _num(values, precision)


def render_text(trace: dict) -> str:
    tensors = {t["id"]: t for t in trace["tensors"]}
    nodes = {n["id"]: n for n in trace["autograd"]["nodes"]}
    out = [
        f"autograd trace: {len(trace['tensors'])} tensors, {len(trace['ops'])} operations, "
        f"{len(trace['autograd']['nodes'])} autograd nodes, {len(trace['backward'])} backward pass(es)"
    ]
    if trace["truncated"]:
        out.append(f"  (truncated: recorded the first {trace['max_ops']} of {trace['op_count']} operations)")
    stopped = trace.get("stopped")
    if stopped:
        why = f"{stopped['type']}: {stopped['message']}"
        count = stopped["op_count"]
        out.append(f"  (recording stopped after {count} operations: {why}; the cell ran on unchanged)")
    out.append("tensors:")
    shown = trace["tensors"][:MAX_TENSOR_ROWS]
    width = min(max([16, *(len(tensor_label(t)) for t in shown)]), 40)
    for t in shown:
        flags = [
            "leaf" if t["is_leaf"] else (t["grad_fn"] or "non-leaf"),
            "requires_grad" if t["requires_grad"] else "no grad",
        ]
        if t["kind"] == "parameter":
            flags.insert(0, "parameter")
        line = f"line {t['line']}" if t["line"] is not None else "earlier"
        text = (
            f"  {tensor_label(t):<{width}} {shape_text(t['shape']):<12} {t['dtype']:<8} {t['device']:<6} "
            f"{', '.join(flags):<28} {line}"
        )
        if t.get("grad") is not None:
            text += f"  .grad = {format_summary(t['grad'], max_values=MAX_ROW_VALUES)}"
        out.append(text.rstrip())
    if len(trace["tensors"]) > MAX_TENSOR_ROWS:
        out.append(f"  ... and {len(trace['tensors']) - MAX_TENSOR_ROWS} more")
    shown_ops = [op for op in trace["ops"] if any("tensor" in i for i in op["inputs"]) or op["outputs"]]
    if shown_ops:
        out.append("operations:")
        for op in shown_ops[:MAX_OP_ROWS]:
            args = ", ".join(
                (f"{i['arg']}=" if "arg" in i else "")
                + (tensor_label(tensors[i["tensor"]]) if "tensor" in i else str(i.get("value")))
                for i in op["inputs"]
            )
            results = ", ".join(tensor_label(tensors[o]) for o in op["outputs"])
            where = f"line {op['line']}" if op["line"] is not None else "      "
            extra = "" if op["grad_enabled"] else "  [grad disabled]"
            module = f"  in {op['module']}" if op["module"] else ""
            out.append(f"  {where:<8} {op['name']}({args}) -> {results}{module}{extra}")
        if len(shown_ops) > MAX_OP_ROWS:
            out.append(f"  ... and {len(shown_ops) - MAX_OP_ROWS} more")
    for number, passage in enumerate(trace["backward"], 1):
        roots = ", ".join(tensor_label(tensors[r]) for r in passage["root"])
        out.append(f"backward pass {number} ({passage['kind']}, line {passage['line']}, from {roots}):")
        order = [nodes[n]["name"] for n in passage["order"] if n in nodes]
        if order:
            out.append("  engine ran: " + " -> ".join(order[:12]) + (" ..." if len(order) > 12 else ""))
        root_name = root_label([tensor_label(tensors[r]) for r in passage["root"]])
        for tensor_id, grad in list(passage["grads"].items())[:MAX_TENSOR_ROWS]:
            stored = "  (added to .grad)" if tensor_id in passage["accumulated"] else ""
            flowed = format_summary(grad, max_values=MAX_ROW_VALUES)
            out.append(f"  d{root_name}/d{tensor_label(tensors[tensor_id])} = {flowed}{stored}")
    for cut in trace["cuts"]:
        source = tensor_label(tensors[cut["source"]]) if cut["source"] else "?"
        out.append(
            f"gradient stops at {tensor_label(tensors[cut['tensor']])} (line {cut['line']}): "
            f"{cut['reason']} (from {source})"
        )
    error = trace["error"]
    if error is not None:
        where = f" in {error['op_name']}" if error.get("op_name") else ""
        out.append(
            f"error at line {error['line']}{where}: {error['type']}: {error['message'].splitlines()[0]}"
        )
        for i, facts in enumerate(error.get("inputs") or []):
            out.append(f"  input {i}: {shape_text(facts['shape'])} {facts['dtype']} on {facts['device']}")
        if error.get("modified_by"):
            op = next((o for o in trace["ops"] if o["id"] == error["modified_by"]), None)
            if op is not None:
                out.append(
                    f"  a tensor backward needs was modified in place by {op['name']} on line {op['line']}"
                )
    return "\n".join(out)
