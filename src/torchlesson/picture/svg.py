"""Static renderings of a trace's graph: standalone SVG, an HTML fragment, Graphviz DOT.

They draw the scene (scene.py) the widget draws, part by part, for places where no widget manager
runs: the same boxes, texts and colours (palette.py, light theme). Every piece of user text (names, labels,
values, messages) goes through
``html.escape`` (and control characters that XML forbids are dropped), so the SVG parses as XML
and a tensor named ``</svg><script>`` stays text. Inline presentation attributes only, no
``<style>`` (it would leak into the page) and no script.

NOTE [pictures that survive sanitizers]: the ``text/html`` fallback (to_html) holds the pictures as
``<img>`` with ``data:image/svg+xml`` URLs, not as inline ``<svg>``. JupyterLab and Notebook 7 sanitize
the HTML of an untrusted notebook (a lesson opened for the first time, a downloaded file): inline
``<svg>`` is stripped to its texts, a run-on jumble of every label and tooltip; an ``<img>`` with a data
URL is kept and shows the picture (tests/test_static_browser.py looks at both). A bare
``image/svg+xml`` output is refused there ("untrusted"). nbconvert's HTML export and nbviewer show
the ``text/html`` when no widget state was saved (``WidgetsDataTypeFilter``); with saved widget state
they show the widget, through a html-manager loaded from a CDN: blank offline (the README says how
to export without it). Under the pictures, a table of the tensors stays readable where images are
not shown. No ``<style>`` and no script anywhere (GitHub strips them; a style would leak into the
page): the SVG uses presentation attributes only.
"""

from __future__ import annotations

import base64
import re
from html import escape
from typing import Any

from . import palette
from .failures import failed
from .layout import layout
from .panel import table
from .picture import HTML_BUDGET, MAX_NODES, Picture
from .scene import TOP_ROOM

FONT = palette.FONT
SANS = palette.SANS
RED = palette.colour("error")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _esc(text: Any) -> str:
    """Escape user text for XML text and attribute values."""
    return escape(_XML_BAD.sub("", str(text)), quote=True)


def to_svg(trace: dict[str, Any] | Picture, view: str = "forward", **options: Any) -> str:
    """A standalone SVG picture of the trace's forward or autograd graph.

    ``options``: ``collapsed`` (module paths drawn as one box each; None lets big graphs collapse).

    >>> svg = to_svg({"tensors": [{"id": "t0", "name": "x", "shape": [3], "dtype": "float32"}]})
    >>> svg.startswith("<svg")
    True
    """
    try:
        picture = trace if isinstance(trace, Picture) else Picture(_plain(trace))
        return scene_svg(picture.scene(view, None, options.get("collapsed")))
    except Exception as exc:  # NOTE [the display is total] in failures.py
        return failure_svg(failed("The picture", exc), view)


def _plain(trace: Any) -> dict[str, Any]:
    return trace.to_dict() if hasattr(trace, "to_dict") else trace


def failure_svg(sentence: str, view: str = "forward") -> str:
    """A small SVG that says, in words, that the picture could not be drawn."""
    width = len(sentence) * 6.6 + 24
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} 28" width="{width:g}" height="28" '
        f'role="img" class="torchlesson-svg" data-view="{_esc(view)}" font-family="{_esc(FONT)}" '
        f'font-size="11"><text x="12" y="18" fill="{RED}">{_esc(sentence)}</text></svg>'
    )


def part(item: list) -> str:
    """One part of a node (scene.py's list forms) as SVG."""
    kind = item[0]
    if kind == "r":
        _, x, y, w, h, rx, style, cls = item
        return (
            f'<rect class="{_esc(cls)}" x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="{rx:g}" '
            f"{palette.attrs(style)}/>"
        )
    if kind == "t":
        _, x, y, text, style, anchor, cls = item
        middle = ' text-anchor="middle"' if anchor == "m" else ""
        look = palette.attrs(style)
        return f'<text class="{_esc(cls)}" x="{x:g}" y="{y:g}"{middle} {look}>{_esc(text)}</text>'
    if kind == "c":
        _, cx, cy, r, style, cls = item
        return f'<circle class="{_esc(cls)}" cx="{cx:g}" cy="{cy:g}" r="{r:g}" {palette.attrs(style)}/>'
    if kind == "p":
        _, d, style, cls = item
        return f'<path class="{_esc(cls)}" d="{_esc(d)}" {palette.attrs(style)}/>'
    if kind == "b":
        _, x, y, w, h, text, box, style, anchor, cls = item
        tx = x + (4 if anchor == "s" else w / 2)
        return (
            f'<g class="{_esc(cls)}">{part(["r", x, y, w, h, h / 2, box, ""])}'
            f"{part(['t', tx, y + h / 2 + 3.6, text, style, anchor, ''])}</g>"
        )
    return ""


