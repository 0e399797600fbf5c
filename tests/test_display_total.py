"""NOTE [the display is total]: whatever a trace holds, the picture renders, and a part that fails says so.

Property-style: traces are generated from a few shapes and then damaged at random (seeded, so every
failure reproduces from its id): odd summaries, empty strings, NaN and inf everywhere, optional
fields missing, new optional fields present. Every display a learner can get (the mime bundle, the
widget's state, the static SVG, ``repr``) must come out whole. Real cells that broke the display
(non-finite values, exceptions without a message, an interrupt) run through both entry points.
"""

from __future__ import annotations

import copy
import json
import math
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

import torchlesson
from _synthetic import TraceBuilder, diamonds, failing_matmul, mlp, seed, summary
from test_static import pictures
from torchlesson import Trace

SVG = "{http://www.w3.org/2000/svg}"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
FAILED = "could not be drawn"


def inplace_rewritten() -> dict:
    b = TraceBuilder()
    x = b.leaf("x", [2])
    y = b.op("mul", [x, 2], "y")
    b.inplace("mul_", y, 3)
    b.backward(b.op("sum", [y], "loss", shape=[]))
    b.cuts.append({"tensor": y, "source": x, "reason": "detach", "line": 2, "op": b.ops[1]["id"]})
    return b.to_dict()


def failing() -> dict:
    b, _, _ = failing_matmul("")
    b.error["modified_by"] = b.ops[0]["id"]
    return b.to_dict()


SHAPES: dict[str, Callable[[], dict]] = {
    "seed": seed,
    "mlp": lambda: mlp(30),
    "diamonds": lambda: diamonds(25),
    "failing": failing,
    "inplace": inplace_rewritten,
}

# ---------------------------------------------------------------------------------------------
# What can be wrong with a trace


def odd_summaries(shape: list[int]) -> list[dict | None]:
    """Summaries a display meets: unreadable ones, non-finite numbers as JSON strings and as floats,
    missing statistics, empty tensors, odd values."""
    return [
        None,
        {},
        {"unavailable": "uninitialised", "shape": shape, "dtype": "float32", "numel": 3, "values": None},
        {"unavailable": "freed"},
        {
            **summary(shape),
            "values": None,
            "min": "nan",
            "max": "inf",
            "mean": "-inf",
            "std": "nan",
            "norm": "nan",
        },
        {
            **summary(shape),
            "values": None,
            "min": math.nan,
            "max": math.inf,
            "mean": -math.inf,
            "norm": math.nan,
        },
        {**summary([3]), "values": ["nan", "inf", "-inf"]},
        {**summary([3]), "values": [math.nan, math.inf, -math.inf]},
        {**summary([0]), "values": [], "min": None, "max": None, "mean": None, "std": None, "norm": None},
        {"shape": None, "dtype": None, "numel": None, "values": None},
        {**summary([2, 2]), "values": [[True, False], [False, True]], "dtype": "bool"},
        {**summary([1]), "values": [1e308], "norm": 1e308},
        {**summary([]), "values": 5, "numel": 1},
        {"shape": shape, "values": [[[[[1.0]]]]]},
        {**summary([1]), "norm": "a string", "values": None, "numel": "7"},
    ]


