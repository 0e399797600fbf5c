"""The layout the widget and the static SVG both draw: order, geometry, grouping, caps."""

from __future__ import annotations

import copy
import gc
import json
import math

import pytest
import torch
from torch import nn

import torchlesson
from _synthetic import SHAPES, TraceBuilder, diamonds, failing_matmul, forward_node_count, mlp, seed, summary
from torchlesson.picture.labels import op_label, short_name, tensor_label
from torchlesson.picture.layout import layout


def by_label(lay: dict, kind: str | None = None) -> dict[str, dict]:
    return {n["label"]: n for n in lay["nodes"] if kind is None or n["kind"] == kind}


def overlapping_boxes(boxes: list[tuple[float, float, float, float, str]]) -> list[tuple[str, str]]:
    """Pairs of (left, top, right, bottom, name) boxes that overlap by more than half a pixel."""
    found, active = [], []
    for box in sorted(boxes):
        active = [b for b in active if b[2] > box[0] + 0.5]
        found += [(b[4], box[4]) for b in active if b[1] < box[3] - 0.5 and box[1] < b[3] - 0.5]
        active.append(box)
    return found


def node_boxes(lay: dict) -> list[tuple[float, float, float, float, str]]:
    return [
        (n["x"] - n["w"] / 2, n["y"] - n["h"] / 2, n["x"] + n["w"] / 2, n["y"] + n["h"] / 2, n["id"])
        for n in lay["nodes"]
    ]


def check_geometry(lay: dict) -> None:
    """No two nodes overlap; every edge runs from the bottom of a higher rank to a lower one."""
    assert overlapping_boxes(node_boxes(lay)) == []
    nodes = {n["id"]: n for n in lay["nodes"]}
    for e in lay["edges"]:
        source, target = nodes[e["source"]], nodes[e["target"]]
        assert source["rank"] < target["rank"], e
        (x0, y0), (x1, y1) = e["points"][0], e["points"][-1]
        assert y0 == pytest.approx(source["y"] + source["h"] / 2, abs=0.1)
        assert y1 == pytest.approx(target["y"] - target["h"] / 2, abs=0.1)
        assert abs(x0 - source["x"]) <= source["w"] / 2
        assert abs(x1 - target["x"]) <= target["w"] / 2
        ys = [y for _, y in e["points"]]
        assert ys == sorted(ys), e
    for n in lay["nodes"]:
        assert n["w"] / 2 <= n["x"] <= lay["width"] - n["w"] / 2
        assert n["h"] / 2 <= n["y"] <= lay["height"] - n["h"] / 2


def fits(w: float) -> int:
    """Characters of the 10.5px font that graph.js writes in a box `w` px wide (its `fits`)."""
    return math.floor((w - 15) / 6.3 + 0.05)


def chain_from_top(lay: dict) -> list[str]:
    """Labels along a graph that is a single path, from its source."""
    nodes = {n["id"]: n for n in lay["nodes"]}
    nxt = {e["source"]: e["target"] for e in lay["edges"]}
    (start,) = set(nodes) - {e["target"] for e in lay["edges"]}
    labels = [nodes[start]["label"]]
    while start in nxt:
        start = nxt[start]
        labels.append(nodes[start]["label"])
    return labels


def test_seed_cell_reads_top_down_with_op_labels_as_written() -> None:
    lay = layout(seed())
    assert chain_from_top(lay) == ["x", "× 2", "y", "+ 3", "z", "sum", "loss"]
    tensors = by_label(lay, "tensor")
    assert tensors["x"]["y"] < tensors["y"]["y"] < tensors["z"]["y"] < tensors["loss"]["y"]
    assert tensors["y"]["sublabel"] == "[3] float32"
    assert tensors["loss"]["sublabel"] == "scalar float32"
    assert tensors["y"]["grad_label"] == "∂loss/∂y = [1., 1., 1.]"
    assert "leaf" in tensors["x"]["classes"]
    assert "leaf" not in tensors["y"]["classes"]
    check_geometry(lay)


def test_autograd_view_runs_from_the_loss_to_the_leaf_grad() -> None:
    lay = layout(seed(), view="autograd")
    labels = ["SumBackward0", "AddBackward0", "MulBackward0", "AccumulateGrad", "x.grad"]
    assert chain_from_top(lay) == labels
    assert {n["kind"] for n in lay["nodes"]} == {"grad_fn", "grad"}
    assert {e["kind"] for e in lay["edges"]} == {"grad"}
    check_geometry(lay)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("view", ["forward", "autograd"])
