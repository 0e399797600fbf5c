"""``%%autograd_trace --predict``: the graph hides what the learner is asked for, the kernel grades it.

Every cell runs in a real IPython shell. "Hidden" is checked on everything a notebook would keep:
each displayed bundle (``text/plain``, ``text/html``) and the full synced state of every widget it
shows (the graph's scenes, details, table and replay; the quiz's content and feedback).
"""

from __future__ import annotations

import json
import random

import pytest
import torch

from _shell import WIDGET_MIME
from torchlesson._predict import HIDDEN, MAX_NUMBERS
from torchlesson._quiz_widget import QuizWidget

SEED = """\
import torch
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x * 2
z = y + 3
loss = z.sum()
loss.backward()
"""


def widget_of(bundle: dict):
    from ipywidgets.widgets.widget import _instances

    return _instances[bundle[WIDGET_MIME]["model_id"]]


def everything(bundles: list[dict]) -> str:
    """All a notebook keeps of these outputs: their texts and the state of every widget they show."""
    parts = []
    for bundle in bundles:
        parts += [str(value) for key, value in bundle.items() if key != WIDGET_MIME]
        if WIDGET_MIME in bundle:
            parts.append(json.dumps(widget_of(bundle).get_state(), default=str))
    return "\n".join(parts)


def quiz_of(run) -> QuizWidget:
    (quiz,) = [widget_of(b) for b in run.outputs if WIDGET_MIME in b and "Quiz:" in b["text/plain"]]
    return quiz


def answer(ipython, quiz: QuizWidget, text: str, question: str = "predict-1"):
    """What the Check button does, with the displays it makes captured: (feedback, captured run)."""
    entries = []
    run = ipython.call(lambda: entries.append(quiz.check(question, text)))
    return entries[0], run


def graph_display_id(run) -> str:
    (message,) = [m for m in run.displays if "autograd trace:" in m["data"].get("text/plain", "")]
    assert message["display_id"], "the graph must be shown with a display id, to be drawn again"
    return message["display_id"]


# ---------------------------------------------------------------------------------------------
# the seed cell


def test_the_gradient_is_absent_from_everything_shown_and_a_question_asks_for_it(ipython) -> None:
    run = ipython.run("%%autograd_trace --predict x.grad\n" + SEED)
    assert run.error is None, run.stderr
    graph, quiz_bundle = run.outputs
    shown = everything(run.outputs)
    assert "[2., 2., 2.]" not in shown and "2., 2., 2." not in shown
    assert f".grad = [3] float32 ({HIDDEN})" in graph["text/plain"]
    assert HIDDEN in graph["text/html"]
    assert HIDDEN in json.dumps(widget_of(graph).picture)
    # the other gradients still show: the learner reasons from them
    assert "dloss/dy = [1., 1., 1.]" in graph["text/plain"]
    assert "What is `x.grad` after this cell?" in quiz_bundle["text/plain"]
    assert "a list of 3 numbers" in json.dumps(quiz_of(run).content)
    # the trace in the notebook's variable is not touched: only what is shown is redacted
    assert ipython.user_ns["x"].grad.tolist() == [2.0, 2.0, 2.0]


def test_a_wrong_answer_is_graded_and_the_graph_stays_hidden(ipython) -> None:
    run = ipython.run("%%autograd_trace --predict x.grad\n" + SEED)
    feedback, after = answer(ipython, quiz_of(run), "[1, 1, 1]")
    assert feedback["status"] == "wrong"
    assert "Follow the graph backward" in feedback["notes"][0][1]
    assert "answer" not in feedback and "explanation" not in feedback
    assert after.displays == []  # nothing drawn again
    assert "2., 2., 2." not in json.dumps(quiz_of(run).get_state(), default=str)


@pytest.mark.parametrize(
    ("typed", "status"),
    [
        ("[2, 2, 2]", "correct"),
        ("tensor([2., 2., 2.])", "correct"),
        ("[2. 2. 2.]", "correct"),
        ("[2.001, 2, 1.999]", "correct"),  # within the quiz's tolerance (rtol 1e-3)
        ("[2.01, 2, 2]", "wrong"),  # outside it
        ("[2, 2]", "wrong"),
        ("two", "unreadable"),
    ],
)
def test_answers_are_read_and_graded_as_a_numeric_quiz_question(ipython, typed: str, status: str) -> None:
    run = ipython.run("%%autograd_trace --predict x.grad\n" + SEED)
    feedback, _ = answer(ipython, quiz_of(run), typed)
    assert feedback["status"] == status
    if status == "unreadable":
        assert "Type a number or a list of numbers" in feedback["notes"][0][1]
    if typed == "[2, 2]":
        assert "shape (2,)" in feedback["notes"][0][1]