def dicts(value: Any) -> list[dict]:
    """The dicts in ``value`` when it is a list (a damaged trace may hold anything there)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def summaries_of(trace: dict) -> Iterator[tuple[dict, Any]]:
    """(container, key) of every Summary in a trace."""
    for tensor in dicts(trace.get("tensors")):
        for key in ("value", "grad"):
            if key in tensor:
                yield tensor, key
    for passage in dicts(trace.get("backward")):
        yield passage, "gradient"
        for table in ("grads", "node_grads"):
            if isinstance(passage.get(table), dict):
                for key in passage[table]:
                    yield passage[table], key


def items_of(trace: dict) -> list[dict]:
    """Every dict item of a trace a field can be taken from."""
    items = [trace]
    for key in ("tensors", "ops", "backward", "cuts"):
        items += dicts(trace.get(key))
    autograd = trace.get("autograd") if isinstance(trace.get("autograd"), dict) else {}
    items += dicts(autograd.get("nodes")) + dicts(autograd.get("edges"))
    items += [i for op in dicts(trace.get("ops")) for i in dicts(op.get("inputs"))]
    if isinstance(trace.get("error"), dict):
        items.append(trace["error"])
    return items


# fields the schema marks optional or that a newer tracer adds: without them, everything is still drawn
OPTIONAL = {
    "tensors": ["label", "expression", "name", "module", "made_by", "output_of", "node", "version", "value",
                "grad", "line", "retains_grad", "created", "kind", "grad_fn"],
    "ops": ["module", "inplace", "version", "nodes", "line", "grad_enabled"],
    "backward": ["node_grads", "gradient", "accumulated", "retain_graph", "create_graph", "line"],
    "top": ["modules", "lines", "cuts", "error", "stopped", "truncated", "max_ops", "op_count", "schema"],
}  # fmt: skip


def damage_summaries(trace: dict, rng: random.Random) -> None:
    places = list(summaries_of(trace))
    for container, key in rng.sample(places, min(len(places), rng.randint(1, 6))):
        old = container.get(key)
        shape = (old.get("shape") if isinstance(old, dict) else None) or [3]
        container[key] = copy.deepcopy(rng.choice(odd_summaries(shape)))


def non_finite_everywhere(trace: dict, rng: random.Random) -> None:
    bad = ["nan", "inf", "-inf", math.nan, math.inf, -math.inf]
    for container, key in list(summaries_of(trace)):
        s = container.get(key)
        if not isinstance(s, dict):
            continue
        for stat in ("min", "max", "mean", "std", "norm"):
            s[stat] = rng.choice(bad)
        if s.get("values") is not None:
            s["values"] = _replace_leaves(s["values"], lambda: rng.choice(bad))


def _replace_leaves(values: Any, make: Callable[[], Any]) -> Any:
    if isinstance(values, list):
        return [_replace_leaves(v, make) for v in values]
    return make()


def empty_strings(trace: dict, rng: random.Random) -> None:
    for item in rng.sample(items_of(trace), min(8, len(items_of(trace)))):
        for key in [
            k for k, v in item.items() if isinstance(v, str) and k not in ("id", "tensor", "source", "target")
        ]:
            item[key] = ""
    if trace.get("lines"):
        trace["lines"] = ["" for _ in trace["lines"]]
    trace["stopped"] = {"type": "", "message": "", "op_count": 0}
    if isinstance(trace.get("error"), dict):
        trace["error"]["message"] = ""


def drop_optional(trace: dict, rng: random.Random) -> None:
    for key in rng.sample(OPTIONAL["top"], 3):
        trace.pop(key, None)
    for part in ("tensors", "ops", "backward"):
        for item in trace.get(part) or ():
            for key in rng.sample(OPTIONAL[part], rng.randint(0, len(OPTIONAL[part]))):
                item.pop(key, None)


def new_fields(trace: dict, rng: random.Random) -> None:
    """What the tracer is adding: a unique, non-empty ``label`` per tensor, its ``expression``, and
    summaries of ``torch.empty``'s garbage marked uninitialised."""
    for k, tensor in enumerate(trace.get("tensors") or ()):
        tensor["label"] = rng.choice([f"enc(tokens).pow(2).mean() #{k}", f"m[sel] {k}", f"v{k}"])
        tensor["expression"] = rng.choice([None, "torch.empty(3)", ""])
        if rng.random() < 0.3:
            tensor["value"] = {"unavailable": "uninitialised", "shape": tensor.get("shape"), "dtype": "float32",
                               "numel": 3, "values": None, "min": None, "max": None, "mean": None, "std": None,
                               "norm": None}  # fmt: skip
    trace["future_field"] = {"anything": [1, 2]}


BENIGN = {
    "summaries": damage_summaries,
    "non-finite": non_finite_everywhere,
    "empty-strings": empty_strings,
    "missing-optional": drop_optional,
    "new-fields": new_fields,
}


def anything_goes(trace: dict, rng: random.Random) -> None:
    """Beyond the schema: required fields missing, wrong types, dangling ids. Still no crash."""
    for _ in range(rng.randint(1, 6)):
        item = rng.choice(items_of(trace))
        if not item:
            continue
        key = rng.choice(sorted(item))
        item[key] = rng.choice([None, "", 0, -1, [], {}, "t999", [None], {"x": None}, 1e309, "nan"])