def test_same_trace_gives_the_same_picture(shape: str, view: str) -> None:
    trace = SHAPES[shape](300)
    first = layout(trace, view)
    again = layout(copy.deepcopy(trace), view)
    assert json.dumps(first) == json.dumps(again)
    assert json.loads(json.dumps(first)) == first  # plain JSON-safe data


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("view", ["forward", "autograd"])
def test_nodes_never_overlap_and_edges_point_down(shape: str, view: str) -> None:
    lay = layout(SHAPES[shape](400), view, collapsed=[])
    assert len(lay["nodes"]) > 100
    check_geometry(lay)


def test_every_tensor_and_every_op_with_tensor_inputs_is_drawn() -> None:
    trace = mlp(60)
    lay = layout(trace, collapsed=[])
    assert len(lay["nodes"]) == forward_node_count(trace)
    assert {n["ref"] for n in lay["nodes"] if n["kind"] == "tensor"} == {t["id"] for t in trace["tensors"]}
    assert not any(n["ref"] == op["id"] for n in lay["nodes"] for op in trace["ops"] if op["name"] == "rand")


def test_modules_become_nested_boxes_around_their_nodes() -> None:
    lay = layout(mlp(30), collapsed=[])
    groups = {g["id"]: g for g in lay["groups"]}
    assert groups["model.0"]["label"] == "model.0 · Linear"
    assert groups["model"]["depth"] == 0
    assert groups["model.0"]["depth"] == 1
    assert groups["model.0"]["count"] == 4  # weight, bias, linear, its output
    assert groups["model"]["count"] == sum(g["count"] for k, g in groups.items() if k.startswith("model."))
    for n in lay["nodes"]:
        if n["group"]:
            box = groups[n["group"]]
            assert box["x"] <= n["x"] - n["w"] / 2
            assert n["x"] + n["w"] / 2 <= box["x"] + box["w"]
            assert box["y"] <= n["y"] - n["h"] / 2
            assert n["y"] + n["h"] / 2 <= box["y"] + box["h"]
    inner, outer = groups["model.2"], groups["model"]
    assert outer["x"] < inner["x"]
    assert inner["x"] + inner["w"] < outer["x"] + outer["w"]
    assert outer["y"] < inner["y"]
    assert inner["y"] + inner["h"] < outer["y"] + outer["h"]


def test_collapsed_module_is_one_node_with_its_edges_rerouted() -> None:
    trace = mlp(30)
    full = layout(trace, collapsed=[])
    lay = layout(trace, collapsed=["model.2"])
    group_nodes = [n for n in lay["nodes"] if n["kind"] == "group"]
    assert [(n["id"], n["ref"]) for n in group_nodes] == [("group:model.2", "model.2")]
    assert len(lay["nodes"]) == len(full["nodes"]) - 4 + 1
    assert not [n for n in lay["nodes"] if n["group"] == "model.2"]
    (box,) = [g for g in lay["groups"] if g["id"] == "model.2"]
    assert box["collapsed"]
    assert box["count"] == 4
    into = [e["source"] for e in lay["edges"] if e["target"] == "group:model.2"]
    out = [e["target"] for e in lay["edges"] if e["source"] == "group:model.2"]
    nodes = {n["id"]: n for n in lay["nodes"]}
    assert [nodes[s]["group"] for s in into] == ["model.1"]  # the ReLU's output goes in
    assert [nodes[t]["label"] for t in out] == ["relu"]  # and the next ReLU takes what comes out
    check_geometry(lay)


def test_collapsing_a_parent_hides_its_children() -> None:
    lay = layout(mlp(30), collapsed=["model", "model.2"])
    assert [n["ref"] for n in lay["nodes"] if n["kind"] == "group"] == ["model"]
    assert [(g["id"], g["collapsed"]) for g in lay["groups"]] == [("model", True)]


def test_big_graphs_collapse_modules_unless_told_not_to() -> None:
    trace = mlp(600)
    auto = layout(trace)
    assert len(auto["nodes"]) <= 150
    assert any(n["kind"] == "group" for n in auto["nodes"])
    assert "collapsed" in auto["note"]
    expanded = layout(trace, collapsed=[])
    assert len(expanded["nodes"]) == forward_node_count(trace)
    assert expanded["note"] is None
    small = layout(mlp(60))
    assert not any(n["kind"] == "group" for n in small["nodes"])


