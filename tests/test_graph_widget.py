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


def by_name(widget: GraphWidget) -> dict[str, dict]:
    return {t["name"]: t for t in widget.trace["tensors"] if t.get("name")}


def test_tensors_ops_and_gradients_are_the_traces(ipython) -> None:
    trace, ns = traced(ipython, SEED_CELL)
    widget = GraphWidget(trace)
    sent = widget.trace

    assert [(t["id"], t["name"], t["shape"], t["dtype"]) for t in sent["tensors"]] == [
        (t["id"], t["name"], t["shape"], t["dtype"]) for t in trace["tensors"]
    ]
    assert [(o["id"], o["name"], o["inputs"], o["outputs"]) for o in sent["ops"]] == [
        (o["id"], o["name"], o["inputs"], o["outputs"]) for o in trace["ops"]
    ]
    tensors = by_name(widget)
    assert {"x", "y", "z", "loss"} <= set(tensors)
    # torch is the oracle: the stored .grad and the gradient that flowed into y
    assert tensors["x"]["grad"]["values"] == ns["x"].grad.tolist()
    oracle = {"torch": torch}
    exec(SEED_CELL.replace("y = x * 2\n", "y = x * 2\ny.retain_grad()\n"), oracle)
    (only_pass,) = sent["backward"]
    assert only_pass["order"] == trace["backward"][0]["order"]
    assert only_pass["grads"][tensors["y"]["id"]]["values"] == oracle["y"].grad.tolist()
    assert tensors["y"].get("grad") is None  # a non-leaf stores no .grad: the widget must not invent one


def test_layouts_are_those_of_the_layout_module(ipython) -> None:
    trace, _ = traced(ipython, SEED_CELL)
    widget = GraphWidget(trace)
    for view in ("forward", "autograd"):
        sent, expected = widget.layouts[view], layout(trace, view)
        assert (sent["width"], sent["height"], sent["note"], sent["omitted"]) == (
            expected["width"],
            expected["height"],
            expected["note"],
            expected["omitted"],
        )
        assert [n["id"] for n in sent["nodes"]] == [n["id"] for n in expected["nodes"]]
        for got, want in zip(sent["nodes"], expected["nodes"], strict=True):
            assert got.get("ref", got["id"]) == want["ref"]
            assert got.get("sublabel") == want["sublabel"]
            assert got.get("classes", []) == want["classes"]
            for key in ("kind", "label", "x", "y", "w", "h"):
                assert got[key] == want[key], (view, want["id"], key)
        assert [
            (e["source"], e["target"], e["kind"], e.get("label"), e["points"]) for e in sent["edges"]
        ] == [(e["source"], e["target"], e["kind"], e["label"], e["points"]) for e in expected["edges"]]
    labels = [n["label"] for n in widget.layouts["autograd"]["nodes"]]
    assert "MulBackward0" in labels


def test_collapsing_a_module_recomputes_both_layouts() -> None:
    trace = synthetic.mlp(30)
    widget = GraphWidget(trace, collapsed=[])
    assert not [n for n in widget.layouts["forward"]["nodes"] if n["kind"] == "group"]

    widget.collapsed = ["model.0"]
    for view in ("forward", "autograd"):
        nodes = widget.layouts[view]["nodes"]
        assert [n["id"] for n in nodes] == [n["id"] for n in layout(trace, view, ["model.0"])["nodes"]]
        groups = [n for n in nodes if n["kind"] == "group"]
        assert [n["ref"] for n in groups] == ["model.0"]
        assert not [n for n in nodes if n.get("group") == "model.0"]  # its members are inside the box

    widget.collapsed = []
    assert [n["id"] for n in widget.layouts["forward"]["nodes"]] == [
        n["id"] for n in layout(trace, "forward", [])["nodes"]
    ]


def test_big_graphs_start_collapsed_and_say_so() -> None:
    widget = GraphWidget(synthetic.mlp(400))
    assert widget.collapsed is None  # the layout chose
    forward = widget.layouts["forward"]
    assert any(n["kind"] == "group" for n in forward["nodes"])
    assert "collapsed" in forward["note"]