def test_a_right_answer_draws_the_graph_again_with_the_gradient(ipython) -> None:
    run = ipython.run("%%autograd_trace --predict x.grad\n" + SEED)
    display_id = graph_display_id(run)
    feedback, after = answer(ipython, quiz_of(run), "[2, 2, 2]")
    assert feedback["status"] == "correct"
    assert "Replay backward" in feedback["explanation"]
    (update,) = after.displays
    assert update["update"] and update["display_id"] == display_id
    assert "dloss/dx = [2., 2., 2.]" in update["data"]["text/plain"]
    assert HIDDEN not in everything([update["data"]])
    replay = json.dumps(widget_of(update["data"]).picture["views"]["autograd"]["replay"])
    assert "2., 2., 2." in replay  # the backward replay shows it too


def test_two_wrong_answers_reveal_it_as_the_quiz_does(ipython) -> None:
    run = ipython.run("%%autograd_trace --predict x.grad\n" + SEED)
    quiz = quiz_of(run)
    first, quiet = answer(ipython, quiz, "[1, 1, 1]")
    second, redrawn = answer(ipython, quiz, "[6, 6, 6]")
    assert quiet.displays == [] and "answer" not in first
    assert second["status"] == "wrong" and second["answer"] == "[2, 2, 2]"
    assert "[2., 2., 2.]" in redrawn.displays[0]["data"]["text/plain"]


def test_several_targets_are_revealed_one_by_one(ipython) -> None:
    cell = "%%autograd_trace --predict x.grad,w.grad\n" + (
        "import torch\n"
        "x = torch.tensor([1.5, -2.0], requires_grad=True)\n"
        "w = torch.tensor([0.25, 3.0], requires_grad=True)\n"
        "loss = (x * w).sum()\n"
        "loss.backward()\n"
    )
    run = ipython.run(cell)
    assert run.error is None, run.stderr
    graph = run.outputs[0]["text/plain"]
    assert graph.count(HIDDEN) >= 4  # each .grad, and what flowed into each
    assert "dloss/dx = [0.2500, 3.0000]" not in graph
    quiz = quiz_of(run)
    assert [q["id"] for q in quiz.questions] == ["predict-1", "predict-2"]
    _, after = answer(ipython, quiz, "[0.25, 3]", "predict-1")
    text = after.displays[0]["data"]["text/plain"]
    assert "dloss/dx = [0.2500, 3.0000]" in text
    assert "dloss/dw = [2] float32 (hidden until you answer)" in text
    _, last = answer(ipython, quiz, "[1.5, -2]", "predict-2")
    assert HIDDEN not in last.displays[0]["data"]["text/plain"]


def test_a_tensor_value_can_be_predicted_and_its_copies_are_hidden(ipython) -> None:
    cell = "%%autograd_trace --predict h\n" + (
        "import torch\na = torch.tensor([0.5, 1.25])\nh = torch.tanh(a) * 3\nkept = h.clone()\n"
    )
    run = ipython.run(cell)
    expected = (torch.tanh(torch.tensor([0.5, 1.25])) * 3).tolist()
    shown = everything(run.outputs)
    assert all(f"{v:.4f}" not in shown for v in expected)  # neither h nor its copy, kept
    assert f"{torch.tanh(torch.tensor(0.5)).item():.4f}" in shown  # the step before h is shown
    feedback, after = answer(ipython, quiz_of(run), str([round(v, 3) for v in expected]))
    assert feedback["status"] == "correct"
    assert f"{expected[0]:.4f}" in everything([after.displays[0]["data"]])


def test_gradients_that_add_up_keep_each_passs_share_and_hide_the_sum(ipython) -> None:
    cell = "%%autograd_trace --predict w.grad\n" + (
        "import torch\n"
        "w = torch.tensor([1.0, 2.0], requires_grad=True)\n"
        "for step in range(3):\n"
        "    loss = (w * 3).sum()\n"
        "    loss.backward()\n"
    )
    run = ipython.run(cell)
    shown = everything(run.outputs)
    assert "9., 9." not in shown
    assert "dloss/dw = [3., 3.]" in run.outputs[0]["text/plain"]  # each pass's share, to add up
    feedback, after = answer(ipython, quiz_of(run), "[9, 9]")
    assert feedback["status"] == "correct"
    assert "9., 9." in everything([after.displays[0]["data"]])