def test_max_nodes_caps_the_drawing_and_says_so() -> None:
    trace = diamonds(600)
    total = forward_node_count(trace)
    lay = layout(trace, max_nodes=100)
    assert len(lay["nodes"]) == 100
    assert lay["omitted"] == total - 100
    assert f"100 of {total}" in lay["note"]
    drawn = {n["id"] for n in lay["nodes"]}
    assert all(e["source"] in drawn and e["target"] in drawn for e in lay["edges"])
    assert "x" in by_label(lay)  # the first things the cell made are the ones kept
    check_geometry(lay)


@pytest.mark.parametrize("shape", ["mlp", "diamonds", "tree"])
def test_five_thousand_nodes_lay_out(shape: str) -> None:
    trace = SHAPES[shape](5000)
    lay = layout(trace, max_nodes=10_000, collapsed=[])
    assert len(lay["nodes"]) == forward_node_count(trace) >= 4990
    assert lay["omitted"] == 0
    check_geometry(lay)


def test_cuts_are_labelled_edges_and_inplace_ops_make_new_versions() -> None:
    b = TraceBuilder()
    x = b.leaf("x", [3])
    y = b.op("mul", [x, 2], "y")
    d = b.op("detach", [y], "d")
    b.cuts.append({"tensor": d, "source": y, "reason": "detach", "line": 3, "op": b.ops[-1]["id"]})
    b.inplace("add_", d, 1)
    z = b.op("mul", [d, y], "z")
    lay = layout(b.to_dict())
    (cut,) = [e for e in lay["edges"] if e["kind"] == "cut"]
    nodes = {n["id"]: n for n in lay["nodes"]}
    assert (nodes[cut["source"]]["label"], nodes[cut["target"]]["label"], cut["label"]) == (
        "detach",
        "d",
        "detach",
    )
    versions = [n for n in lay["nodes"] if n["ref"] == d]
    assert [n["label"] for n in versions] == ["d", "d"]
    assert "v1" in versions[1]["sublabel"]
    assert "version" in versions[1]["classes"]
    assert "+= 1" in by_label(lay, "op")
    mul = next(n for n in lay["nodes"] if n["ref"] == b.ops[-1]["id"])
    sources = {e["source"] for e in lay["edges"] if e["target"] == mul["id"]}
    assert versions[1]["id"] in sources
    assert versions[0]["id"] not in sources
    assert any(n["ref"] == z for n in lay["nodes"])
    check_geometry(lay)


def test_failing_op_is_drawn_in_red_with_its_input_shapes() -> None:
    b, a, c = failing_matmul()
    lay = layout(b.to_dict())
    (error,) = [n for n in lay["nodes"] if "error" in n["classes"]]
    assert (error["label"], error["sublabel"]) == ("matmul", "[2, 3], [4, 5]")
    assert {e["source"] for e in lay["edges"] if e["target"] == error["id"]} == {a, c}
    assert error["h"] == 24  # one row: the shapes are written under it
    b.error["inputs"] = [{"shape": [2, 3]}]  # no tensor ids: the error still shows, at the bottom
    b.error["op_name"] = "backward"
    lay = layout(b.to_dict())
    (error,) = [n for n in lay["nodes"] if "error" in n["classes"]]
    assert error["rank"] == max(n["rank"] for n in lay["nodes"])
    assert math.floor((error["w"] - 15) / 7.3 + 0.05) >= len("✕ backward")  # graph.js adds a cross


def test_a_stored_grad_gets_a_row_of_its_own_below_the_gradient_that_flowed_in() -> None:
    """NOTE [gradient rows]: x shows ∂loss/∂x (flowed, not kept) and x.grad (stored), both inside."""
    tensors = by_label(layout(seed()), "tensor")
    assert tensors["x"]["grad_label"] == "∂loss/∂x = [2., 2., 2.]"
    assert tensors["x"]["stored_label"] == "x.grad = [2., 2., 2.]"
    assert tensors["x"]["h"] == 68  # name, facts, two gradient rows
    assert tensors["y"]["h"] == 54  # a non-leaf stores no .grad: one row
    assert "stored_label" not in tensors["y"]
    assert tensors["x"]["y"] < tensors["y"]["y"]