def generated(count: int, mutations: dict[str, Callable]) -> list[Any]:
    cases = []
    for k in range(count):
        shape = sorted(SHAPES)[k % len(SHAPES)]
        kind = sorted(mutations)[(k // len(SHAPES)) % len(mutations)]
        cases.append(pytest.param(shape, kind, k, id=f"{shape}-{kind}-{k}"))
    return cases


def make(shape: str, mutate: Callable, seed_: int) -> tuple[dict, set[Callable]]:
    """The trace of ``shape`` damaged by ``mutate`` (and, every other time, one more kind of
    damage), and the kinds of damage done."""
    rng = random.Random(seed_)
    trace = SHAPES[shape]()
    mutate(trace, rng)
    done = {mutate}
    if rng.random() < 0.5:  # often two kinds of damage at once
        done.add(rng.choice(list(BENIGN.values())))
        next(iter(done - {mutate}), mutate)(trace, rng)
    return trace, done


# ---------------------------------------------------------------------------------------------
# What a learner gets


def shown(trace: dict) -> dict[str, Any]:
    """Everything a display of ``trace`` produces, checked to be whole; returns the parts."""
    t = Trace(trace)
    text = repr(t)
    assert isinstance(text, str)
    assert text.startswith("autograd trace:"), text[:200]
    assert str(t.text_view()) == text
    bundle = t._repr_mimebundle_()
    assert bundle["text/plain"] == text
    html = bundle["text/html"]
    ET.fromstring(f"<div>{html}</div>")  # well-formed, so no half-written markup reaches the page
    svgs = {view: ET.fromstring(t.to_svg(view)) for view in ("forward", "autograd")}
    t.to_dot()
    state = None
    if WIDGET_MIME in bundle:
        from ipywidgets.widgets.widget import _instances

        widget = _instances[bundle[WIDGET_MIME]["model_id"]]
        state = json.dumps(widget.get_state(), allow_nan=False)  # what the kernel can send
        widget.close()
    return {"text": text, "html": html, "svgs": svgs, "state": state, "bundle": bundle}


def node_ids(svg: ET.Element) -> list[str]:
    return [g.get("data-id") for g in svg.iter(f"{SVG}g") if "tl-node" in (g.get("class") or "").split()]


@pytest.mark.parametrize(("shape", "kind", "seed_"), generated(50, BENIGN))
def test_damaged_traces_are_drawn_whole(shape: str, kind: str, seed_: int) -> None:
    """Odd summaries, empty strings, NaN/inf, missing optional fields, new fields: every node is
    still drawn and nothing says it failed."""
    trace, done = make(shape, BENIGN[kind], seed_)
    out = shown(trace)
    assert FAILED not in out["text"]
    assert FAILED not in out["html"]
    assert out["state"] is not None, "no widget"
    drawn = node_ids(out["svgs"]["forward"])
    if not done & {drop_optional, empty_strings}:  # nothing that says what is connected was lost
        assert drawn == node_ids(ET.fromstring(Trace(SHAPES[shape]()).to_svg()))
    assert drawn, "an empty picture"


@pytest.mark.parametrize(("shape", "kind", "seed_"), generated(30, {"anything": anything_goes}))
def test_traces_beyond_the_schema_never_break_the_display(shape: str, kind: str, seed_: int) -> None:
    shown(make(shape, anything_goes, seed_)[0])


def test_uninitialised_values_are_never_shown_as_numbers() -> None:
    """torch.empty's memory holds garbage (NaN bit patterns, 1e38...): the picture says so."""
    b = TraceBuilder()
    garbage = b.leaf("bias", [4], requires_grad=False)
    b.tensors[-1]["value"] = {"unavailable": "uninitialised", "shape": [4], "dtype": "float32", "numel": 4,
                              "values": None, "min": None, "max": None, "mean": None, "std": None,
                              "norm": None}  # fmt: skip
    b.op("add", [garbage, 1], "out")
    out = shown(b.to_dict())
    (node,) = [g for g in out["svgs"]["forward"].iter(f"{SVG}g") if g.get("data-id") == garbage]
    title = node.find(f"{SVG}title").text
    assert "uninitialised" in title
    assert "nan" not in title.lower() and "norm" not in title
    assert "bias" in out["text"] and "(uninitialised)" in out["text"]


def test_a_part_that_fails_says_so_and_the_rest_is_shown(monkeypatch) -> None:
    from torchlesson.picture import svg, text

    def broken(*args, **kwargs):
        raise RuntimeError("the static picture broke on purpose")

    monkeypatch.setattr(svg, "to_html", broken)
    out = shown(seed())
    assert (
        "The static picture could not be drawn (RuntimeError: the static picture broke on purpose)."
        in out["html"]
    )
    assert out["state"] is not None  # the widget is there
    assert out["text"].startswith("autograd trace: 4 tensors")
    monkeypatch.undo()

    real = text.tensor_label

    def label(tensor: dict) -> str:  # one tensor whose row cannot be written
        if tensor.get("name") == "y":
            raise ValueError()
        return real(tensor)

    monkeypatch.setattr(text, "tensor_label", label)
    written = repr(Trace(seed()))
    assert "  a row of the tensor table could not be drawn (ValueError)." in written
    assert "\n  x " in written and "\n  loss " in written  # the other rows are there


def test_when_the_widget_cannot_be_built_the_static_picture_says_why(monkeypatch) -> None:
    from torchlesson.picture import widget

    def broken(self, *args, **kwargs):
        raise KeyError("layouts")

    monkeypatch.setattr(widget.GraphWidget, "__init__", broken)
    bundle = Trace(seed())._repr_mimebundle_()
    assert WIDGET_MIME not in bundle
    assert pictures(bundle["text/html"])
    assert "The interactive graph could not be drawn (KeyError: &#x27;layouts&#x27;)." in bundle["text/html"]


# ---------------------------------------------------------------------------------------------
# Real cells, through the magic and through torchlesson.trace()

CELLS = {
    "log of zeros (-inf, 100 values)": ("big = torch.log(torch.zeros(10, 10))", None),
    "a NaN gradient": (
        "x = torch.zeros(100, requires_grad=True)\n(x * float('nan')).sum().backward()",
        None,
    ),
    "an infinite gradient": ("x = torch.zeros(100, requires_grad=True)\nx.sqrt().sum().backward()", None),
    "float64 overflow": ("big = torch.full((100,), 1e308, dtype=torch.float64) * 10", None),
    "bfloat16 inf": ("big = torch.full((100,), 3e38, dtype=torch.bfloat16) * 10", None),
    "uninitialised memory": ("garbage = torch.empty(1000)\nlayer = torch.nn.Linear(64, 64)", None),
    "assert False": ("x = torch.ones(2, requires_grad=True)\nassert False", AssertionError),
    "raise ValueError()": ("x = torch.ones(2) * 2\nraise ValueError()", ValueError),
    "the Interrupt button (KeyboardInterrupt)": (
        "x = torch.ones(2, requires_grad=True)\nfor _ in range(3):\n    x = x * 2\nraise KeyboardInterrupt",
        KeyboardInterrupt,
    ),
}


def check_real(trace: Trace, error: type | None) -> None:
    out = shown(trace.to_dict())
    assert FAILED not in out["text"] and FAILED not in out["html"]
    assert out["state"] is not None
    assert node_ids(out["svgs"]["forward"]), "nothing drawn"
    if error is not None:
        assert "error at line" in out["text"] and error.__name__ in out["text"]
        assert error.__name__ in ET.tostring(out["svgs"]["forward"], encoding="unicode")


@pytest.mark.parametrize(("code", "error"), CELLS.values(), ids=CELLS.keys())
def test_real_cells_display_through_the_magic(ipython, code: str, error: type | None) -> None:
    ipython.run("import torch")
    run = ipython.run("%%autograd_trace -o t\n" + code)
    assert type(run.error) is (error or type(None))
    (bundle,) = [o for o in run.outputs if "text/html" in o]
    assert WIDGET_MIME in bundle and pictures(bundle["text/html"]) and FAILED not in bundle["text/html"]
    check_real(ipython.user_ns["t"], error)


@pytest.mark.parametrize(("code", "error"), CELLS.values(), ids=CELLS.keys())
def test_real_cells_display_through_the_python_api(code: str, error: type | None) -> None:
    namespace = {"torch": torch}
    raised = None
    try:
        with torchlesson.trace() as t:
            exec(compile(code, "<cell>", "exec"), namespace)
    except BaseException as exc:  # the cell's own error, as the learner would see it
        raised = exc
    assert type(raised) is (error or type(None))
    check_real(t, error)


def test_the_text_summary_of_a_training_loop_stays_short(ipython) -> None:
    """300 backward passes: the text lists the first two and the last three, and says how many more."""
    ipython.run("import torch\nw = torch.ones(3, requires_grad=True)")
    run = ipython.run("%%autograd_trace -o t\nfor _ in range(300):\n    (w * 2).sum().backward()")
    assert run.error is None
    text = run.outputs[0]["text/plain"]
    assert "... 295 more backward passes ..." in text
    assert [line.split(" (")[0] for line in text.splitlines() if line.startswith("backward pass")] == [
        "backward pass 1", "backward pass 2", "backward pass 298", "backward pass 299", "backward pass 300"
    ]  # fmt: skip
    assert len(text.encode()) < 20_000
