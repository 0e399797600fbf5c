"""The story of a real cell (NOTE [the story of a cell] in src/torchlesson/picture/story.py): a model
built in the cell folds into one box, an optimizer call is one box that names its parameters, the
first view shows the main path in about 25 boxes, and expanding everything restores every operation.

Every cell runs through both entry points, the magic and ``torchlesson.trace()``, in a real IPython
shell; the oracle for "every operation" is the layout drawn without the story (``story=False``).
"""

from __future__ import annotations

import re
import textwrap

import pytest

from torchlesson.picture.index import Index
from torchlesson.picture.layout import layout
from torchlesson.picture.messages import phases
from torchlesson.picture.picture import Picture

SETUP = "import torch\nfrom torch import nn\ntorch.manual_seed(0)"

CELLS = {
    "linear": "head = nn.Linear(20, 3)\nfeatures = torch.randn(4, 20)\nscores = head(features)\n"
    "scores.sum().backward()",
    "cnn step": "net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),\n"
    "                    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))\n"
    "opt = torch.optim.SGD(net.parameters(), lr=0.1)\nimages = torch.randn(8, 1, 8, 8)\n"
    "labels = torch.randint(0, 10, (8,))\nopt.zero_grad()\n"
    "loss = nn.functional.cross_entropy(net(images), labels)\nloss.backward()\nopt.step()",
    "transformer": "layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)\n"
    "tokens = torch.randn(2, 5, 16)\nout = layer(tokens)\nout.pow(2).mean().backward()",
    "sgd loop": "w = torch.zeros(3, requires_grad=True)\nxs = torch.randn(32, 3)\n"
    "ys = xs @ torch.tensor([1.0, -2.0, 0.5])\nopt = torch.optim.SGD([w], lr=0.1)\n"
    "for step in range(100):\n    opt.zero_grad()\n    loss = ((xs @ w - ys) ** 2).mean()\n"
    "    loss.backward()\n    opt.step()",
    "init asked for": "w = torch.empty(3, 4)\nnn.init.kaiming_uniform_(w)\nb = nn.Linear(4, 2)\n"
    "y = b(w).sum()",
}  # fmt: skip
FIRST_VIEW_BOXES = 25  # what the issue asks of a CNN step and a TransformerEncoderLayer step


@pytest.fixture(params=["magic", "api"])
def traced(request, ipython):
    """traced(code): the trace dict of ``code`` run by the magic or inside ``torchlesson.trace()``."""

    def run(code: str, before: str = "") -> dict:
        assert ipython.run(SETUP + "\n" + before).error is None
        if request.param == "magic":
            cell = "%%autograd_trace -o _trace\n" + code
        else:
            cell = "import torchlesson\nwith torchlesson.trace() as _trace:\n" + textwrap.indent(code, "    ")
        result = ipython.run(cell)
        assert result.error is None, result.error
        return ipython.user_ns["_trace"].to_dict()

    return run


def first(trace: dict, view: str = "forward") -> dict:
    return Picture(trace).layout(view)


def labels(lay: dict) -> list[str]:
    return [str(n["label"]) for n in lay["nodes"]]


def test_a_module_built_in_the_cell_is_one_box_and_its_parameters_start_as_leaves(traced) -> None:
    trace = traced(CELLS["linear"])
    lay = first(trace)
    (built,) = [n for n in lay["nodes"] if "build" in n["classes"]]
    assert built["label"] == "head = nn.Linear(20, 3)"
    assert built["sublabel"] == "made head.weight, head.bias"
    assert not {"kaiming_uniform_", "uniform_"} & set(labels(lay))
    by_label = {n["label"]: n for n in lay["nodes"]}
    for name in ("head.weight", "head.bias"):
        param = by_label[name]
        assert not any(e["target"] == param["id"] for e in lay["edges"])  # a leaf: nothing draws into it
        assert " · v" not in param["sublabel"]
    assert sorted(labels(lay)) == sorted(
        ["head = nn.Linear(20, 3)", "head.weight", "head.bias", "features", "linear", "scores", "sum",
         "scores.sum()"]
    )  # fmt: skip
    details = Picture(trace).state()["details"][built["ref"]]
    made = {r["key"]: r["text"] for r in details["rows"]}["made"]
    assert made == "head.weight [3, 20], head.bias [3]"


def test_init_the_learner_asked_for_stays_in_the_picture(traced) -> None:
    lay = first(traced(CELLS["init asked for"]))
    assert "kaiming_uniform_" in labels(lay)  # nn.init in the cell itself is what the cell is about
    (built,) = [n for n in lay["nodes"] if "build" in n["classes"]]
    assert built["label"] == "b = nn.Linear(4, 2)"
    assert labels(lay).count("kaiming_uniform_") == 1  # the Linear's own is folded