def test_a_stored_grad_without_a_backward_pass_still_has_its_row() -> None:
    """`optimizer.step()` alone: the parameters' .grad are stored, nothing flowed in this cell; the
    row goes on the parameter, not on the version `add_` makes of it."""
    b = TraceBuilder()
    w = b.leaf("model.0.bias", [1], module="model.0", grad={**summary([1], -3.391), "norm": 3.391})
    b.inplace("add_", w, -0.05)
    lay = layout(b.to_dict())
    first, version = (n for n in lay["nodes"] if n["ref"] == w)
    assert (first["label"], first["grad_label"], first["stored_label"]) == (
        "bias",
        None,
        "bias.grad = [-3.3910]",  # as torch prints it, in the box and the widget alike
    )
    assert first["h"] == 54
    # wide enough for what graph.js writes: the value as torch prints it, or else the norm
    assert fits(first["w"]) >= len("bias.grad = [-3.3910]")
    assert "version" in version["classes"]
    assert version["h"] == 38
    assert fits(version["w"]) >= len(version["sublabel"]) == len("[1] float32 · v1")  # not cut short
    assert "stored_label" not in version
    check_geometry(lay)


def test_ops_with_more_arguments_get_a_second_row_for_them() -> None:
    b = TraceBuilder()
    x = b.leaf("x", [3])
    h = b.op("leaky_relu", [x, 0.2], "h")
    b.op("mul", [h, 2], "y")
    ops = by_label(layout(b.to_dict()), "op")
    assert (ops["leaky_relu"]["sublabel"], ops["leaky_relu"]["h"]) == ("(0.2)", 36)
    assert fits(ops["leaky_relu"]["w"]) >= len("(0.2)")
    assert (ops["× 2"]["sublabel"], ops["× 2"]["h"]) == (None, 24)


def test_unnamed_tensors_are_named_by_their_line() -> None:
    b = TraceBuilder()
    x = b.leaf("x", [2])
    b.op("exp", [x], None)
    labels = [n["label"] for n in layout(b.to_dict())["nodes"] if n["kind"] == "tensor"]
    assert labels == ["x", "tensor@line 2"]


def test_unnamed_tensors_a_module_made_are_named_after_it() -> None:
    """``model.0 output`` in the table, ``output`` inside model.0's box; other tensors the module
    made and kept to itself are named by the operation that made them."""
    tensors = [
        {
            "id": "t0",
            "name": None,
            "module": "model.0",
            "made_by": "linear",
            "output_of": "model.0",
            "line": 2,
        },
        {"id": "t1", "name": None, "module": "attn", "made_by": "softmax", "output_of": None, "line": 3},
        {"id": "t2", "name": "h", "module": "model.1", "made_by": "relu", "output_of": "model.1", "line": 2},
    ]
    assert [tensor_label(t) for t in tensors] == ["model.0 output", "softmax in attn", "h"]
    assert [short_name(t) for t in tensors] == ["output", "softmax result", "h"]
    # drawn in another module's box (a version an in-place op made there): the full label
    assert short_name(tensors[0], "model.1") == "model.0 output"
    assert short_name(tensors[1], "model.1") == "softmax in attn"


@pytest.mark.parametrize(
    ("op", "label"),
    [
        ({"name": "mul", "inputs": [{"tensor": "t0"}, {"value": "2"}]}, "× 2"),
        ({"name": "__rsub__", "inputs": [{"tensor": "t0"}, {"value": "1"}]}, "1 −"),
        ({"name": "aten.add.Tensor", "inputs": [{"tensor": "t0"}, {"tensor": "t1"}]}, "+"),
        ({"name": "matmul", "inputs": [{"tensor": "t0"}, {"tensor": "t1"}]}, "@"),
        ({"name": "add_", "inplace": True, "inputs": [{"tensor": "t0"}, {"value": "1"}]}, "+= 1"),
        ({"name": "Tensor.relu_", "inplace": True, "inputs": [{"tensor": "t0"}]}, "relu_"),
        ({"name": "neg", "inputs": [{"tensor": "t0"}]}, "−"),
        ({"name": "sum", "inputs": [{"tensor": "t0"}, {"value": "1", "arg": "dim"}]}, "sum"),
    ],
)
def test_op_labels_read_like_the_code(op: dict, label: str) -> None:
    assert op_label(op)[0] == label


