"""Static renderings of a trace's graph: standalone SVG, an HTML fragment, Graphviz DOT.

They draw :func:`torchlesson.picture.layout.layout`, the same positions the widget draws, for places where
no widget manager runs. Every piece of user text (names, labels, values, messages) goes through
``html.escape`` (and control characters that XML forbids are dropped), so the SVG parses as XML
and a tensor named ``</svg><script>`` stays text. Inline presentation attributes only, no
``<style>`` (it would leak into the page) and no script.

Which fallback for saved notebooks (nbconvert 7.17's HTML exporter, its templates, and
``jupyter nbconvert --to html`` on a notebook whose output has the widget view and ``text/html``):
``display_data_priority`` is widget-view, javascript, text/html, text/markdown, image/svg+xml, ...;
``WidgetsDataTypeFilter`` skips the widget view unless the notebook's metadata holds saved widget
state for that model (JupyterLab does not save it by default), and then the export shows the
bundle's ``text/html``: our inline SVG, hover titles and ``<details>`` included. With saved state
the export shows only the widget, through the html-manager loaded from a CDN (blank offline).
``image/svg+xml`` is exported as a base64 ``<img>``: no hover titles, and only reached when there
is no ``text/html``. nbviewer renders through nbconvert, so the same holds there. GitHub's viewer
(not checked here: no network) sanitizes HTML, dropping scripts and styles, which is why this SVG
uses presentation attributes only. So the widget's mime bundle should carry :func:`to_html` as
``text/html`` (plus ``text/plain``); adding ``image/svg+xml`` would double the notebook's size for
no reader.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from .failures import failed
from .graph import GRAD_ROW_H, TENSOR_H
from .labels import CHAR_W, facts_text, first_line, format_values, shorten, summary_text, tensor_label
from .layout import layout

FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
TEXT, MUTED, GRAD, GRAD_FILL, RED = "#1f2328", "#57606a", "#1a7f37", "#dafbe1", "#cf222e"
# node fill, stroke, stroke width by class (first match wins)
_NODE_STYLE = [
    ("error", ("#ffebe9", RED, 2.0)),
    ("modified", ("#ffffff", RED, 2.5)),  # the in-place op that broke a backward
    ("parameter", ("#fff8c5", "#9a6700", 2.5)),
    ("leaf", ("#ddf4ff", "#0969da", 2.5)),
    ("intermediate", ("#f6f8fa", "#6e7781", 1.2)),
    ("constant", ("#f6f8fa", "#8c959f", 1.0)),
    ("grad_fn", ("#fbefff", "#8250df", 1.2)),
    ("grad", (GRAD_FILL, GRAD, 1.5)),
    ("group", ("#f6f8fa", "#6e7781", 1.5)),
    ("op", ("#ffffff", "#6e7781", 1.0)),
]
_DEVICE = {"cuda": ("#dafbe1", GRAD), "mps": ("#fbefff", "#8250df"), "meta": ("#ffffff", "#6e7781")}
_EDGE = {"data": "#6e7781", "grad": "#8250df", "cut": RED}
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _esc(text: Any) -> str:
    """Escape user text for XML text and attribute values."""
    return escape(_XML_BAD.sub("", str(text)), quote=True)


def to_svg(trace: dict[str, Any], view: str = "forward", **options: Any) -> str:
    """A standalone SVG picture of the trace's forward or autograd graph.

    ``options`` go to :func:`~torchlesson.picture.layout.layout` (``collapsed``, ``max_nodes``).

    >>> svg = to_svg({"tensors": [{"id": "t0", "name": "x", "shape": [3], "dtype": "float32"}]})
    >>> svg.startswith("<svg")
    True
    """
    if hasattr(trace, "to_dict"):
        trace = trace.to_dict()
    try:
        return _svg(layout(trace, view, **options), trace)
    except Exception as exc:  # NOTE [the display is total] in failures.py
        return failure_svg(failed("The picture", exc), view)


def failure_svg(sentence: str, view: str = "forward") -> str:
    """A small SVG that says, in words, that the picture could not be drawn."""
    width = len(sentence) * 6.6 + 24
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} 28" width="{width:g}" height="28" '
        f'role="img" class="torchlesson-svg" data-view="{_esc(view)}" font-family="{_esc(FONT)}" '
        'font-size="11">'
        f'<text x="12" y="18" fill="{RED}">{_esc(sentence)}</text></svg>'
    )


def _svg(lay: dict[str, Any], trace: dict[str, Any]) -> str:
    footer = _footer(lay, trace)
    width = max(lay["width"], max((len(t) for t, _ in footer), default=0) * 6.6 + 24)
    height = lay["height"] + 16 * len(footer) + (8 if footer else 0)
    view = lay["view"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" width="{width:g}" '
        f'height="{height:g}" role="img" font-family="{_esc(FONT)}" font-size="12" '
        f'class="torchlesson-svg" data-view="{_esc(view)}">',
        f"<title>{_esc(_caption(trace, view))}</title>",
        "<defs>",
        *(
            f'<marker id="tl-arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/>'
            "</marker>"
            for kind, color in _EDGE.items()
        ),
        "</defs>",
        f'<rect x="0.5" y="0.5" width="{width - 1:g}" height="{height - 1:g}" rx="10" fill="#ffffff" '
        'stroke="#d0d7de"/>',
    ]
    for g in lay["groups"]:
        if not g["collapsed"]:
            out.append(
                f'<g class="group" data-id="{_esc(g["id"])}"><title>{_esc(g["label"])}: {g["count"]} nodes'
                f'</title><rect x="{g["x"]}" y="{g["y"]}" width="{g["w"]}" height="{g["h"]}" rx="8" '
                f'fill="#f6f8fa" fill-opacity="0.6" stroke="#afb8c1" stroke-dasharray="4 3"/>'
                f'<text x="{g["x"] + 8}" y="{g["y"] + 14}" font-size="11" fill="{MUTED}">'
                f"{_esc(g['label'])}</text></g>"
            )
    out += [_edge(e) for e in lay["edges"]]
    info = _facts_index(trace)
    out += [_node(n, info) for n in lay["nodes"]]
    for k, (text, color) in enumerate(footer):
        y = lay["height"] + 16 * k + 10
        out.append(f'<text x="12" y="{y}" font-size="11" fill="{color}">{_esc(text)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _footer(lay: dict[str, Any], trace: dict[str, Any]) -> list[tuple[str, str]]:
    lines = []
    if lay["note"]:
        lines.append((lay["note"], MUTED))
    error = trace.get("error")
    if error and lay["view"] == "forward":
        where = f" at line {error['line']}" if error.get("line") else ""
        message = first_line(error.get("message"))[:150]
        lines.append((f"{error.get('type') or 'Error'}{where}" + (f": {message}" if message else ""), RED))
        culprit = modified_by(trace)
        if culprit:
            lines.append((culprit, RED))
    return lines


def modified_by(trace: dict[str, Any]) -> str | None:
    """``A tensor backward needed was modified in place by mul_ on line 3 (outlined in red):
    y.mul_(2)``: the in-place op a failing backward names in ``error.modified_by``, or None."""
    error = trace.get("error") or {}
    op = next((o for o in trace.get("ops") or () if o["id"] == error.get("modified_by")), None)
    if op is None:
        return None
    line = op.get("line")
    lines = trace.get("lines") or []
    code = lines[line - 1].strip() if isinstance(line, int) and 0 < line <= len(lines) else ""
    where = f" on line {line}" if line else ""
    text = f"A tensor backward needed was modified in place by {op['name']}{where} (outlined in red)"
    return text + (f": {shorten(code, 60)}" if code else ".")


def _edge(e: dict[str, Any]) -> str:
    color = _EDGE.get(e["kind"], _EDGE["data"])
    points = " ".join(f"{x:g},{y:g}" for x, y in e["points"])
    dash = ' stroke-dasharray="6 4"' if e["kind"] == "cut" else ""
    width = 1.6 if e["kind"] == "cut" else 1.2
    parts = [
        f'<g class="edge {_esc(e["kind"])}" data-source="{_esc(e["source"])}" '
        f'data-target="{_esc(e["target"])}">',
        f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="{width}"{dash} '
        f'marker-end="url(#tl-arrow-{_esc(e["kind"]) if e["kind"] in _EDGE else "data"})"/>',
    ]
    if e["label"]:
        (x1, y1), (x2, y2) = e["points"][0], e["points"][-1]
        x, y = (x1 + x2) / 2 + 6, (y1 + y2) / 2 + 4
        parts.append(f"<title>gradient stops here: {_esc(e['label'])}</title>")
        parts.append(
            f'<text x="{x:g}" y="{y:g}" font-size="10.5" fill="{RED}" stroke="#ffffff" stroke-width="3" '
            f'paint-order="stroke">{_esc(e["label"])}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _node(n: dict[str, Any], info: dict[str, dict[str, Any]]) -> str:
    classes = n["classes"]
    fill, stroke, width = next(
        (style for cls, style in _NODE_STYLE if cls in classes or cls == n["kind"]), _NODE_STYLE[-1][1]
    )
    x, y, w, h = n["x"] - n["w"] / 2, n["y"] - n["h"] / 2, n["w"], n["h"]
    radius = min(h / 2, 14) if n["kind"] == "op" else 6
    dim = ' opacity="0.55"' if "dimmed" in classes or "earlier" in classes else ""
    dash = ' stroke-dasharray="5 3"' if {"no-grad", "earlier", "meta"} & set(classes) else ""
    css = " ".join(_esc(c) for c in [n["kind"], *classes])
    parts = [
        f'<g class="node {css}" data-id="{_esc(n["id"])}"{dim}>',
        f"<title>{_esc(_hover(n, info))}</title>",
        f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="{radius:g}" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{width}"{dash}/>',
    ]
    lines = [(n["label"], 12, RED if "error" in classes else TEXT, "bold" if n["kind"] == "tensor" else "")]
    if n["sublabel"]:
        lines.append((n["sublabel"], 10.5, RED if "error" in classes else MUTED, ""))
    if n.get("warning"):
        lines.append((n["warning"], 10.5, RED, "bold"))
    rows = [
        (kind, n[key]) for kind, key in (("flowed", "grad_label"), ("stored", "stored_label")) if n.get(key)
    ]
    top = y + (TENSOR_H if rows else h) / 2 - (len(lines) - 1) * 7 + 4  # centred above the rows
    for k, (text, size, color, weight) in enumerate(lines):
        bold = f' font-weight="{weight}"' if weight else ""
        parts.append(
            f'<text x="{n["x"]:g}" y="{top + 14 * k:g}" text-anchor="middle" font-size="{size}" '
            f'fill="{color}"{bold}>{_esc(text)}</text>'
        )
    for k, (kind, text) in enumerate(rows):
        parts.append(_grad_row(kind, text, x, y + TENSOR_H - 1 + GRAD_ROW_H * k, w))
    if n["kind"] == "tensor":
        parts.append(_badge(info.get(n["ref"], {}).get("device") or "cpu", x + w, y))
    parts.append("</g>")
    return "".join(parts)


def _grad_row(kind: str, text: str, left: float, top: float, w: float) -> str:
    """One gradient row inside a tensor's box (NOTE [gradient rows] in graph.py), as the widget
    draws it: the gradient that flowed in is an outlined, dashed pill (not kept); the ``.grad`` the
    tensor stores is a filled pill in bold."""
    style = (
        'fill="#ffffff" stroke-dasharray="3 2"'
        if kind == "flowed"
        else f'fill="{GRAD_FILL}" stroke-width="1.5"'
    )
    bold = ' font-weight="bold"' if kind == "stored" else ""
    return (
        f'<g class="grad-row {kind}"><rect x="{left + 3:g}" y="{top:g}" width="{w - 6:g}" height="13" '
        f'rx="6.5" stroke="{GRAD}" {style}/><text x="{left + w / 2:g}" y="{top + 10.1:g}" '
        f'text-anchor="middle" font-size="10.5" fill="{GRAD}"{bold}>{_esc(text)}</text></g>'
    )


def _badge(device: str, right: float, top: float) -> str:
    """The device tag on a tensor's top-right corner: cpu grey, cuda green, mps purple, meta dashed."""
    kind = str(device).split(":")[0]
    fill, stroke = _DEVICE.get(kind, ("#eaeef2", "#6e7781"))
    w = len(str(device)) * CHAR_W * 0.8 + 8
    dash = ' stroke-dasharray="3 2"' if kind == "meta" else ""
    return (
        f'<g class="device {_esc(kind)}"><rect x="{right - w - 4:g}" y="{top - 7:g}" width="{w:g}" '
        f'height="13" rx="6" fill="{fill}" stroke="{stroke}"{dash}/>'
        f'<text x="{right - 4 - w / 2:g}" y="{top + 3:g}" '
        f'text-anchor="middle" font-size="9" fill="{stroke}">{_esc(device)}</text></g>'
    )


