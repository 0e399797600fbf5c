"""The graph widget's synced state, without a browser: it must say what the trace says."""

from __future__ import annotations

import json
import re

import pytest
import torch
import traitlets

import _synthetic as synthetic
from _seed import SEED_CELL
from test_layout import inplace_broke_backward
from torchlesson.picture.layout import layout
from torchlesson.picture.widget import _STATIC, GraphWidget

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
GRAPH_JS = _STATIC / "graph.js"


def traced(ipython, code: str) -> tuple[dict, dict]:
    """Run `code` as a ``%%autograd_trace`` cell; returns (trace dict, the cell's namespace)."""
    ipython.run("import torch")
    run = ipython.run("%%autograd_trace -o _trace\n" + code)
    if run.error is not None:
        raise run.error
    return ipython.shell.user_ns["_trace"].to_dict(), ipython.shell.user_ns


def scene(widget: GraphWidget, view: str = "forward") -> dict:
    return widget.picture["views"][view]


def texts(node: dict) -> list[str]:
    """The texts a scene node draws (scene.py parts), in order."""
    out = []
    for part in node["parts"]:
        if part[0] == "t":
            out.append(part[3])
        elif part[0] == "b":
            out.append(part[5])
    return out


def detail(widget: GraphWidget, ref: str) -> dict[str, dict]:
    """The details panel of ``ref``: its rows by key."""
    return {row["key"]: row for row in widget.picture["details"][ref]["rows"]}


def test_tensors_ops_and_gradients_are_the_traces(ipython) -> None:
    """What the widget says about each tensor is what the trace says, and torch agrees."""
    trace, ns = traced(ipython, SEED_CELL)
    widget = GraphWidget(trace)
    ids = {t["name"]: t["id"] for t in trace["tensors"] if t.get("name")}
    assert {"x", "y", "z", "loss"} <= set(ids)
    rows = {row["ref"]: row["cells"] for row in widget.picture["table"]["rows"]}
    assert [rows[t["id"]][:4] for t in trace["tensors"]] == [
        [t["name"], str(t["shape"]).replace(" ", "").replace(",", ", "), t["dtype"], t["device"]]
        for t in trace["tensors"]
    ]
    ops = {n["ref"]: n for n in scene(widget)["nodes"] if n["kind"] == "op"}
    assert sorted(ops) == sorted(o["id"] for o in trace["ops"] if any("tensor" in i for i in o["inputs"]))
    # torch is the oracle: the stored .grad and the gradient that flowed into y
    assert detail(widget, ids["x"])["stored .grad"]["text"] == str(ns["x"].grad.tolist()).replace("2.0", "2.")
    oracle = {"torch": torch}
    exec(SEED_CELL.replace("y = x * 2\n", "y = x * 2\ny.retain_grad()\n"), oracle)
    flowed = str(oracle["y"].grad.tolist()).replace("1.0", "1.")
    assert detail(widget, ids["y"])["gradient in"]["text"] == flowed
    (y,) = [n for n in scene(widget)["nodes"] if n["ref"] == ids["y"]]
    assert f"∂loss/∂y = {flowed}" in texts(y)
    # a non-leaf stores no .grad: the widget must not invent one
    assert detail(widget, ids["y"])["stored .grad"]["text"].startswith("None: autograd keeps no .grad")
    assert not [t for t in texts(y) if t.startswith("y.grad")]
    order = [n["ref"] for n in scene(widget, "autograd")["nodes"]]
    assert set(trace["backward"][0]["order"]) <= set(order)