def scene_svg(scene: dict[str, Any], footer: bool = True) -> str:
    """The SVG of a scene: module and loop frames, edges, nodes, and the banners as a footer."""
    lines = [
        (b["text"] + (f" {b['code']}" if b.get("code") else ""), b["kind"])
        for b in scene["banners"]
        if b.get("action", {}).get("view", scene["view"]) == scene["view"]  # what this picture shows
    ]
    lines = lines if footer else []
    top = TOP_ROOM if any(p[0] == "b" and p[2] < 0 for n in scene["nodes"] for p in n["parts"]) else 0
    width = max(scene["width"], max((len(t) for t, _ in lines), default=0) * 6.6 + 24)
    height = scene["height"] + top + 16 * len(lines) + (8 if lines else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 {-top} {width:g} {height:g}" width="{width:g}" '
        f'height="{height:g}" role="img" font-family="{_esc(SANS)}" font-size="12" class="torchlesson-svg" '
        f'data-view="{_esc(scene["view"])}">',
        f"<title>{_esc(scene['title'])}</title>",
        "<defs>",
        *(
            f'<marker id="tl-arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,1 L9,5 L0,9 z" '
            f"{palette.attrs('arrow-' + kind)}/></marker>"
            for kind in ("data", "grad", "cut")
        ),
        "</defs>",
        f'<rect x="0.5" y="{0.5 - top}" width="{width - 1:g}" height="{height - 1:g}" rx="10" '
        f"{palette.attrs('panel')}/>",
    ]
    for g in sorted(scene["groups"], key=lambda g: g["depth"]):
        x, y, w, h = g["x"], g["y"], g["w"], g["h"]
        frame, head = palette.attrs("frame-" + g["style"]), palette.attrs("head-" + g["style"])
        out.append(
            f'<g class="tl-group {g["style"]}" data-id="{_esc(g["id"])}"><title>{_esc(g["name"])}</title>'
            f'<rect class="tl-group-box" x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="8" {frame}/>'
            f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="19" rx="6" {head}/>'
            f'<text x="{x + 8:g}" y="{y + 13.5:g}" {palette.attrs("t-head")}>{_esc(g["head"])}</text></g>'
        )
    for e in scene["edges"]:
        label = "".join(part(p) for p in e.get("label") or ())
        title = f"<title>gradient stops here: {_esc(e['label'][0][5])}</title>" if e.get("label") else ""
        kind, ends = e["kind"], f'data-source="{_esc(e["source"])}" data-target="{_esc(e["target"])}"'
        out.append(
            f'<g class="tl-edge kind-{kind}" {ends}>{title}'
            f'<path d="{e["d"]}" {palette.attrs("edge-" + kind)} '
            f'marker-end="url(#tl-arrow-{kind})"/>{label}</g>'
        )
    for n in scene["nodes"]:
        classes = " ".join(_esc(c) for c in ["tl-node", f"kind-{n['kind']}", *n["cls"]])
        where = f'transform="translate({n["x"]:g},{n["y"]:g})"'
        out.append(
            f'<g class="{classes}" data-id="{_esc(n["id"])}" {where}>'
            f"<title>{_esc(chr(10).join(n['tip']))}</title>" + "".join(part(p) for p in n["parts"]) + "</g>"
        )
    for k, (text, kind) in enumerate(lines):
        style = "t-footer-error" if kind == "error" else "t-footer"
        out.append(
            f'<text class="tl-footer {kind}" x="12" y="{scene["height"] + 16 * k + 10}" '
            f"{palette.attrs(style)}>{_esc(text)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def to_html(trace: dict[str, Any] | Picture) -> str:
    """An HTML fragment: the forward graph as inline SVG, a caption, and the autograd graph in a
    ``<details>``; for saved notebooks, HTML exports and viewers where no widget runs. Within its
    share of NOTE [a budget for what a cell saves]: past it, the autograd view is left out, then
    the forward view draws fewer nodes, and the picture says so.

    >>> "<svg" in to_html({"tensors": [], "ops": []})
    True
    """
    picture = trace if isinstance(trace, Picture) else Picture(_plain(trace))
    html = _html(picture, MAX_NODES, autograd=True)
    if len(html.encode()) <= HTML_BUDGET:
        return html
    html = _html(picture, MAX_NODES, autograd=False)
    cap = MAX_NODES
    while len(html.encode()) > HTML_BUDGET and cap > 10:
        drawn = len(picture.layout("forward", None, cap)["nodes"])
        cap = max(10, min(cap // 2, int(drawn * HTML_BUDGET / len(html.encode()) * 0.9)))
        html = _html(picture, cap, autograd=False)
    return html


def image(svg: str, alt: str) -> str:
    """An SVG as an ``<img>`` with a data URL: NOTE [pictures that survive sanitizers]."""
    size = re.search(r'width="([\d.]+)" height="([\d.]+)"', svg)
    w, h = size.groups() if size else ("100%", "auto")
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (
        f'<img class="torchlesson-picture" src="data:image/svg+xml;base64,{data}" alt="{_esc(alt)}" '
        f'width="{w}" height="{h}" style="max-width: none;"/>'
    )


def _table(picture: Picture, scene: dict[str, Any]) -> str:
    """The drawn tensors as an HTML table: readable wherever the pictures are not shown."""
    index = picture.index
    refs = list(dict.fromkeys(n["ref"] for n in scene["nodes"] if n["kind"] == "tensor"))
    passage = picture.passage(None)
    rows = table(index, refs, passage, len(index.passes))
    head = "".join(f"<th>{_esc(h)}</th>" for h in rows["heads"])
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row["cells"]) + "</tr>" for row in rows["rows"]
    )
    more = f"<p>{rows['more']} more tensors are not listed.</p>" if rows["more"] else ""
    return (
        f'<details><summary style="cursor: pointer; font-size: 12px;">Tensors ({rows["total"]})</summary>'
        f'<table style="font-size: 12px;"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"{more}</details>"
    )


def _html(picture: Picture, max_nodes: int, autograd: bool) -> str:
    index = picture.index
    forward = picture.scene("forward", max_nodes=max_nodes)
    caption = forward["title"]
    passes = index.passes
    if passes:
        leaves = [
            f"{index.name(t)}.grad = {_summary(index.tensors[t].get('grad'))}"
            for t in passes[-1].get("accumulated") or ()
            if t in index.tensors
        ]
        if leaves:
            caption += " " + "; ".join(leaves[:6]) + ("; …" if len(leaves) > 6 else "")
    muted = palette.colour("fg2")
    parts = [
        f'<div class="torchlesson-static" style="font-family: {_esc(SANS)}; max-width: 100%;">',
        f'<div style="overflow-x: auto;">{image(scene_svg(forward), forward["title"])}</div>',
        f'<div style="font-size: 12px; color: {muted}; margin: 4px 0 6px;">{_esc(caption)} Static picture: '
        "run the notebook to explore the graph interactively.</div>",
    ]
    if index.nodes and autograd:
        scene = picture.scene("autograd", max_nodes=max_nodes)
        parts += [
            '<details><summary style="cursor: pointer; font-size: 12px;">Autograd graph (what backward '
            f'walks)</summary><div style="overflow-x: auto;">'
            f"{image(scene_svg(scene, footer=False), scene['title'])}"
            "</div></details>",
        ]
    elif index.nodes:
        parts.append(
            f'<div style="font-size: 12px; color: {muted};">The autograd graph is left out of this static '
            "picture to keep the notebook small: run the notebook to see it.</div>"
        )
    parts += [_table(picture, forward), "</div>"]
    return "\n".join(parts)


def _summary(summary: Any) -> str:
    from .labels import summary_text

    return summary_text(summary) or "None"


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
        style = _dot_style(n)
        fill, stroke, width = palette.colour_of(style, "fill"), palette.colour_of(style, "stroke"), 1.5
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
        attrs = f' [color="{palette.colour_of("edge-" + e["kind"], "stroke")}"'
        if e["kind"] == "cut":
            attrs += f', style=dashed, fontcolor="{RED}", label={_dot_quote(e["label"] or "cut")}'
        out.append(f"  {_dot_quote(e['source'])} -> {_dot_quote(e['target'])}{attrs}];")
    out.append("}")
    return "\n".join(out)


def _dot_style(n: dict[str, Any]) -> str:
    classes = set(n["classes"])
    for cls, style in (
        ("error", "box-error"),
        ("modified", "box-modified"),
        ("parameter", "box-param"),
        ("leaf", "box-leaf"),
        ("intermediate", "box-intermediate"),
        ("constant", "box-constant"),
    ):
        if cls in classes:
            return style
    return {"grad_fn": "box-gradfn", "grad": "box-grad", "group": "box-group"}.get(n["kind"], "box-op")
