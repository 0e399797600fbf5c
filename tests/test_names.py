"""What the trace calls each tensor, on cells as learners write them, through both entry points.

The oracle is Python itself: the same cell is run plain under ``sys.settrace``, and after every line
of the cell each variable's tensor is noted (shape, dtype). Every name in the trace must be one its
variable really held, the tensor a variable holds at the end must carry that name unadorned, and no
two tensors may share a label.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

BATTERY = {
    "blank line and comment on top": """

# the learner's first comment
m = torch.arange(4)
sel = m > 1
print(m[sel])
""",
    "reassignment in a loop": """\
g = torch.ones(3, requires_grad=True)
for step in range(4):
    g = g * 1.5
    h = g.sum()
h.backward()
""",
    "a model built in the cell": """\
from torch import nn
torch.manual_seed(0)
head = nn.Linear(20, 3)
features = torch.randn(5, 20)
scores = head(features)
scores.sum().backward()
""",
    "an encoder, no variable for the loss": """\
from torch import nn
torch.manual_seed(0)
enc = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
tokens = torch.randn(3, 4)
enc(tokens).pow(2).mean().backward()
""",
    "a custom Function whose output nobody keeps": """\
class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 2

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad

w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
Square.apply(w).mean().backward()
""",
    "tensors in a list and a dict": """\
xs = [torch.ones(2) * i for i in range(3)]
batch = {"x": torch.zeros(2, 2), "y": torch.ones(2)}
total = xs[0] + xs[2] + batch["y"]
""",
    "expressions inside print and backward": """\
x = torch.tensor([1.0, 2.0], requires_grad=True)
print((x * 3).sum())
(x ** 2).sum().backward(torch.tensor(2.0))
print(x.grad)
""",
    "tuple unpacking and a walrus": """\
a, b = torch.ones(4).chunk(2)
if (c := a + b).sum() > 0:
    d = c * 2