def test_scenes_are_drawn_where_the_layout_module_put_them(ipython) -> None:
    trace, _ = traced(ipython, SEED_CELL)
    widget = GraphWidget(trace)
    for view in ("forward", "autograd"):
        sent, expected = scene(widget, view), layout(trace, view)
        assert (sent["width"], sent["height"]) == (expected["width"], expected["height"])
        assert [n["id"] for n in sent["nodes"]] == [n["id"] for n in expected["nodes"]]
        for got, want in zip(sent["nodes"], expected["nodes"], strict=True):
            assert got["ref"] == want["ref"]
            assert [c for c in got["cls"] if not c.startswith("t-")] == want["classes"]
            assert (got["x"], got["y"], got["w"], got["h"]) == (
                round(want["x"] - want["w"] / 2, 1),
                round(want["y"] - want["h"] / 2, 1),
                want["w"],
                want["h"],
            )
            assert texts(got)[0].removeprefix("✕ ") == want["label"]
        assert [(e["source"], e["target"], e["kind"]) for e in sent["edges"]] == [
            (e["source"], e["target"], e["kind"]) for e in expected["edges"]
        ]
    labels = [texts(n)[0] for n in scene(widget, "autograd")["nodes"]]
    assert "MulBackward0" in labels


def test_collapsing_a_module_recomputes_both_scenes() -> None:
    trace = synthetic.mlp(30)
    widget = GraphWidget(trace, collapsed=[])
    assert not [n for n in scene(widget)["nodes"] if n["kind"] == "group"]

    widget.collapsed = ["model.0"]
    for view in ("forward", "autograd"):
        nodes = scene(widget, view)["nodes"]
        assert [n["id"] for n in nodes] == [n["id"] for n in layout(trace, view, ["model.0"])["nodes"]]
        groups = [n for n in nodes if n["kind"] == "group"]
        assert [n["ref"] for n in groups] == ["model.0"]
        assert widget.picture["details"]["model.0"]["kind"] == "module"

    widget.collapsed = []
    assert [n["id"] for n in scene(widget)["nodes"]] == [
        n["id"] for n in layout(trace, "forward", [])["nodes"]
    ]


def test_big_graphs_start_collapsed_and_say_so() -> None:
    widget = GraphWidget(synthetic.mlp(400))
    assert widget.collapsed is None  # the layout chose
    forward = scene(widget)
    assert any(n["kind"] == "group" for n in forward["nodes"])
    assert any("collapsed" in b["text"] for b in forward["banners"] if b["kind"] == "info")


@pytest.mark.parametrize("shape", ["chain", "tree", "diamonds", "mlp"])
def test_synced_state_stays_within_its_budget_at_2000_nodes(shape: str) -> None:
    """NOTE [a budget for what a cell saves]: the state a saved notebook keeps stays under its share
    of 1 MB however big the graph, and the picture says what it left out."""
    trace = synthetic.SHAPES[shape](2000)
    nodes = synthetic.forward_node_count(trace)
    assert nodes >= 1990
    widget = GraphWidget(trace)
    state = json.dumps(widget.get_state(), allow_nan=False)  # what the kernel sends, JS and CSS included
    assert len(state.encode()) < 700_000
    drawn = scene(widget)["nodes"]
    if shape != "mlp":  # nothing to collapse: the first nodes are drawn, and a banner says how many
        notes = [b["text"] for b in scene(widget)["banners"] if b["kind"] == "info"]
        assert any(f"Showing the first {len(drawn)} of {nodes} nodes" in n for n in notes), notes
        assert len(drawn) >= 100


def test_values_keep_the_digits_torch_prints_and_non_finite_ones_survive_json(ipython) -> None:
    trace, ns = traced(
        ipython, "w = torch.tensor([12.3456789, 0.000123456, -2.5, float('nan'), float('inf')])\n"
    )
    widget = GraphWidget(trace)
    shown = detail(widget, trace["tensors"][0]["id"])["value"]["text"]
    printed = repr(ns["w"]).removeprefix("tensor(").removesuffix(")")
    assert shown.replace(" ", "") == printed.replace(" ", "")  # torch's digits, nan and inf
    json.dumps(widget.get_state(), allow_nan=False)