@pytest.mark.parametrize("shape", ["chain", "tree", "diamonds", "mlp"])
def test_synced_state_stays_under_1kb_per_node_at_2000_nodes(shape: str) -> None:
    trace = synthetic.SHAPES[shape](2000)
    nodes = synthetic.forward_node_count(trace)
    assert nodes >= 1990
    widget = GraphWidget(trace)
    state = json.dumps(widget.get_state(), allow_nan=False)  # what the kernel sends, JS and CSS included
    assert len(state.encode()) / nodes < 1024
    if shape != "mlp":  # nothing collapsed: every node is really drawn
        assert len(widget.layouts["forward"]["nodes"]) >= 1990


def test_values_keep_the_digits_torch_prints_and_non_finite_ones_survive_json(ipython) -> None:
    trace, ns = traced(
        ipython, "w = torch.tensor([12.3456789, 0.000123456, -2.5, float('nan'), float('inf')])\n"
    )
    sent = GraphWidget(trace).trace["tensors"][0]["value"]["values"]
    printed = str(ns["w"][:3]).removeprefix("tensor([").removesuffix("])").split(", ")
    assert [f"{v:.4e}" for v in sent[:3]] == [f"{float(p):.4e}" for p in printed]
    assert sent[3:] == ["nan", "inf"]
    json.dumps(GraphWidget(trace).get_state(), allow_nan=False)


def test_every_backward_pass_is_sent_and_validated(ipython) -> None:
    trace, ns = traced(
        ipython,
        "x = torch.tensor([1.0, 2.0], requires_grad=True)\n"
        "loss = (x * x).sum()\n"
        "loss.backward(retain_graph=True)\n"
        "loss.backward()\n",
    )
    widget = GraphWidget(trace)
    x = by_name(widget)["x"]
    passes = widget.trace["backward"]
    assert len(passes) == 2
    flowed = torch.autograd.grad((ns["x"] * ns["x"]).sum(), ns["x"])[0].tolist()
    assert [p["grads"][x["id"]]["values"] for p in passes] == [flowed, flowed]
    assert x["grad"]["values"] == ns["x"].grad.tolist()  # accumulated over both passes
    assert widget.pass_index == 1  # the last pass: the one that left .grad as it is
    widget.pass_index = 0
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


def test_layout_fields_sent_are_ones_graph_js_reads(ipython) -> None:
    """NOTE [what the browser gets]: no field of a layout goes to the browser unless graph.js reads
    it; the static SVG's texts (stored_label, grad_label) stay in Python."""
    trace, _ = traced(ipython, SEED_CELL)
    widget = GraphWidget(trace)
    full = layout(trace)
    assert any("stored_label" in n for n in full["nodes"])  # x.grad: the layout has one...
    sent = widget.layouts["forward"]
    assert not [n for n in sent["nodes"] if "stored_label" in n or "grad_label" in n]  # ...not sent
    js = re.sub(r"/\*.*?\*/|//[^\n]*", "", GRAPH_JS.read_text(encoding="utf-8"), flags=re.S)
    for view in ("forward", "autograd"):
        lay = widget.layouts[view]
        keys = set(lay) | {k for part in ("nodes", "edges", "groups") for item in lay[part] for k in item}
        unread = sorted(k for k in keys if not re.search(rf"\b{re.escape(k)}\b", js))
        assert unread == [], view


def test_the_inplace_op_that_broke_backward_reaches_the_browser_marked(ipython) -> None:
    trace = inplace_broke_backward(ipython)
    widget = GraphWidget(trace)
    assert widget.trace["error"]["modified_by"] == trace["error"]["modified_by"]
    (marked,) = [n for n in widget.layouts["forward"]["nodes"] if "modified" in n.get("classes", [])]
    assert marked["id"] == trace["error"]["modified_by"]
    assert marked["warning"] == "modified a tensor backward needed"
    ops = {op["id"]: op for op in widget.trace["ops"]}
    assert (ops[marked["id"]]["name"], ops[marked["id"]]["line"]) == ("mul_", 3)  # what the banner says
