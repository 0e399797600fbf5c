"""A laid-out view -> its scene: every box, text, chip, edge and banner, final, in pixels.

Python builds the scene once per view (and again only when the learner picks another backward
pass, collapses a module or unfolds a loop); the static SVG (svg.py) and the widget (static/graph.js)
both draw it and format nothing, so they cannot disagree. A node is drawn from *parts*, positions
relative to its top-left corner, each with a style of palette.py:

    ["r", x, y, w, h, rx, style, cls]          a rectangle
    ["t", x, y, text, style, anchor, cls]      a text; ``anchor``: ``"s"`` (start) or ``"m"`` (middle)
    ["c", cx, cy, r, style, cls]               a circle
    ["p", d, style, cls]                       a path
    ["b", x, y, w, h, text, box, style, anchor, cls]   a pill: a rounded box with a text in it

``style`` names a style of palette.py (its colours); ``cls`` the classes the widget's CSS and the
tests know the part by (``tl-name``, ``tl-chip chip-flowed``). Node texts are clipped here to the box the
layout
made for them (NOTE [gradient rows] in graph.py), in the one number format of labels.py.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from .failures import failed
from .graph import GRAD_ROW_H, TENSOR_H
from .index import Index, flowed_into, grad_label
from .labels import CHAR_W, SMALL_CHAR_W, first_line, shape_text, summary_text
from .messages import banners, caption

TOP_ROOM = 20  # a tab above a box (a gradient of another pass) needs this much room above the graph
FRAME_HEAD_H = 19


def fits(width: float, char_w: float) -> int:
    """How many characters of ``char_w`` px fit a box ``width`` px wide, 16 px of padding."""
    return max(1, int((width - 15) / char_w + 0.05))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def _r(x: float, y: float, w: float, h: float, rx: float, style: str, cls: str = "tl-box") -> list:
    return ["r", round(x, 1), round(y, 1), round(w, 1), round(h, 1), round(rx, 1), style, cls]


TEXT_CLASS = {
    "t-name": "tl-name",
    "t-sub": "tl-sub",
    "t-op": "tl-op",
    "t-warning": "tl-warning",
    "t-error": "tl-sub tl-error-sub",
}


def _t(x: float, y: float, text: str, style: str, anchor: str = "s", cls: str | None = None) -> list:
    return [
        "t",
        round(x, 1),
        round(y, 1),
        text,
        style,
        anchor,
        cls if cls is not None else TEXT_CLASS.get(style, ""),
    ]


def _pill(
    x: float, y: float, w: float, h: float, text: str, box: str, style: str, anchor: str = "m", cls: str = ""
) -> list:
    return [["b", round(x, 1), round(y, 1), round(w, 1), round(h, 1), text, box, style, anchor, cls]]


def build_scene(index: Index, lay: dict[str, Any], passage: dict | None) -> dict[str, Any]:
    """The scene of one laid-out view (``layout()``'s result) for one backward pass (or None)."""
    nodes, notes = [], []
    for node in lay["nodes"]:
        try:
            nodes.append(_node(index, node, passage))
        except Exception as exc:  # NOTE [the display is total]: the box stays, and says why
            notes.append(failed(f"The box of {node.get('label') or node.get('id')}", exc))
            nodes.append(_broken(node))
    scene = {
        "view": lay["view"],
        "width": lay["width"],
        "height": lay["height"],
        "nodes": nodes,
        "edges": [_edge(e) for e in lay["edges"]],
        "groups": [_frame(g) for g in lay["groups"] if not g["collapsed"]],
        "title": caption(index, lay["view"]),
    }
    scene["banners"] = banners(index, lay, passage) + [
        {"kind": "warn", "icon": "!", "text": n} for n in notes
    ]
    return scene


def _broken(node: dict) -> dict:
    w, h = node["w"], node["h"]
    parts = [
        _r(0, 0, w, h, 6, "box-constant"),
        _t(8, 16, clip(str(node.get("label") or "?"), fits(w, CHAR_W)), "t-name"),
    ]
    return {**_frame_of(node), "parts": parts, "tip": [str(node.get("label") or "?")]}


def _frame_of(node: dict) -> dict[str, Any]:
    """What every scene node has: where it is, what it stands for, and its classes."""
    return {
        "id": node["id"],
        "ref": node.get("ref", node["id"]),
        "kind": node["kind"],
        "cls": list(node.get("classes") or ()),
        "x": round(node["x"] - node["w"] / 2, 1),
        "y": round(node["y"] - node["h"] / 2, 1),
        "w": node["w"],
        "h": node["h"],
    }


def _node(index: Index, node: dict, passage: dict | None) -> dict[str, Any]:
    out = _frame_of(node)
    tensor = index.tensor_of(node)
    if node["kind"] == "tensor" and tensor is not None:
        out["cls"].append(f"t-{tensor.get('kind') or 'intermediate'}")
    draw = {"tensor": _tensor, "op": _op, "group": _collapsed}.get(node["kind"], _grad_node)
    out["parts"], tip = draw(index, node, tensor, passage)
    out["tip"] = [line for line in tip if line]  # the tooltip; joined, what a screen reader says
    refs = {out["ref"]}
    if tensor is not None:
        refs |= {tensor.get("id"), tensor.get("node")}
    out["refs"] = sorted(r for r in refs if isinstance(r, str))
    return out


def _tensor(index: Index, node: dict, t: dict | None, passage: dict | None) -> tuple[list, list]:
    w, h = node["w"], node["h"]
    t = t or {}
    kind = (
        t.get("kind")
        if t.get("kind") in ("leaf", "parameter", "intermediate", "constant")
        else "intermediate"
    )
    boxy = kind == "parameter"
    style = {"leaf": "box-leaf", "parameter": "box-param", "intermediate": "box-intermediate"}.get(
        kind, "box-constant"
    )
    parts = [_r(0, 0, w, h, 3 if boxy else 9, style)]
    if kind in ("leaf", "parameter"):
        parts.append(
            _r(3, 3, w - 6, h - 6, 2 if boxy else 7, "inner-param" if boxy else "inner-leaf", "tl-inner")
        )
    name = clip(str(node["label"]), fits(w, CHAR_W))
    parts.append(_t(8, 16, name, "t-name"))
    tag = {"leaf": "leaf", "parameter": "param", "constant": "no grad"}.get(kind)
    tag_w = len(tag or "") * SMALL_CHAR_W + 8
    if tag and w - 16 - len(name) * CHAR_W >= tag_w + 4:
        parts += _pill(w - tag_w - 6, 4, tag_w, 14, tag, "tag", "t-tag", cls="tl-tag")
    sub = str(node.get("sublabel") or "")
    device = str(t.get("device") or "")
    parts.append(_t(8, 31, clip(sub, fits(w, SMALL_CHAR_W)), "t-sub"))
    if device and (len(sub) + len(device)) * SMALL_CHAR_W + 30 <= w:
        badge_w = len(device) * SMALL_CHAR_W + 8
        accel = device.split(":")[0]
        box, text = {"cpu": ("device", "t-device"), "meta": ("device-meta", "t-device")}.get(
            accel, ("device-accel", "t-device-accel")
        )
        cls = f"tl-device {accel}" + (" accel" if box == "device-accel" else "")
        parts += _pill(w - badge_w - 6, 21, badge_w, 14, device, box, text, cls=cls)
    if t.get("requires_grad"):
        parts += [["c", w - 1, 1, 7.5, "rg", "tl-rg"], _t(w - 1, 4.5, "∂", "t-rg", "m", "tl-rg")]
    rows = []
    flowed = flowed_into(passage, node, t)
    if flowed is not None:
        rows.append(
            ("flowed", f"{grad_label(index, passage, node['label'])} = {summary_text(flowed) or '?'}")
        )
    if t.get("grad") and "version" not in (node.get("classes") or ()):
        rows.append(("stored", f"{node['label']}.grad = {summary_text(t['grad']) or '?'}"))
    inside = max(0, int((h - TENSOR_H) // GRAD_ROW_H))
    above = 0
    for row, (kind_, text) in enumerate(rows):
        text_style = "t-chip-stored" if kind_ == "stored" else "t-chip"
        if row < inside:
            parts += _pill(
                3,
                TENSOR_H - 1 + GRAD_ROW_H * row,
                w - 6,
                13,
                clip(text, fits(w, SMALL_CHAR_W)),
                f"chip-{kind_}",
                text_style,
                "s",
                f"tl-chip chip-{kind_}",
            )
            continue
        # no row was made for it (another pass than the one the layout sized): a tab on the top edge,
        # right-aligned so that a module box's title on the left stays readable
        above += 1
        shown = clip(text, fits(w - 14, SMALL_CHAR_W))
        width = min(w - 14, len(shown) * SMALL_CHAR_W + 10)
        parts += _pill(
            w - 12 - width,
            -14 * above - 1,
            width,
            13,
            shown,
            f"chip-{kind_}",
            text_style,
            "s",
            f"tl-chip tl-tab chip-{kind_}",
        )
    return parts, _tensor_tip(index, t, node, [text for _, text in rows])


def _tensor_tip(index: Index, t: dict, node: dict, rows: list[str]) -> list[str]:
    value = t.get("value")
    value_text = summary_text(value, limit=60) if isinstance(value, dict) else None
    return [
        str(node["label"]) if node["kind"] == "tensor" else f"{node['label']} · {index.name(t.get('id'))}",
        f"{shape_text(t.get('shape'))} · {t.get('dtype') or '?'} · {t.get('device') or '?'}",
        f"requires_grad={bool(t.get('requires_grad'))} · is_leaf={bool(t.get('is_leaf'))}",
        f"grad_fn={t['grad_fn']}" if t.get("grad_fn") else "",
        f"value: {value_text}" if value_text else "",
        *rows,
        f"in module {t['module']}" if t.get("module") else "",
        f"line {t['line']}: {index.source(t['line'])}" if t.get("line") else "",
    ]


def _op(index: Index, node: dict, _t_: Any, passage: dict | None) -> tuple[list, list]:
    w, h = node["w"], node["h"]
    classes = node.get("classes") or ()
    op = index.ops.get(node.get("ref")) or {}
    error = "error" in classes
    style = (
        "box-error"
        if error
        else "box-modified"
        if "modified" in classes
        else (
            "box-op-inplace"
            if "inplace" in classes
            else "box-op-nograd"
            if "no-grad" in classes
            else "box-op"
        )
    )
    parts = [_r(0, 0, w, h, min(h / 2, 14), style)]
    label = f"{'✕ ' if error else ''}{node['label']}"
    sub = str(node.get("sublabel") or "")
    if node.get("warning"):  # the in-place op a backward failed on: a red line of its own
        rows = [(label, "t-op", CHAR_W), *([(sub, "t-sub", SMALL_CHAR_W)] if sub and h >= 46 else [])]
        rows.append((node["warning"], "t-warning", SMALL_CHAR_W))
        for k, (text, style_, char_w) in enumerate(rows):
            parts.append(_t(w / 2, 15 + 13 * k, clip(text, fits(w, char_w)), style_, "m"))
    elif error and sub:  # a failing op has no outputs: its input shapes are written under it
        parts.append(_t(w / 2, h / 2 + 4.5, clip(label, int((w - 10) / CHAR_W)), "t-op", "m"))
        parts.append(_t(w / 2, h + 13, f"inputs {sub}", "t-error", "m"))
    elif sub and h >= OP_TWO_ROWS:
        parts.append(_t(w / 2, h / 2 - 3, clip(label, int((w - 10) / CHAR_W)), "t-op", "m"))
        parts.append(_t(w / 2, h / 2 + 10, clip(sub, fits(w, SMALL_CHAR_W)), "t-sub", "m"))
    else:  # one row: the other arguments only when they fit whole (a clipped "(inplace=…" misleads)
        both = f"{label} {sub}"
        text = both if sub and len(both) <= fits(w, CHAR_W) else label
        parts.append(_t(w / 2, h / 2 + 4.5, clip(text, fits(w, CHAR_W)), "t-op", "m"))
    inputs = ", ".join(
        index.name(i["tensor"])
        if "tensor" in i
        else (f"{i['arg']}={i.get('value')}" if i.get("arg") else str(i.get("value")))
        for i in op.get("inputs") or ()
        if isinstance(i, dict)
    )
    tip = [
        f"{op.get('name') or node['label']}({inputs})",
        f"line {op['line']}: {index.source(op['line'])}" if op.get("line") else "",
        "in-place: changes its input tensor (version bump)" if op.get("inplace") else "",
        f"in {op['module']}" if op.get("module") else "",
        node.get("warning") or "",
    ]
    if error and index.error:
        tip.append(f"{index.error.get('type') or 'error'}: {first_line(index.error.get('message'))}")
    return parts, tip


OP_TWO_ROWS = 34  # graph.py gives an op with a sublabel two rows (36 px)


def _grad_node(index: Index, node: dict, t: dict | None, passage: dict | None) -> tuple[list, list]:
    w, h = node["w"], node["h"]
    classes = node.get("classes") or ()
    ag = index.nodes.get(node.get("ref")) or {}
    if node["kind"] == "grad":
        style = "box-grad-empty" if "empty" in classes else "box-grad"
    else:
        style = "box-gradfn-earlier" if "earlier" in classes else "box-gradfn"
    parts = [_r(0, 0, w, h, 3 if node["kind"] == "grad" else 6, style)]
    sub = node.get("sublabel") or (index.name(t.get("id")) if t and node["kind"] == "grad_fn" else "")
    if ag.get("earlier"):
        sub = f"{sub} · earlier cell" if sub else "earlier cell"
    two = bool(sub) and h >= 28
    name_style, cls = ("t-name", "tl-name") if node["kind"] == "grad" else ("t-op", "tl-fn")
    y = h / 2 - 2.5 if two else h / 2 + 4.5
    parts.append(_t(w / 2, y, clip(str(node["label"]), int((w - 10) / CHAR_W)), name_style, "m", cls))
    if two:
        parts.append(_t(w / 2, h / 2 + 10.5, clip(str(sub), int((w - 10) / SMALL_CHAR_W)), "t-sub", "m"))
    tip = [str(node["label"]), str(sub)]
    if t is not None:
        tip = [str(node["label"]), *_tensor_tip(index, t, node, [])[1:]]
        if ag:
            tip.insert(1, f"autograd node of {index.name(t.get('id'))}")
    return parts, tip


def _collapsed(index: Index, node: dict, _t_: Any, passage: dict | None) -> tuple[list, list]:
    w, h = node["w"], node["h"]
    classes = node.get("classes") or ()
    fold = "fold" in classes
    box = "box-fold" if fold else "box-group"
    what = (
        "loop folded to one block"
        if fold
        else "model construction"
        if "build" in classes
        else "optimizer call"
        if "step" in classes
        else "collapsed module"
    )
    return [
        _r(6, -6, w - 6, h, 7, box, "tl-stack"),
        _r(3, -3, w - 3, h, 7, box, "tl-stack"),
        _r(0, 0, w, h, 7, box),
        _t(8, 16, clip(str(node["label"]), fits(w, CHAR_W)), "t-name"),
        _t(8, 31, clip(str(node.get("sublabel") or what), fits(w, SMALL_CHAR_W)), "t-sub"),
        ["c", w - 1, 1, 7.5, "expand", "tl-expand"],
        ["p", f"M{w - 4.5},1 H{w + 2.5} M{w - 1},-2.5 V4.5", "p-expand", "tl-expand"],
    ], [str(node["label"]), f"{what}: click for its details; + or Enter opens it"]


def edge_path(points: list[list[float]]) -> str:
    """A smooth path through the layout's polyline: an S-curve for two points, rounded corners else."""
    if len(points) < 2:
        return ""
    x0, y0 = points[0]
    if len(points) == 2:
        (x1, y1) = points[1]
        dy = (y1 - y0) / 2
        return f"M{x0:g},{y0:g} C{x0:g},{y0 + dy:g} {x1:g},{y1 - dy:g} {x1:g},{y1:g}"
    d = f"M{x0:g},{y0:g}"
    for (x, y), (nx, ny) in pairwise(points[1:]):
        d += f" Q{x:g},{y:g} {(x + nx) / 2:g},{(y + ny) / 2:g}"
    xl, yl = points[-1]
    return f"{d} L{xl:g},{yl:g}"


def _edge(e: dict[str, Any]) -> dict[str, Any]:
    kind = e["kind"] if e["kind"] in ("data", "grad", "cut") else "data"
    out = {"source": e["source"], "target": e["target"], "kind": kind, "d": edge_path(e["points"])}
    if e.get("label"):
        points = e["points"]
        mx, my = (
            points[len(points) // 2]
            if len(points) > 2
            else [(points[0][k] + points[-1][k]) / 2 for k in (0, 1)]
        )
        text = f"✂ {e['label']}"
        w = len(text) * 6.6 + 12
        out["label"] = _pill(mx - w / 2, my - 9, w, 18, text, "edge-label", "t-edge", "m", "tl-edge-label")
    return out


def _frame(g: dict[str, Any]) -> dict[str, Any]:
    """A module's box (or a folded loop's) around its nodes, with its header to collapse it."""
    fold = bool(g.get("fold"))
    arrow = "▾ "
    return {
        "id": g["id"],
        "style": "fold" if fold else "module",
        "x": g["x"],
        "y": g["y"],
        "w": g["w"],
        "h": g["h"],
        "depth": g.get("depth", 0),
        "head": clip(f"{arrow}{g['label']}", int((g["w"] - 12) / 6.4)),
        "name": f"{'Loop' if fold else 'Module'} {g['label']}: collapse",
    }