def test_every_backward_pass_is_sent_and_validated(ipython) -> None:
    trace, ns = traced(
        ipython,
        "x = torch.tensor([1.0, 2.0], requires_grad=True)\n"
        "loss = (x * x).sum()\n"
        "loss.backward(retain_graph=True)\n"
        "loss.backward()\n",
    )
    widget = GraphWidget(trace)
    x = next(t["id"] for t in trace["tensors"] if t["name"] == "x")
    assert widget.picture["passes"] == ["pass 1 of 2 · line 3", "pass 2 of 2 · line 4"]
    assert widget.pass_index == 1  # the last pass: the one that left .grad as it is
    flowed = torch.autograd.grad((ns["x"] * ns["x"]).sum(), ns["x"])[0].tolist()
    expected = str(flowed).replace(".0", ".")
    assert detail(widget, x)["gradient in"]["text"] == expected
    assert detail(widget, x)["gradient in"]["note"] == "∂loss/∂x, pass 2: flowed through, not kept"
    assert detail(widget, x)["stored .grad"]["text"] == str(ns["x"].grad.tolist()).replace(".0", ".")  # both
    widget.pass_index = 0  # Python writes the other pass's texts
    assert detail(widget, x)["gradient in"]["note"] == "∂loss/∂x, pass 1: flowed through, not kept"
    assert widget.picture["table"]["heads"][-1] == "gradient in (pass 1)"
    with pytest.raises(traitlets.TraitError, match="out of range"):
        widget.pass_index = 2
    with pytest.raises(traitlets.TraitError):
        widget.view = "sideways"


def test_mimebundle_is_a_widget_view_with_a_cheap_text_form(ipython) -> None:
    trace, _ = traced(ipython, SEED_CELL)
    widget = GraphWidget(trace)
    bundle = widget._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert bundle[WIDGET_MIME]["model_id"] == widget.model_id
    assert repr(widget) == "GraphWidget(4 tensors, 4 ops, 1 backward pass, view='forward')"


def test_the_magic_displays_the_widget(ipython) -> None:
    ipython.run("import torch")
    run = ipython.run("%%autograd_trace\n" + SEED_CELL)
    assert run.error is None
    assert len(run.widgets) == 1


def test_a_dict_that_is_no_trace_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Trace\.to_dict"):
        GraphWidget({"nodes": []})


def test_every_field_sent_is_one_graph_js_reads(ipython) -> None:
    """NOTE [what the browser gets]: no field of the picture goes to the browser unless graph.js
    reads it."""
    trace, _ = traced(ipython, SEED_CELL)
    widget = GraphWidget(trace)
    js = re.sub(r"/\*.*?\*/|//[^\n]*", "", GRAPH_JS.read_text(encoding="utf-8"), flags=re.S)
    picture = widget.picture
    keys = set(picture) | set(picture["table"])
    for view in picture["views"].values():
        keys |= set(view) | set(view["replay"])
        for part in ("nodes", "edges", "groups", "banners"):
            keys |= {k for item in view[part] for k in item}
        keys |= {k for step in view["replay"]["steps"] for k in step}
    for d in picture["details"].values():
        keys |= set(d) | {k for row in d["rows"] for k in row}
    unread = sorted(k for k in keys if not re.search(rf"\b{re.escape(k)}\b", js))
    assert unread == []


def test_the_inplace_op_that_broke_backward_reaches_the_browser_marked(ipython) -> None:
    trace = inplace_broke_backward(ipython)
    widget = GraphWidget(trace)
    (marked,) = [n for n in scene(widget)["nodes"] if "modified" in n["cls"]]
    assert marked["id"] == trace["error"]["modified_by"]
    assert texts(marked) == ["×= 2", "modified a tensor backward needed"]
    (banner,) = [b for b in scene(widget)["banners"] if b.get("action")]
    assert (
        banner["text"]
        == "A tensor backward needed was modified in place by mul_ on line 3 (outlined in red):"
    )
    assert banner["action"] == {"label": "Show it", "view": "forward", "select": marked["id"]}
    assert widget.picture["details"][marked["id"]]["alerts"][0].startswith("This op modified y in place")