def test_bad_arguments_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="view"):
        layout(seed(), view="backward")
    with pytest.raises(ValueError, match="max_nodes"):
        layout(seed(), max_nodes=0)
    with pytest.raises(ValueError, match="schema"):
        layout({**seed(), "schema": "torchlesson.trace/99"})


# ---------------------------------------------------------------------------------------------
# Real traces from the engine


def test_real_seed_trace_lays_out_like_the_lesson_says() -> None:
    with torchlesson.trace() as t:
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        z = y + 3
        loss = z.sum()
        loss.backward()
    trace = t.to_dict()
    forward = layout(trace)
    assert chain_from_top(forward) == ["x", "× 2", "y", "+ 3", "z", "sum", "loss"]
    grads = {n["label"]: n["grad_label"] for n in forward["nodes"] if n["kind"] == "tensor"}
    assert grads["x"] == "∂loss/∂x = [2., 2., 2.]"
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    autograd = layout(trace, "autograd")
    assert chain_from_top(autograd) == [
        "SumBackward0",
        "AddBackward0",
        "MulBackward0",
        "AccumulateGrad",
        "x.grad",
    ]
    check_geometry(forward)
    check_geometry(autograd)


@pytest.mark.parametrize("view", ["forward", "autograd"])
def test_real_mlp_module_boxes_do_not_overlap(view: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    with torchlesson.trace() as t:
        inputs = torch.randn(5, 4)
        loss = (model(inputs) - 1).pow(2).mean()
        loss.backward()
    lay = layout(t.to_dict(), view)
    groups = {g["id"]: g for g in lay["groups"]}
    assert {"model.0", "model.1", "model.2", "model.3", "model.4"} <= set(groups)
    siblings = [
        (g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"], g["id"]) for g in lay["groups"] if g["depth"] == 1
    ]
    assert overlapping_boxes(siblings) == []
    for n in lay["nodes"]:  # and nothing outside a module sits in its box
        for g in groups.values():
            inside = g["x"] < n["x"] < g["x"] + g["w"] and g["y"] < n["y"] < g["y"] + g["h"]
            member = (n["group"] or "") == g["id"] or (n["group"] or "").startswith(g["id"] + ".")
            assert inside == member, (n["label"], g["id"])
    check_geometry(lay)


def drawn_boxes(lay: dict, trace: dict) -> list[tuple[float, float, float, float, str]]:
    """Each node's box grown by what graph.js draws outside it: a gradient row the box has no room
    for becomes a 14 px tab above it (NOTE [gradient rows])."""
    tensors = {t["id"]: t for t in trace["tensors"]}
    grads = (trace["backward"] or [{}])[-1].get("grads") or {}
    out = []
    for left, top, right, bottom, node_id in node_boxes(lay):
        n = next(n for n in lay["nodes"] if n["id"] == node_id)
        tabs = 0
        if n["kind"] == "tensor" and "version" not in n["classes"]:
            rows = (n["ref"] in grads) + bool(tensors[n["ref"]].get("grad"))
            tabs = max(0, rows - int(n["h"] - 38) // 14)
        out.append((left, top - 14 * tabs, right, bottom, node_id))
    return out


def traced_training_step(activation: nn.Module, step: bool = True) -> dict:
    """The trace of one step of examples/training_step.ipynb's model learning x**2."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 8), activation, nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    inputs = torch.linspace(-2, 2, 16).unsqueeze(1)
    with torchlesson.trace() as t:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(inputs), inputs**2)
        loss.backward()
        if step:
            optimizer.step()
    return t.to_dict()


def test_training_step_draws_nothing_over_a_module_title() -> None:
    """Parameters show the gradient that reached them and their .grad inside their box, so neither
    covers the title of the module box they sit in."""
    trace = traced_training_step(nn.Tanh(), step=False)
    lay = layout(trace)
    params = [n for n in lay["nodes"] if "parameter" in n["classes"]]
    assert sorted(n["stored_label"].partition(" = ")[0] for n in params) == [
        "bias.grad",
        "bias.grad",
        "weight.grad",
        "weight.grad",
    ]
    assert all(n["h"] == 68 for n in params)
    # a module box's title bar is 19 px tall in graph.js
    titles = [(g["x"], g["y"], g["x"] + g["w"], g["y"] + 19, g["id"]) for g in lay["groups"]]
    drawn = drawn_boxes(lay, trace)
    for box in drawn:
        assert overlapping_boxes([box, *titles]) == [], box
    assert overlapping_boxes(drawn) == []
    check_geometry(lay)


def test_the_garbage_collector_is_left_as_it_was() -> None:
    """The layout pauses Python's cyclic collector while it runs (NOTE [collector])."""
    assert gc.isenabled()
    layout(seed())
    assert gc.isenabled()
    with pytest.raises(KeyError):
        layout({"ops": [{"inputs": [{"tensor": "t0"}]}]})  # an op without an id
    assert gc.isenabled()
    gc.disable()
    try:
        layout(seed())
        assert not gc.isenabled()
    finally:
        gc.enable()


def module_box_problems(lay: dict) -> list[tuple[str, str]]:
    """Module boxes that overlap (but for a box and the boxes inside it), and nodes inside the
    box of a module they are not in, or outside the box of their own."""
    groups = [g for g in lay["groups"] if not g["collapsed"]]
    boxes = [(g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"], g["id"]) for g in groups]
    problems = [
        (a, b) for a, b in overlapping_boxes(boxes) if not (a.startswith(b + ".") or b.startswith(a + "."))
    ]
    for n in lay["nodes"]:
        for g in groups:
            inside = g["x"] < n["x"] < g["x"] + g["w"] and g["y"] < n["y"] < g["y"] + g["h"]
            member = (n["group"] or "") == g["id"] or (n["group"] or "").startswith(g["id"] + ".")
            if inside != member:
                problems.append((n["id"], g["id"]))
    return problems


@pytest.mark.parametrize("activation", ["tanh", "relu(inplace=True)"])
@pytest.mark.parametrize("view", ["forward", "autograd"])
def test_optimizer_step_in_the_cell_keeps_module_boxes_apart_and_its_updates_outside(
    view: str, activation: str
) -> None:
    """The training step with `optimizer.step()` in the traced cell (examples/training_step.ipynb):
    the updates ran outside any module, so neither they nor the versions of the parameters they
    made are drawn in a module's box, and the boxes do not overlap."""
    lay = layout(traced_training_step(nn.Tanh() if activation == "tanh" else nn.ReLU(inplace=True)), view)
    # (an in-place ReLU makes no tensor: its ReluBackward0 is drawn as the Linear's output's)
    assert {"model", "model.0", "model.2"} <= {g["id"] for g in lay["groups"]}
    assert module_box_problems(lay) == []
    check_geometry(lay)
    if view == "autograd":
        return
    updates = [n for n in lay["nodes"] if "inplace" in n["classes"] and n["group"] is None]
    assert len(updates) == 4  # weight and bias of both Linear layers
    nodes = {n["id"]: n for n in lay["nodes"]}
    for update in updates:
        (param,) = [nodes[e["source"]] for e in lay["edges"] if e["target"] == update["id"]
                    and "parameter" in nodes[e["source"]]["classes"]]  # fmt: skip
        (after,) = [nodes[e["target"]] for e in lay["edges"] if e["source"] == update["id"]]
        assert after["group"] is None  # the updated parameter is outside its module's box too
        assert after["label"] == f"{param['group']}.{param['label']}"  # so it has its full name
        # NOTE [write after read]: drawn below the linear that read the parameter before the update
        (linear,) = [nodes[e["target"]] for e in lay["edges"] if e["source"] == param["id"]
                     and e["target"] != update["id"]]  # fmt: skip
        assert linear["rank"] < update["rank"]


PITFALL_INPLACE = """\
x = torch.ones(3, requires_grad=True)
y = x.sigmoid()  # sigmoid saves y: its derivative is y * (1 - y)
y.mul_(2)  # ...and this line changes y in place
y.sum().backward()
"""


def inplace_broke_backward(ipython) -> dict:
    """Pitfall 4 of examples/gradient_pitfalls.ipynb, traced by the magic as a lesson cell is."""
    ipython.run("import torch")
    run = ipython.run("%%autograd_trace -o _trace\n" + PITFALL_INPLACE)
    assert isinstance(run.error, RuntimeError)
    assert "modified by an inplace operation" in str(run.error)
    return ipython.shell.user_ns["_trace"].to_dict()


def test_the_inplace_op_that_broke_backward_is_marked_with_a_warning_that_fits(ipython) -> None:
    trace = inplace_broke_backward(ipython)
    culprit = next(op for op in trace["ops"] if op["id"] == trace["error"]["modified_by"])
    assert culprit["name"] == "mul_"
    lay = layout(trace)
    (marked,) = [n for n in lay["nodes"] if "modified" in n["classes"]]
    assert (marked["ref"], marked["label"]) == (culprit["id"], "×= 2")
    assert marked["warning"] == "modified a tensor backward needed"
    assert fits(marked["w"]) >= len(marked["warning"])  # written whole, in its own row
    assert marked["h"] == 36
    assert not [n for n in lay["nodes"] if n.get("warning") and n is not marked]
    check_geometry(lay)
    # inside a collapsed module, the module's box is marked instead
    b = TraceBuilder()
    w = b.leaf("w", [2])
    h = b.op("sigmoid", [w], "h", module="net")
    b.inplace("mul_", h, 2)
    b.ops[-1]["module"] = "net"
    b.error = {"type": "RuntimeError", "message": "modified", "line": 4, "op": None, "op_name": "backward",
               "inputs": [], "modified_by": b.ops[-1]["id"]}  # fmt: skip
    (group,) = [n for n in layout(b.to_dict(), collapsed=["net"])["nodes"] if n["kind"] == "group"]
    assert "modified" in group["classes"]


def test_each_version_of_an_inplace_rewritten_tensor_shows_its_own_gradient() -> None:
    """y = x * 2; y.mul_(3): the first box of y received 3, the box mul_ made received 1; only the
    first box of a tensor shows its stored .grad (NOTE [gradients of in-place versions])."""
    with torchlesson.trace() as t:
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        y.mul_(3)
        y.sum().backward()
    boxes = {n["id"]: n for n in layout(t.to_dict())["nodes"] if n["kind"] == "tensor"}
    y_id = t.tensor("y")["id"]
    assert boxes[y_id]["grad_label"].endswith("= [3., 3., 3.]")
    assert boxes[f"{y_id}@v1"]["grad_label"].endswith("= [1., 1., 1.]")
    assert boxes[f"{y_id}@v1"].get("stored_label") is None
    # a version made with grad off (an optimizer's update) has no node, so no gradient row
    model = nn.Linear(2, 1)
    with torchlesson.trace() as t:
        model(torch.ones(1, 2)).sum().backward()
        with torch.no_grad():
            model.weight -= 0.1 * model.weight.grad
    boxes = {n["id"]: n for n in layout(t.to_dict())["nodes"] if n["kind"] == "tensor"}
    weight = t.tensor("model.weight")["id"]
    update = next(n for i, n in boxes.items() if i.startswith(weight + "@"))
    assert update.get("grad_node") is None and update.get("grad_label") is None
    assert boxes[weight]["grad_label"] and boxes[weight]["stored_label"]


def test_a_tensor_rewritten_twice_shows_no_gradient_where_no_node_received_one() -> None:
    """y = zeros(2) has no node; y.add_(x) and y.mul_(3) each give it one: only those boxes carry a
    gradient, and a box inside a module names its tensor as the box does."""
    with torchlesson.trace() as t:
        x = torch.ones(2, requires_grad=True)
        y = torch.zeros(2)
        y.add_(x)
        y.mul_(3)
        loss = y.sum()
        loss.backward()
    y_id = t.tensor("y")["id"]
    boxes = [n for n in layout(t.to_dict())["nodes"] if n["kind"] == "tensor" and n["ref"] == y_id]
    assert [b.get("grad_label") for b in boxes] == [None, "∂loss/∂y = [3., 3.]", "∂loss/∂y = [1., 1.]"]

    class Triple(nn.Module):
        def forward(self, h):
            return h.mul_(3)

    model = nn.Sequential(nn.Linear(2, 2), Triple())
    with torchlesson.trace() as t:
        loss = model(torch.ones(1, 2)).sum()
        loss.backward()
    rows = [n for n in layout(t.to_dict())["nodes"] if n["kind"] == "tensor" and n.get("grad_label")]
    version = next(n for n in rows if "version" in n["classes"])
    assert version["grad_label"].startswith(f"∂loss/∂{version['label']} = ")
