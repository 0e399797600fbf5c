"""NOTE [folding loops]: a loop's iterations are drawn once, as one block that says × N.

Real cells run through both entry points (the magic and ``torchlesson.trace()``); torch is the
oracle for the gradients the folded boxes show.
"""

from __future__ import annotations

import json

import pytest
import torch

import torchlesson
from test_layout import chain_from_top, check_geometry
from test_static import pictures
from torchlesson.picture.fold import find_folds
from torchlesson.picture.layout import layout
from torchlesson.picture.picture import Picture

CHAIN = """\
x = torch.ones(3, requires_grad=True)
g = x
for _ in range(2000):
    g = g * 1.0001
g.sum().backward()
"""

SETUP = """\
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
inputs, targets = torch.randn(16, 4), torch.randint(0, 2, (16,))
"""

TRAINING = """\
for step in range(100):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step()
"""


def magic(ipython, code: str, setup: str = "") -> dict:
    ipython.run("import torch\n" + setup)
    run = ipython.run("%%autograd_trace -o t\n" + code)
    assert run.error is None, run.error
    return ipython.user_ns["t"].to_dict()


def api_chain() -> dict:
    """CHAIN, written in a `with torchlesson.trace()` block."""
    with torchlesson.trace() as t:
        x = torch.ones(3, requires_grad=True)
        g = x
        for _ in range(2000):
            g = g * 1.0001
        g.sum().backward()
    return t.to_dict()


def api_training() -> dict:
    """SETUP and TRAINING, written in a `with torchlesson.trace()` block."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs, targets = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with torchlesson.trace() as t:
        for step in range(100):  # noqa: B007 - the loop the picture names
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
    return t.to_dict()


def api_small() -> dict:
    with torchlesson.trace() as t:
        x = torch.ones(2, requires_grad=True)
        for _ in range(3):
            x = x * 2
        x.sum().backward()
    return t.to_dict()


SMALL = "x = torch.ones(2, requires_grad=True)\nfor _ in range(3):\n    x = x * 2\nx.sum().backward()\n"
CELLS = {
    "chain": (CHAIN, "", api_chain),
    "training": (TRAINING, SETUP, api_training),
    "small": (SMALL, "", api_small),
}


@pytest.fixture(params=["magic", "api"])
def traced(request, ipython):
    """traced(name): the trace of one of CELLS, through the magic or through the Python API."""

    def run(name: str) -> dict:
        code, setup, python = CELLS[name]
        return magic(ipython, code, setup) if request.param == "magic" else python()

    return run


def labels(lay: dict) -> list[str]:
    return [n["label"] for n in lay["nodes"]]


def test_a_2000_iteration_chain_reads_as_a_handful_of_boxes(traced) -> None:
    trace = traced("chain")
    forward = layout(trace)
    assert chain_from_top(forward)[:4] == ["x", "× 1.0001", "g", "sum"]
    assert len(forward["nodes"]) == 5
    (fold,) = [g for g in forward["groups"] if g["fold"]]
    assert fold["label"] == "× 2000 · for _ in range(2000):"
    boxed = {n["label"] for n in forward["nodes"] if n["group"] == fold["id"]}
    assert boxed == {"× 1.0001", "g"}  # one iteration, the last: its tensor is the variable g
    check_geometry(forward)
    autograd = layout(trace, "autograd")
    assert chain_from_top(autograd) == ["SumBackward0", "MulBackward0", "AccumulateGrad", "x.grad"]
    check_geometry(autograd)
    assert "2000 iterations" in forward["note"]


def test_the_drawn_iteration_shows_its_own_gradient_and_the_others_are_a_click_away(traced) -> None:
    trace = traced("chain")
    state = Picture(trace).state()
    g = next(t["id"] for t in trace["tensors"] if t["label"] == "g")  # the last g; earlier ones are "g (n)"
    # torch as the oracle: the last g receives ones; the first product receives 1.0001 ** 1999
    rows = {r["key"]: r for r in state["details"][g]["rows"]}
    assert rows["gradient in"]["text"] == "[1., 1., 1.]"
    picks = [seg for seg in rows["iterations"]["text"] if isinstance(seg, dict)]
    assert [p["text"] for p in picks] == ["1", "2", "3", "1999", "2000"]
    first = state["details"][picks[0]["ref"]]
    expected = f"{1.0001**1999:.4f}"
    gradient = {r["key"]: r for r in first["rows"]}["gradient in"]["text"]
    assert gradient == f"[{expected}, {expected}, {expected}]"


def test_a_training_loop_folds_to_one_step(traced) -> None:
    trace = traced("training")
    forward, autograd = layout(trace), layout(trace, "autograd")
    (fold,) = [g for g in forward["groups"] if g["fold"]]
    assert fold["label"] == "× 100 · for step in range(100):"
    assert len(forward["nodes"]) < 60 and len(autograd["nodes"]) < 40
    assert forward["omitted"] == 0
    check_geometry(forward)
    check_geometry(autograd)
    assert "Edges that would close a cycle" not in (autograd["note"] or "")


def test_small_loops_are_drawn_whole(traced) -> None:
    trace = traced("small")
    lay = layout(trace)
    assert not [g for g in lay["groups"] if g["fold"]]
    assert labels(lay).count("× 2") == 3


def test_unfolding_draws_the_first_and_last_iterations_and_folds_the_middle(ipython) -> None:
    trace = magic(ipython, CHAIN)
    (fold,) = [g for g in layout(trace)["groups"] if g["fold"]]
    opened = layout(trace, unfolded=[fold["id"]])
    (middle,) = [g for g in opened["groups"] if g["fold"]]
    assert middle["label"] == "× 1995 · for _ in range(2000): (iterations 4–1998)"
    assert labels(opened).count("× 1.0001") == 3 + 1 + 2
    check_geometry(opened)


def test_a_folded_loop_collapses_to_one_box_that_says_how_many_times(ipython) -> None:
    trace = magic(ipython, CHAIN)
    (fold,) = [g for g in layout(trace)["groups"] if g["fold"]]
    lay = layout(trace, collapsed=[fold["id"]])
    (box,) = [n for n in lay["nodes"] if n["kind"] == "group"]
    assert "fold" in box["classes"]
    assert box["sublabel"] == "2000 iterations, 2 boxes each"


def test_the_2000_op_loop_saves_little(ipython) -> None:
    """NOTE [a budget for what a cell saves]: measured in bytes, which are deterministic."""
    ipython.run("import torch")
    run = ipython.run("%%autograd_trace\n" + CHAIN)
    (bundle,) = [o for o in run.outputs if "text/html" in o]
    from ipywidgets.widgets.widget import _instances

    widget = _instances[bundle["application/vnd.jupyter.widget-view+json"]["model_id"]]
    saved = len(json.dumps(widget.get_state()).encode()) + len(bundle["text/html"].encode())
    assert saved < 150_000
    assert "× 2000" in pictures(bundle["text/html"])[0]


def test_folds_are_found_by_period_and_nest() -> None:
    def op(line: int, name: str = "mul") -> dict:
        return {"line": line, "name": name, "inputs": [{"tensor": "t"}], "module": None}

    ops = [op(1, "ones")] + [op(3), op(4, "add")] * 40 + [op(6, "sum")]
    (fold,) = find_folds(ops)
    assert (fold.start, fold.period, fold.repeats) == (1, 2, 40)
    inner = [op(3)] * 30 + [op(5, "add")]
    (outer,) = find_folds(inner * 10)
    assert (outer.period, outer.repeats) == (31, 10)
    (nested,) = outer.inner
    assert (nested.period, nested.repeats, nested.start) == (1, 30, outer.last)