def _facts_index(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for key in ("tensors", "ops"):
        for item in trace.get(key) or ():
            index[item["id"]] = item
    for node in (trace.get("autograd") or {}).get("nodes") or ():
        index[node["id"]] = node
    return index


def _hover(n: dict[str, Any], info: dict[str, dict[str, Any]]) -> str:
    """Hover text: the facts a learner asks about next."""
    item = info.get(n["ref"], {})
    lines = []
    if n["kind"] == "tensor":
        lines.append(f"{tensor_label(item)}: {facts_text(item)} on {item.get('device', 'cpu')}")
        lines.append(
            f"requires_grad={item.get('requires_grad')}, is_leaf={item.get('is_leaf')}, "
            f"grad_fn={item.get('grad_fn')}"
        )
        for field in ("value", "grad"):
            if item.get(field):
                lines.append(f"{field}: {_values_or_stats(item[field])}")
    elif n["kind"] == "grad" and item:
        lines.append(f"{tensor_label(item)}.grad: {_values_or_stats(item.get('grad'))}")
    else:
        lines.append(n["label"] + (f" {n['sublabel']}" if n["sublabel"] else ""))
    if n.get("warning"):
        lines.append(n["warning"])
    if n.get("grad_label"):
        lines.append(n["grad_label"])
    if item.get("module"):
        lines.append(f"in module {item['module']}")
    if n.get("line"):
        lines.append(f"line {n['line']}")
    return "\n".join(lines)


def _values_or_stats(summary: dict[str, Any] | None) -> str:
    if not isinstance(summary, dict) or not summary:
        return "None"
    if summary.get("unavailable"):  # never numbers that were not read (torch.empty's garbage)
        return f"{facts_text(summary)} ({summary['unavailable']})"
    values = summary.get("values")
    text = format_values(values, limit=120) if values is not None else None
    if text:
        return text
    stats = [f"{k}={_stat(summary[k])}" for k in ("min", "max", "mean", "norm") if summary.get(k) is not None]
    return f"{facts_text(summary)} " + " ".join(stats)


def _stat(value: Any) -> str:
    """A statistic: ``3.464``; the strings the trace writes for non-finite ones as they are."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4g}"
    return str(value)


def _caption(trace: dict[str, Any], view: str = "forward") -> str:
    tensors = trace.get("tensors") or []
    ops = trace.get("ops") or []
    what = "Forward graph" if view == "forward" else "Autograd graph (the order backward walks)"
    text = f"{what}: {len(tensors)} tensors, {len(ops)} operations"
    passes = trace.get("backward") or []
    if passes:
        names = {t["id"]: tensor_label(t) for t in tensors}
        roots = ", ".join(names.get(r, r) for r in passes[-1].get("root") or ())
        text += f"; {len(passes)} backward pass{'es' * (len(passes) > 1)} (last from {roots})"
    return text + "."


def to_html(trace: dict[str, Any]) -> str:
    """An HTML fragment: the forward graph as inline SVG, a caption, and the autograd graph in a
    ``<details>``; for saved notebooks, HTML exports and viewers where no widget runs.

    >>> "<svg" in to_html({"tensors": [], "ops": []})
    True
    """
    if hasattr(trace, "to_dict"):
        trace = trace.to_dict()
    caption = _caption(trace)
    passes = trace.get("backward") or []
    if passes:
        grads = {t["id"]: t for t in trace.get("tensors") or ()}
        leaves = [f"{tensor_label(grads[t])}.grad = {summary_text(grads[t].get('grad'))}"
                  for t in passes[-1].get("accumulated") or () if t in grads]  # fmt: skip
        if leaves:
            caption += " " + "; ".join(leaves[:6]) + ("; …" if len(leaves) > 6 else "")
    parts = [
        '<div class="torchlesson-static" style="font-family: system-ui, sans-serif; max-width: 100%; '
        'overflow-x: auto;">',
        to_svg(trace, "forward"),
        f'<div style="font-size: 12px; color: {MUTED}; margin: 4px 0 6px;">{_esc(caption)} Static picture: '
        "run the notebook to explore the graph interactively.</div>",
    ]
    if (trace.get("autograd") or {}).get("nodes"):
        parts += [
            '<details><summary style="cursor: pointer; font-size: 12px;">Autograd graph (what backward '
            "walks)</summary>",
            to_svg(trace, "autograd"),
            "</details>",
        ]
    parts.append("</div>")
    return "\n".join(parts)


def _dot_quote(text: Any) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as ``\\n``."""
    text = _XML_BAD.sub("", str(text)).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def to_dot(trace: dict[str, Any], view: str = "forward", **options: Any) -> str:
    """Graphviz DOT source of the same graph (for torchviz users: ``dot -Tsvg``).

    >>> print(to_dot({"tensors": [{"id": "t0", "name": "x", "shape": [3], "dtype": "float32"}]}))
    ... # doctest: +ELLIPSIS
    digraph torchlesson {
    ...
    """
    if hasattr(trace, "to_dict"):
        trace = trace.to_dict()
    try:
        return _dot(trace, view, options)
    except Exception as exc:  # NOTE [the display is total] in failures.py
        sentence = failed("The picture", exc)
        return f"digraph torchlesson {{\n  failed [shape=plaintext, label={_dot_quote(sentence)}];\n}}"


def _dot(trace: dict[str, Any], view: str, options: dict[str, Any]) -> str:
    lay = layout(trace, view, **options)
    out = [
        "digraph torchlesson {",
        '  graph [rankdir=TB, fontname="monospace", fontsize=11];',
        '  node [fontname="monospace", fontsize=11, style="rounded,filled"];',
        '  edge [color="#6e7781"];',
    ]
    members: dict[str | None, list[str]] = {}
    for n in lay["nodes"]:
        fill, stroke, width = next(
            (s for cls, s in _NODE_STYLE if cls in n["classes"] or cls == n["kind"]), _NODE_STYLE[-1][1]
        )
        label = "\n".join(
            t
            for t in (n["label"], n["sublabel"], n.get("warning"), n.get("grad_label"), n.get("stored_label"))
            if t
        )
        shape = "ellipse" if n["kind"] == "op" else "box"
        style = "filled,dashed" if "dimmed" in n["classes"] else "rounded,filled"
        members.setdefault(n["group"], []).append(
            f"{_dot_quote(n['id'])} [label={_dot_quote(label)}, shape={shape}, style={_dot_quote(style)}, "
            f'fillcolor="{fill}", color="{stroke}", penwidth={width}];'
        )
    paths = sorted({g["id"] for g in lay["groups"] if not g["collapsed"]})
    labels = {g["id"]: g["label"] for g in lay["groups"]}
    out += ["  " + line for line in members.get(None, [])]
    # clusters nest by module path: open each path's cluster, then its children, then close it
    stack: list[str] = []
    for path in paths:
        while stack and not path.startswith(stack[-1] + "."):
            stack.pop()
            out.append("  " * (len(stack) + 1) + "}")
        pad = "  " * (len(stack) + 1)
        out.append(f"{pad}subgraph {_dot_quote('cluster_' + path)} {{")
        out.append(f'{pad}  label={_dot_quote(labels[path])}; style="rounded,dashed"; color="#afb8c1";')
        out += [f"{pad}  {line}" for line in members.get(path, [])]
        stack.append(path)
    while stack:
        stack.pop()
        out.append("  " * (len(stack) + 1) + "}")
    for e in lay["edges"]:
        attrs = f' [color="{_EDGE.get(e["kind"], _EDGE["data"])}"'
        if e["kind"] == "cut":
            attrs += f', style=dashed, fontcolor="{RED}", label={_dot_quote(e["label"] or "cut")}'
        out.append(f"  {_dot_quote(e['source'])} -> {_dot_quote(e['target'])}{attrs}];")
    out.append("}")
    return "\n".join(out)