def test_text_mode_hides_and_reveals_the_summary(ipython) -> None:
    run = ipython.run("%%autograd_trace --text --predict x.grad\n" + SEED)
    graph = run.outputs[0]
    assert WIDGET_MIME not in graph and HIDDEN in graph["text/plain"]
    _, after = answer(ipython, quiz_of(run), "[2, 2, 2]")
    assert "dloss/dx = [2., 2., 2.]" in after.displays[0]["data"]["text/plain"]


def test_the_python_api_does_what_the_magic_does(ipython) -> None:
    run = ipython.run(
        "import torch, torchlesson\n"
        "with torchlesson.trace() as t:\n"
        "    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
        "    (x * 2 + 3).sum().backward()\n"
        "p = torchlesson.predict(t, 'x.grad', globals())\n"
        "p"
    )
    assert run.error is None, run.stderr
    assert HIDDEN in run.outputs[0]["text/plain"]
    assert "2., 2., 2." not in everything(run.outputs)
    prediction = ipython.user_ns["p"]
    assert prediction.check("[2, 2, 2]")["status"] == "correct"
    assert prediction.hidden == []


# ---------------------------------------------------------------------------------------------
# bad input: one line that says what to fix, and the graph is not shown to give the answer away

BAD = [
    ("--predict xx.grad", SEED, "the cell did not bind 'xx' (did you mean x?)"),
    ("--predict n", SEED + "n = 3\n", "n is an int, not a tensor"),
    ("--predict y.grad", SEED, "y is not a leaf (it was made by MulBackward0)"),
    ("--predict y.grad", SEED, "call y.retain_grad() before backward()"),
    (
        "--predict c.grad",
        SEED + "c = torch.ones(2)\n",
        "c does not require grad, so no gradient reaches it",
    ),
    (
        "--predict x.grad",
        "import torch\nx = torch.tensor([1.0], requires_grad=True)\ny = x * 2\n",
        "the cell ran no backward pass",
    ),
    (
        "--predict u.grad",
        SEED + "u = torch.zeros(2, requires_grad=True)\n",
        "no backward pass reached u",
    ),
    (
        "--predict big.grad",
        "import torch\nbig = torch.ones(5, 5, requires_grad=True)\nbig.sum().backward()\n",
        f"it holds 25 numbers, too many to type; --predict takes tensors of at most {MAX_NUMBERS} numbers",
    ),
    ("--predict x.weight", SEED, "x has no attribute 'weight'"),
]


@pytest.mark.parametrize(("flags", "cell", "message"), BAD)
def test_a_target_that_cannot_be_asked_says_why_in_one_line(ipython, flags, cell, message) -> None:
    run = ipython.run(f"%%autograd_trace {flags}\n{cell}")
    assert type(run.error).__name__ == "UsageError"
    assert message in str(run.error)
    assert "\n" not in str(run.error)
    assert "Traceback" not in run.stdout + run.stderr
    assert run.outputs == []  # no graph that would give it away, no question
    assert cell.splitlines()[1].split(" = ")[0] in run.user_ns  # the cell did run


@pytest.mark.parametrize("flags", ["--predict 'x[0]'", "--predict x.grad,", "--predict 3x"])
def test_a_malformed_target_is_refused_before_the_cell_runs(ipython, flags: str) -> None:
    run = ipython.run(f"%%autograd_trace {flags}\nran = True\n")
    assert type(run.error).__name__ == "UsageError"
    assert "give a tensor's variable name (y) or its gradient (x.grad)" in str(run.error)
    assert "ran" not in run.user_ns


def test_a_cell_that_raises_shows_its_trace_and_says_the_prediction_was_not_checked(ipython) -> None:
    run = ipython.run("%%autograd_trace --predict x.grad\n" + SEED + "1 / 0\n")
    assert isinstance(run.error, ZeroDivisionError)  # the cell's own error, as without the magic
    assert "ZeroDivisionError" in run.stdout + run.stderr
    assert "--predict x.grad: the cell raised ZeroDivisionError, so the prediction could not be checked" in (
        run.stderr
    )
    (graph,) = run.outputs  # the normal trace, and no question
    assert "autograd trace:" in graph["text/plain"] and HIDDEN not in graph["text/plain"]


# ---------------------------------------------------------------------------------------------
# the cell runs as without the magic


