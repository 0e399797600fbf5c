"""What the widget shows beside and under the graph: the details of what is selected, the table of
tensors, and the backward replay's steps; every sentence and number written here, once.

A detail's value is *rich text*: a string, or a list of segments, each a string or
``{"text": ..., "ref": id}`` (a link that selects ``id``); ``pre`` values keep their line breaks.
"""

from __future__ import annotations

from typing import Any

from .index import Index, flowed_into, grad_label
from .labels import shape_text, stats_text, summary_text, values_block

TABLE_ROWS = 300  # rows sent at first; the table says how many more there are
MAX_STEPS = 400  # replay steps sent; longer passes merge what is left into the last one
PY = {True: "True", False: "False"}


def summary_value(summary: Any) -> dict[str, Any]:
    """A summary for the panel: its values as torch prints them, else its statistics."""
    if not isinstance(summary, dict) or not summary:
        return {"text": "—"}
    if summary.get("unavailable"):
        return {"text": f"{shape_text(summary.get('shape'))} ({summary['unavailable']}: no numbers to show)"}
    if summary.get("values") is not None:
        return {"text": values_block(summary["values"], str(summary.get("dtype") or "float32")), "pre": True}
    stats = stats_text(summary)
    if not stats:
        return {"text": f"{shape_text(summary.get('shape'))} (no statistics)"}
    return {"text": "   ".join(f"{k} {v}" for k, v in stats)}


def _row(key: str, value: Any, note: str | None = None) -> dict[str, Any] | None:
    if value is None or value == "" or value == []:
        return None
    row = value if isinstance(value, dict) else {"text": value}
    return {"key": key, **row, **({"note": note} if note else {})}


def _code(index: Index, line: Any) -> str | None:
    return f"line {line}: {index.source(line)}" if line else None


