"""The sentences the picture says about a whole trace, each written once: the caption (the SVG's
title, the image's alt text) and the banners above the graph (and under the static picture).
"""

from __future__ import annotations

from typing import Any

from .index import Index
from .labels import first_line


def caption(index: Index, view: str) -> str:
    what = "Forward graph" if view == "forward" else "Autograd graph (the order backward walks)"
    text = f"{what}: {len(index.tensor_list)} tensors, {len(index.ops)} operations"
    if index.passes:
        roots = ", ".join(index.name(r) for r in index.passes[-1].get("root") or ())
        count = len(index.passes)
        text += f"; {count} backward pass{'es' * (count > 1)} (last from {roots})"
    return text + "."


def modified_message(index: Index) -> tuple[str, str, dict] | None:
    """NOTE [modified in place]: the one sentence about the in-place op a failing backward needed
    unchanged (banner, static footer, text summary), its code line, and the op; None if none."""
    error = index.error or {}
    op = index.ops.get(error.get("modified_by")) if error.get("modified_by") else None
    if op is None:
        return None
    at = f" on line {op['line']}" if op.get("line") else ""
    return (
        f"A tensor backward needed was modified in place by {op.get('name')}{at} (outlined in red):",
        index.source(op.get("line")),
        op,
    )


def banners(index: Index, lay: dict[str, Any], passage: dict | None) -> list[dict[str, Any]]:
    """What the learner reads above the graph (and under the static picture), most urgent first."""
    out: list[dict[str, Any]] = []
    trace = index.trace
    if index.error:
        e = index.error
        message = first_line(e.get("message"))
        where = f" on line {e['line']}" if e.get("line") else ""
        text = f"{e.get('type') or 'Error'}{where}" + (f": {message}" if message else "")
        out.append({"kind": "error", "icon": "✕", "text": text, "code": index.source(e.get("line"))})
        modified = modified_message(index)
        if modified:  # in both views: its button shows the op in the forward view
            sentence, code, op = modified
            out.append(
                {
                    "kind": "error",
                    "icon": "✎",
                    "text": sentence,
                    "code": code,
                    "action": {"label": "Show it", "view": "forward", "select": op.get("id")},
                }
            )
    stopped = trace.get("stopped")
    if isinstance(stopped, dict):
        message = first_line(stopped.get("message"))
        why = f"{stopped.get('type') or 'error'}" + (f": {message}" if message else "")
        out.append(
            {
                "kind": "warn",
                "icon": "!",
                "text": f"The tracer stopped recording after {stopped.get('op_count')} "
                f"operations ({why}): what came later is not drawn. "
                "The cell itself ran to the end unchanged.",
            }
        )
    if trace.get("truncated"):
        out.append(
            {
                "kind": "warn",
                "icon": "!",
                "text": f"Only the first {trace.get('max_ops')} operations were "
                "recorded; the cell itself ran to the end. Use %%autograd_trace --max-ops N to record more.",
            }
        )
    for note in lay.get("notes") or ():
        out.append({"kind": "info", "icon": "i", "text": note})
    for cut in index.cuts:
        where = f", line {cut['line']}" if cut.get("line") else ""
        out.append(
            {
                "kind": "cut",
                "icon": "✂",
                "text": f"Gradient stops at {index.name(cut.get('tensor'))} "
                f"({cut.get('reason') or '?'}{where}): nothing flows back through it.",
            }
        )
    if not index.passes:
        out.append(
            {
                "kind": "info",
                "icon": "i",
                "text": "This cell ran no backward pass: no gradients to show yet. "
                "Call .backward() on a scalar to see them flow.",
            }
        )
    return out
