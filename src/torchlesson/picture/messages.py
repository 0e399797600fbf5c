"""The sentences the picture says about a whole trace, each written once: the caption (the SVG's
title, the image's alt text) and the banners above the graph (and under the static picture).
"""

from __future__ import annotations

from typing import Any

from .index import Index
from .labels import first_line
from .story import variable_of


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


def _lines(lines: list[int]) -> str:
    low, high = min(lines), max(lines)
    return f"line {low}" if low == high else f"lines {low}–{high}"


def phases(index: Index) -> str | None:
    """NOTE [phases of a training step]: a cell that builds a model or steps an optimizer says its
    phases in the order of its lines: ``build net (line 2) → forward (lines 4–5) → loss (line 6) →
    zero_grad() (line 7) → backward() (line 8) → opt.step() (line 9)``. A loop's body reads as one
    step. Cells with neither (the seed's) say nothing: their graph is the whole story."""
    ops = list(index.ops.values())
    calls = [c for c in index.trace.get("optimizer_calls") or () if isinstance(c, dict)]
    if not calls and not any(op.get("constructor") for op in ops):
        return None
    roots = {r for p in index.passes for r in p.get("root") or ()}
    order = {"build": 0, "forward": 1, "loss": 2, "call": 3, "error": 4}
    events: dict[tuple[int, int, str], str] = {}  # (line, order, kind) -> text

    def add(kind: str, text: str, line: Any) -> None:
        if isinstance(line, int):
            key = (line, order[kind], kind)
            events[key] = max(events.get(key, ""), text, key=len)  # "build net" over "build"

    for op in ops:
        if op.get("optimizer"):
            continue
        if op.get("constructor"):
            made = [index.tensors.get(t, {}).get("name") for t in op.get("outputs") or ()]
            root = next((variable_of(n) for n in made if n), "")  # the variable built, as story.py names it
            add("build", f"build {root}".strip(), op.get("line"))
        elif any(t in roots for t in op.get("outputs") or ()):
            add("loss", "loss", op.get("line"))
        elif op.get("grad_enabled", True) and any(
            "tensor" in i for i in op.get("inputs") or () if isinstance(i, dict)
        ):
            add("forward", "forward", op.get("line"))
    for passage in index.passes:
        add("call", "backward()" if passage.get("kind") != "grad" else "autograd.grad()", passage.get("line"))
    for call in calls:
        add(
            "call",
            f"{call.get('optimizer') or 'optimizer'}.{call.get('method') or 'step'}()",
            call.get("line"),
        )
    if index.error:
        add("error", f"✕ {index.error.get('type') or 'error'}", index.error.get("line"))
    steps: list[list[Any]] = []  # [kind, text, lines]; the same phase on following lines is one
    for (line, _, kind), text in sorted(events.items()):
        if steps and steps[-1][:2] == [kind, text]:
            steps[-1][2].append(line)
        else:
            steps.append([kind, text, [line]])
    return " → ".join(f"{text} ({_lines(lines)})" for _, text, lines in steps)


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
    story = phases(index)
    if story:
        out.append({"kind": "info", "icon": "▶", "text": story})
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