def details(
    index: Index, ref: str, passage: dict | None, pass_number: int, extra: dict | None = None
) -> dict:
    """The panel for a tensor, an op, an autograd node or a group (``extra``: a scene node that is
    not in the trace, such as a collapsed module)."""
    t, op, ag = index.tensors.get(ref), index.ops.get(ref), index.nodes.get(ref)
    rows: list[dict | None] = []
    alerts: list[str] = []
    err = index.error or {}
    if t is not None:
        title, kind = index.name(ref), str(t.get("kind") or "tensor")
        rows += [
            _row("shape", shape_text(t.get("shape"))),
            _row("dtype", t.get("dtype")),
            _row("device", t.get("device")),
            _row("requires_grad", PY[bool(t.get("requires_grad"))]),
            _row("is_leaf", PY[bool(t.get("is_leaf"))]),
            _row("grad_fn", t.get("grad_fn") or "None"),
            _row("retains_grad", "True" if t.get("retains_grad") else None),
            _row("line", _code(index, t.get("line"))),
            _row("module", t.get("module")),
            _row("origin", "existed before this cell" if t.get("created") is False else None),
            _row("value", summary_value(t.get("value"))),
        ]
        if passage is not None:
            flowed = flowed_into(passage, {}, t)
            which = f", pass {pass_number}" if len(index.passes) > 1 else ""
            note = f"{grad_label(index, passage, title)}{which}: flowed through, not kept"
            rows.append(
                _row("gradient in", summary_value(flowed) if flowed else {"text": "none reached it"}, note)
            )
        none = (
            "None"
            if t.get("is_leaf")
            else "None: autograd keeps no .grad on a non-leaf (call .retain_grad() to keep it)"
        )
        rows.append(
            _row(
                "stored .grad",
                summary_value(t["grad"]) if t.get("grad") else {"text": none},
                f"{title}.grad after the cell",
            )
        )
    elif op is not None:
        title, kind = str(op.get("name") or "?"), "in-place op" if op.get("inplace") else "op"

        def links(ids: Any) -> list:
            out: list[Any] = []
            for k, item in enumerate(ids or ()):
                out += [", "] if k else []
                if isinstance(item, dict) and "tensor" not in item:
                    out.append(
                        f"{item['arg']}={item.get('value')}" if item.get("arg") else str(item.get("value"))
                    )
                else:
                    tid = item["tensor"] if isinstance(item, dict) else item
                    out.append({"text": index.name(tid), "ref": tid})
            return out

        off = "off (no_grad / inference_mode): no graph recorded"
        rows += [
            _row("line", _code(index, op.get("line"))),
            _row("inputs", {"text": links(op.get("inputs"))}),
            _row("outputs", {"text": links(op.get("outputs"))}),
            _row("module", op.get("module")),
            _row("grad mode", off if op.get("grad_enabled") is False else "on"),
        ]
        if op.get("id") == err.get("modified_by"):
            changed = ", ".join(index.name(o) for o in op.get("outputs") or ())
            alerts.append(
                f"This op modified {changed} in place, a tensor backward needed: the backward on line "
                f"{err.get('line')} failed ({err.get('type')})."
            )
    elif ag is not None:
        title, kind = str(ag.get("name") or "?"), "autograd node"
        owner = ag.get("tensor")
        order = (passage or {}).get("order") or []
        at = order.index(ref) if ref in order else -1
        received = None
        if at >= 0:
            node_grads = (passage or {}).get("node_grads") or {}
            received = node_grads.get(ref) or ((passage or {}).get("grads") or {}).get(owner)
        ran = (
            f"step {at + 1} of {len(order)} in pass {pass_number}"
            if at >= 0
            else ("not in this pass" if passage else None)
        )
        rows += [
            _row(
                "stores into" if ag.get("name") == "AccumulateGrad" else "grad_fn of",
                {"text": [{"text": index.name(owner), "ref": owner}]} if owner in index.tensors else None,
            ),
            _row("built", "by an earlier cell" if ag.get("earlier") else "by this cell"),
            _row("line", _code(index, (index.tensors.get(owner) or {}).get("line"))),
            _row("ran", ran),
            _row("gradient in", summary_value(received) if received else None),
        ]
    else:
        extra = extra or {}
        title, kind = (
            str(extra.get("label") or ref),
            extra.get("kind") or ("loop" if "fold" in (extra.get("cls") or ()) else "module"),
        )
        rows += [_row("what", extra.get("about"))]
        rows += [_row(str(key), value) for key, value in extra.get("rows") or ()]
    actions = [
        *(extra or {}).get("actions", ()),
        *([extra["action"]] if extra and extra.get("action") else []),
    ]
    if ref and err and ref == err.get("op"):
        alerts.append(f"{err.get('type')}: {err.get('message')}")
    return {
        "title": title,
        "kind": kind,
        "rows": [r for r in rows if r],
        "alerts": alerts,
        "actions": actions,
    }