def test_the_cell_runs_exactly_as_without_tracing(ipython) -> None:
    cell = (
        "import torch\n"
        "torch.manual_seed(3)\n"
        "x = torch.rand(3, requires_grad=True)\n"
        "loss = (x * torch.randn(3)).sum()\n"
        "loss.backward()\n"
        "print('loss', round(loss.item(), 4))\n"
    )

    def run_and_read(first_line: str):
        ipython.reset()
        ipython.run("%load_ext torchlesson")
        before = set(ipython.user_ns)
        run = ipython.run(first_line + cell)
        names = set(ipython.user_ns) - before
        ipython.run("after = torch.rand(2).tolist()")
        values = {name: ipython.user_ns[name] for name in ("x", "loss")}
        return run, names, values, ipython.user_ns["after"]

    plain, plain_names, plain_values, plain_after = run_and_read("")
    traced, traced_names, traced_values, traced_after = run_and_read("%%autograd_trace --predict x.grad\n")
    assert traced.error is None
    assert traced.stdout == plain.stdout
    assert {n for n in traced_names if not n.startswith("_")} == {
        n for n in plain_names if not n.startswith("_")
    }
    assert torch.equal(traced_values["x"], plain_values["x"])
    assert torch.equal(traced_values["x"].grad, plain_values["x"].grad)
    assert traced_values["loss"].item() == plain_values["loss"].item()
    assert traced_after == plain_after  # the random state is where the cell left it


# ---------------------------------------------------------------------------------------------
# property: in generated cells, the hidden numbers appear nowhere until they are revealed

UNARY = ["torch.sin({})", "torch.tanh({})", "({}) ** 2", "torch.exp({} / 4)", "({}) * ({})"]


def generated_cell(rng: random.Random) -> tuple[str, str]:
    """A small random cell and what to predict in it: a gradient, or an intermediate's value."""
    n = rng.randint(1, 4)
    xs = [round(rng.uniform(-2, 2), 3) for _ in range(n)]
    ws = [round(rng.uniform(0.3, 2.5), 3) for _ in range(n)]
    lines = [
        "import torch",
        f"x = torch.tensor({xs}, requires_grad=True)",
        f"w = torch.tensor({ws}, requires_grad=True)",
        "h = x * w",
    ]
    for _ in range(rng.randint(1, 3)):
        lines.append("h = " + rng.choice(UNARY).format("h", "h"))
    lines += ["m = h + w", "loss = m.sum()", "loss.backward()"]
    target = rng.choice(["x.grad", "w.grad", "m"])
    return "\n".join(lines) + "\n", target


def spelled(values: list[float]) -> set[str]:
    """The ways the picture could write these numbers (4 decimals, as torch prints, or short)."""
    out = set()
    for v in values:
        if abs(v) >= 1e-3:
            out |= {f"{v:.4f}", f"{v:.4e}", f"{v:.4g}"}
    return out


@pytest.mark.parametrize("seed", range(6))
def test_generated_cells_show_the_hidden_numbers_nowhere_until_revealed(ipython, seed: int) -> None:
    cell, target = generated_cell(random.Random(seed))
    ipython.run(cell)  # the numbers, computed without the magic
    ns = ipython.user_ns
    value = ns[target[:-5]].grad if target.endswith(".grad") else ns[target]
    numbers = value.detach().flatten().tolist()
    others = [ns["x"], ns["w"], ns["loss"], *(ns[n] for n in ("m", "h") if n != target)]
    if target.endswith(".grad"):
        others.append(ns["w" if target == "x.grad" else "x"].grad)
    else:
        others += [ns["x"].grad, ns["w"].grad]
    other_spellings = spelled([v for t in others for v in t.detach().flatten().tolist()])
    words = spelled(numbers) - other_spellings  # only numbers no other tensor shows
    assert words, f"seed {seed}: no number of {target} is its own"

    ipython.reset()
    ipython.run("%load_ext torchlesson")
    run = ipython.run(f"%%autograd_trace --predict {target}\n{cell}")
    assert run.error is None, run.stderr
    shown = everything(run.outputs)
    assert not {w for w in words if w in shown}, f"seed {seed}: {target} leaks\n{cell}"
    assert HIDDEN in shown

    typed = json.dumps(numbers if value.dim() else numbers[0])
    feedback, after = answer(ipython, quiz_of(run), typed)
    assert feedback["status"] == "correct"
    revealed = everything([m["data"] for m in after.displays])
    assert {w for w in words if w in revealed}, "revealed, the numbers must be there (the check can fail)"