""",
}


def run(ipython, code: str, entry: str):
    ipython.reset()
    ipython.run("%load_ext torchlesson\nimport torch")
    if entry == "magic":
        cell = "%%autograd_trace -o _trace\n" + code
    else:
        cell = "import torchlesson\nwith torchlesson.trace() as _trace:\n" + textwrap.indent(code, "    ")
    result = ipython.run(cell)
    assert result.error is None, result.stdout
    return ipython.user_ns["_trace"]


def held_in_plain_run(ipython, code: str) -> dict[str, set[tuple]]:
    """Name -> every (shape, dtype) a variable of that name held after some line of the cell."""
    held: dict[str, set[tuple]] = {}

    def note(frame) -> None:
        for name, value in list(frame.f_locals.items()):
            if isinstance(value, torch.Tensor):
                held.setdefault(name, set()).add(
                    (tuple(value.shape), str(value.dtype).removeprefix("torch."))
                )

    def local(frame, event, arg):
        if event in ("line", "return"):
            note(frame)
        return local

    def calls(frame, event, arg):
        name = frame.f_code.co_name  # IPython 7.34 names a cell's code "<cell line: N>"
        if (
            event == "call"
            and frame.f_globals is ipython.user_ns
            and name.startswith(("<module>", "<cell line:"))
        ):
            return local
        return None

    ipython.reset()
    ipython.run("import torch")
    sys.settrace(calls)
    try:
        result = ipython.run(code)
    finally:
        sys.settrace(None)
    assert result.error is None
    return held


@pytest.fixture(params=["magic", "api"])
def entry(request) -> str:
    return request.param


@pytest.mark.parametrize("name", list(BATTERY))
def test_every_name_sits_on_a_tensor_its_variable_held(ipython, entry, name):
    code = BATTERY[name]
    held = held_in_plain_run(ipython, code)
    trace = run(ipython, code, entry)
    tensors = trace.to_dict()["tensors"]
    labels = [t["label"] for t in tensors]
    assert len(labels) == len(set(labels)), sorted(labels)
    assert all(isinstance(label, str) and label for label in labels)
    for tensor in tensors:
        variable = tensor["name"]
        if variable is None or not variable.isidentifier():
            continue  # parameter paths, list items and .grad are checked below
        facts = (tuple(tensor["shape"]), tensor["dtype"])
        assert facts in held.get(variable, set()), (variable, facts, held.get(variable))
    namespace = ipython.user_ns
    for variable, value in namespace.items():
        if isinstance(value, torch.Tensor) and not variable.startswith("_"):
            (unadorned,) = [t for t in tensors if t["label"] == variable]
            assert unadorned["shape"] == list(value.shape)
            assert unadorned["dtype"] == str(value.dtype).removeprefix("torch.")


def labels_of(trace) -> dict[str, dict]:
    return {t["label"]: t for t in trace.to_dict()["tensors"]}


def test_a_blank_line_on_top_shifts_nothing(ipython, entry):
    trace = run(ipython, BATTERY["blank line and comment on top"], entry)
    made = labels_of(trace)
    assert made["m[sel]"]["shape"] == [2] and made["m[sel]"]["name"] is None
    assert made["sel"]["dtype"] == "bool" and made["sel"]["shape"] == [4]
    # IPython drops a cell's leading blank lines before it compiles it; the with block keeps them
    assert made["sel"]["line"] == (3 if entry == "magic" else 7)
    lines = trace.to_dict()["lines"]
    assert lines[made["sel"]["line"] - 1].strip() == "sel = m > 1"


def test_a_variable_name_is_never_given_to_what_its_line_made(ipython, entry):
    trace = run(ipython, BATTERY["a model built in the cell"], entry)
    tensors = trace.to_dict()["tensors"]
    assert not [t for t in tensors if t["name"] == "head"]
    made = labels_of(trace)
    assert made["head.weight"]["shape"] == [3, 20] and made["scores"]["shape"] == [5, 3]
    # the constructor's own tensors read as what they are, where they were made
    assert any(label.startswith("empty in nn.Linear(20, 3)") for label in made)
    assert made["scores.sum()"]["shape"] == []


def test_unnamed_tensors_read_as_the_code_that_made_them(ipython, entry):
    trace = run(ipython, BATTERY["an encoder, no variable for the loss"], entry)
    made = labels_of(trace)
    root = made["enc(tokens).pow(2).mean()"]
    assert root["shape"] == [] and root["grad_fn"] == "MeanBackward0"
    assert made["enc(tokens)"]["shape"] == [3, 2]
    assert made["enc(tokens).pow(2)"]["expression"] == "enc(tokens).pow(2)"
    assert trace.backward[0]["root"] == [root["id"]]
    # what the layers inside made keeps their place in the model
    assert made["enc.0 output"]["shape"] == [3, 8]


def test_loop_versions_of_a_variable_are_told_apart(ipython, entry):
    trace = run(ipython, BATTERY["reassignment in a loop"], entry)
    gs = [t for t in trace.to_dict()["tensors"] if t["name"] == "g"]
    assert [t["label"] for t in gs] == ["g (1)", "g (2)", "g (3)", "g (4)", "g"]
    assert trace.tensor("g")["label"] == "g"  # the one g holds at the end
    assert [t["label"] for t in trace.to_dict()["tensors"] if t["name"] == "h"][-1] == "h"


def test_a_custom_functions_output_has_the_facts_autograd_gave_it(ipython, entry):
    trace = run(ipython, BATTERY["a custom Function whose output nobody keeps"], entry)
    out = labels_of(trace)["Square.apply(w)"]
    assert out["requires_grad"] is True and out["grad_fn"] == "SquareBackward"
    assert out["node"] is not None and out["module"] == "Square"
    assert trace.to_dict()["modules"]["Square"] == "autograd.Function"
    (passage,) = trace.backward
    assert passage["grads"][out["id"]]["values"] == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    pow_op = next(op for op in trace.ops if op["name"] == "pow")
    assert pow_op["module"] == "Square"


def test_expressions_inside_calls_name_their_tensors(ipython, entry):
    trace = run(ipython, BATTERY["expressions inside print and backward"], entry)
    made = labels_of(trace)
    assert made["(x * 3).sum()"]["shape"] == []
    assert made["x * 3"]["shape"] == [2]
    assert made["(x ** 2).sum()"]["id"] in trace.backward[0]["root"]
    assert made["torch.tensor(2.0)"]["shape"] == []


def test_long_expressions_are_shortened_from_the_front():
    from torchlesson.capture._expressions import shorten

    assert shorten("(images * 2 + 1).logsumexp(dim=1).clamp(min=0).mean()") == "….clamp(min=0).mean()"
    assert shorten("enc(tokens).pow(2).mean()") == "enc(tokens).pow(2).mean()"
    long_sum = "alpha_weight * first_tensor + beta_weight * second_tensor"
    short = shorten(long_sum)
    assert len(short) <= 28 and short.startswith("alpha") and short.endswith("tensor") and "…" in short


def test_python_310_finds_the_text_from_the_line():
    from torchlesson.capture._expressions import text_on_line

    source = "x = torch.ones(2)\nloss = (x * 3).sum()\nprint(x[0], x.mean())\n"
    lines = source.splitlines()
    assert text_on_line("sum", 2, lines, source) == "(x * 3).sum()"
    assert text_on_line("mul", 2, lines, source) == "x * 3"
    assert text_on_line("getitem", 3, lines, source) == "x[0]"
    assert text_on_line("add", 2, lines, source) is None