def table(
    index: Index,
    refs: list[str],
    passage: dict | None,
    pass_number: int,
    repeats: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The table of tensors under the graph: the tensors the scene draws, in the order first met; a
    folded box's tensor says how many iterations it stands for (``g (× 2000)``)."""
    repeats = repeats or {}
    heads = ["name", "shape", "dtype", "device", "requires_grad", "is_leaf", "grad_fn", ".grad"]
    if passage is not None:
        heads.append(f"gradient in (pass {pass_number})")
    rows = []
    for tid in refs[:TABLE_ROWS]:
        t = index.tensors[tid]
        cells = [
            index.name(tid) + (f" (× {repeats[tid]})" if tid in repeats else ""),
            shape_text(t.get("shape")),
            str(t.get("dtype")),
            str(t.get("device")),
            PY[bool(t.get("requires_grad"))],
            PY[bool(t.get("is_leaf"))],
            str(t.get("grad_fn") or "—"),
            summary_text(t.get("grad"), 44) or "—",
        ]
        if passage is not None:
            cells.append(summary_text((passage.get("grads") or {}).get(tid), 44) or "—")
        rows.append({"ref": tid, "cells": cells})
    return {"heads": heads, "rows": rows, "more": max(0, len(refs) - TABLE_ROWS), "total": len(refs)}


def replay(index: Index, scene: dict[str, Any], passage: dict | None, pass_number: int) -> dict[str, Any]:
    """The backward pass step by step, in the order the engine ran its nodes: which scene nodes have
    their gradient at each step (``when``), and what each step says. Consecutive nodes that light
    the same boxes (the iterations of a folded loop, the nodes of a collapsed module) are one step."""
    if passage is None:
        return {"steps": [], "when": {}, "overview": ""}
    order = [n for n in passage.get("order") or () if isinstance(n, str)]
    lights: dict[str, list[str]] = {}
    accumulated = set(passage.get("accumulated") or ())
    for node in scene["nodes"]:
        for ag_id in _ran_by(index, node, accumulated):
            lights.setdefault(ag_id, []).append(node["id"])
    steps: list[dict[str, Any]] = []
    when: dict[str, int] = {}
    runs: list[tuple[tuple[str, ...], list[str]]] = []
    for ag_id in order:
        boxes = tuple(lights.get(ag_id, ()))
        if runs and (runs[-1][0] == boxes or len(runs) >= MAX_STEPS):
            runs[-1][1].append(ag_id)
        else:
            runs.append((boxes, [ag_id]))
    total = len(runs)
    kind = "torch.autograd.grad" if passage.get("kind") == "grad" else "backward()"
    which = f" (pass {pass_number})" if len(index.passes) > 1 else ""
    for number, (boxes, ran) in enumerate(runs, 1):
        for box in boxes:
            when.setdefault(box, number)
        steps.append(_step(index, scene, passage, number, total, boxes, ran))
    overview = (
        f"Gradients after {kind} on line {passage.get('line')}{which}. ▶ Play replays it node by node, "
        "in the order the engine ran them."
    )
    start = f"Step 0 of {total} · backward{which} not started: press ▶ Play or ⏭ Step."
    return {"steps": steps, "when": when, "overview": overview, "start": start}


def _ran_by(index: Index, node: dict[str, Any], accumulated: set) -> list[str]:
    """The autograd nodes whose running brings this scene node its gradient."""
    refs = node.get("refs") or [node.get("ref")]
    t = index.tensor_of(node)
    if node["kind"] in ("grad_fn",):
        return [node["ref"]]
    if node["kind"] == "grad":
        return [t["node"]] if t and t.get("id") in accumulated and t.get("node") else []
    if node["kind"] == "tensor":
        own = node.get("grad_node") or (t or {}).get("node")
        return [own] if own else []
    if node["kind"] == "op":
        op = index.ops.get(node["ref"]) or {}
        return [
            index.tensors[o]["node"]
            for o in op.get("outputs") or ()
            if (index.tensors.get(o) or {}).get("node")
        ]
    return [r for r in node.get("members") or () if r in index.nodes] or [
        t2["node"] for r in refs for t2 in [index.tensors.get(r)] if t2 and t2.get("node")
    ]


def _step(
    index: Index, scene: dict, passage: dict, number: int, total: int, boxes: tuple, ran: list[str]
) -> dict:
    ag = index.nodes.get(ran[-1]) or {}
    t = index.tensors.get(ag.get("tensor"))
    received = (passage.get("node_grads") or {}).get(ran[-1]) or (
        (passage.get("grads") or {}).get(t.get("id")) if t else None
    )
    label = grad_label(index, passage, index.name(t.get("id"))) if t else ""
    value = f"{label} = {summary_text(received) or '?'}" if t else ""
    times = f" ({len(ran)} nodes)" if len(ran) > 1 else ""
    if not ag:
        what = f"{ran[-1]} ran"
    elif ag.get("name") == "AccumulateGrad":
        what = f"AccumulateGrad added {value} into {index.name(t.get('id')) if t else '?'}.grad{times}"
    else:
        what = f"{ag.get('name')} received {value or 'its gradient'} and passed it on{times}"
    done = " · done" if number >= total else ""
    step: dict[str, Any] = {"caption": f"Step {number} of {total} · {what}{done}"}
    box = next((b for b in boxes if b in {n["id"] for n in scene["nodes"]}), None)
    if box is not None and value:  # graph.js draws it in a bubble beside that box
        step["at"], step["callout"] = box, value if len(value) <= 60 else value[:59] + "…"
    return step