def test_an_optimizer_step_is_one_box_that_names_its_parameters(traced) -> None:
    trace = traced(CELLS["cnn step"])
    picture = Picture(trace)
    lay = picture.layout("forward")
    (step,) = [n for n in lay["nodes"] if "step" in n["classes"]]
    assert step["label"] == "opt.step() · SGD"
    assert step["sublabel"] == "6 parameters updated, lr=0.1"
    assert not any(e["target"] == step["id"] for e in lay["edges"])  # no arrow crosses the forward pass
    loss = next(n for n in lay["nodes"] if n["label"] == "loss")
    assert step["rank"] > loss["rank"]  # drawn after the forward pass that used the parameters
    rows = {r["key"]: r["text"] for r in picture.state()["details"][step["ref"]]["rows"]}
    params = [f"net.{k}.{p}" for k in (0, 1, 5) for p in ("weight", "bias")]
    assert set(params) <= set(rows)
    call = next(c for c in trace["optimizer_calls"] if c["method"] == "step")
    weight = next(t for t in trace["tensors"] if t.get("name") == "net.0.weight")
    before, after = call["updated"][weight["id"]]["before"], call["updated"][weight["id"]]["after"]
    assert rows["net.0.weight"].startswith(f"norm {before:.4g} → {after:.4g}, from a gradient of norm")
    assert before != after


@pytest.mark.parametrize("name", ["cnn step", "transformer"])
def test_the_first_view_shows_the_main_path_in_about_25_boxes(traced, name: str) -> None:
    trace = traced(CELLS[name])
    lay = first(trace)
    assert len(lay["nodes"]) <= FIRST_VIEW_BOXES
    assert len(layout(trace, collapsed=[])["nodes"]) > 2 * FIRST_VIEW_BOXES  # it was a wall before
    shown = " ".join(labels(lay))
    assert "kaiming_uniform_" not in shown and "NonDynamicallyQuantizableLinear" not in shown
    assert "[" not in "".join(n["label"] for n in lay["nodes"] if n["kind"] == "tensor")  # no ns['x']
    # the model's top-level children, each one click away
    groups = [n["label"] for n in lay["nodes"] if n["kind"] == "group" and "build" not in n["classes"]]
    if name == "transformer":
        assert "layer.self_attn · MultiheadAttention" in groups
    else:
        assert {"net.0 · Conv2d", "net.1 · BatchNorm2d", "net.5 · Linear"} <= set(groups)


@pytest.mark.parametrize("name", list(CELLS))
def test_expanding_everything_restores_every_operation(traced, name: str) -> None:
    trace = traced(CELLS[name])
    for view in ("forward", "autograd"):
        opened = Picture(trace).layout(view, collapsed=[])
        plain = layout(trace, view, collapsed=[])

        def drawn(lay: dict) -> list:
            return [(n["id"], n["label"], n["sublabel"], n["group"], n["classes"]) for n in lay["nodes"]]

        assert drawn(opened) == drawn(plain)
        assert [(e["source"], e["target"]) for e in opened["edges"]] == [
            (e["source"], e["target"]) for e in plain["edges"]
        ]


def test_an_opened_optimizer_call_folds_back_from_its_details(traced) -> None:
    trace = traced(CELLS["cnn step"])
    picture = Picture(trace)
    shut = picture.layout("forward")
    modules = [n["ref"] for n in shut["nodes"] if n["kind"] == "group" and "step" not in n["classes"]]
    (step,) = [n["ref"] for n in shut["nodes"] if "step" in n["classes"]]
    state = picture.state(collapsed=modules)  # the learner opened the optimizer call
    updates = [n for n in state["views"]["forward"]["nodes"] if "inplace" in n["cls"]]
    assert len(updates) == 6
    actions = state["details"][updates[0]["ref"]]["actions"]
    assert {"label": "Fold the optimizer call back", "toggle": step} in actions


def said(trace: dict) -> str | None:
    """The phases, with the lines counted from the traced code (``trace()`` adds two lines above)."""
    text = phases(Index(trace))
    if text and str(trace["lines"][0]).startswith("import torchlesson"):
        text = re.sub(r"\d+", lambda m: str(int(m.group()) - 2), text)
    return text


@pytest.mark.parametrize("code", ["opt.step()", "head = nn.Linear(3, 2)"], ids=["a step", "a model"])
def test_a_cell_that_only_builds_or_only_steps_shows_what_it_did(traced, code: str) -> None:
    """examples/training_step.ipynb traces `optimizer.step()` alone: one folded box would hide it all."""
    before = "w = torch.ones(3, requires_grad=True)\nopt = torch.optim.SGD([w], lr=0.1)\nw.sum().backward()"
    lay = first(traced(code, before=before))
    assert not [n for n in lay["nodes"] if n["kind"] == "group"]
    assert {"add_", "+="} & set(labels(lay)) if code == "opt.step()" else "kaiming_uniform_" in labels(lay)


def test_the_phases_of_a_training_step_are_said_in_order(traced) -> None:
    assert said(traced(CELLS["cnn step"])) == (
        "build net (lines 1–2) → forward (line 7) → loss (line 7) → backward() (line 8) → opt.step() (line 9)"
    )
    loop = said(traced(CELLS["sgd loop"]))
    assert loop.endswith("opt.zero_grad() (line 6) → forward (line 7) → loss (line 7) → backward() (line 8) → "
                         "opt.step() (line 9)")  # fmt: skip
    assert phases(Index(traced("x = torch.ones(2, requires_grad=True)\n(x * 2).sum().backward()"))) is None
