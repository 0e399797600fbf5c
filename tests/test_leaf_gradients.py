"""The gradient each backward pass flowed into a big leaf, read late from its .grad (NOTE [late leaf
gradients]): right in every way a training cell can touch .grad afterwards, checked against torch."""

from __future__ import annotations

import math
import textwrap

import pytest
import torch

MODEL = """\
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
inputs, targets = torch.randn(8, 20), torch.randn(8, 4)
"""

# each cell runs after MODEL; every `.backward(` is one pass of the trace
CELLS = {
    "one step": """\
optimizer.zero_grad()
loss = nn.functional.mse_loss(model(inputs), targets)
loss.backward()
optimizer.step()
""",
    "loop, zero_grad sets None": """\
for step in range(3):
    optimizer.zero_grad()
    nn.functional.mse_loss(model(inputs), targets).backward()
    optimizer.step()
""",
    "loop, zero_grad zeroes in place": """\
for step in range(3):
    optimizer.zero_grad(set_to_none=False)
    nn.functional.mse_loss(model(inputs), targets).backward()
    optimizer.step()
""",
    "accumulation over two passes": """\
loss = nn.functional.mse_loss(model(inputs), targets)
loss.backward(retain_graph=True)
(2 * loss).backward()
""",
    "clipping after the pass": """\
nn.functional.mse_loss(model(inputs), targets).backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)
""",
    "scaling through .data": """\
nn.functional.mse_loss(model(inputs), targets).backward()
for p in model.parameters():
    p.grad.data.mul_(0.5)
""",
    "grad replaced by assignment": """\
nn.functional.mse_loss(model(inputs), targets).backward()
model[0].weight.grad = torch.zeros_like(model[0].weight)
""",
    "optimizer in the backward hook": """\
def step_now(p):
    with torch.no_grad():
        p.add_(p.grad, alpha=-0.1)
    p.grad = None
handles = [p.register_post_accumulate_grad_hook(step_now) for p in model.parameters()]
nn.functional.mse_loss(model(inputs), targets).backward()
for h in handles:
    h.remove()
""",
}

WEIGHTS = ("model.0.weight", "model.2.weight")  # 320 and 64 elements: one late, one read at once


def _flowed_by_torch(cell: str) -> list[dict[str, torch.Tensor]]:
    """Per pass, the gradient that flowed into each weight, as a tensor hook on it sees it, untraced."""
    namespace: dict = {}
    exec(MODEL, namespace)
    model = namespace["model"]
    params = {"model.0.weight": model[0].weight, "model.2.weight": model[2].weight}
    passes: list[dict[str, torch.Tensor]] = []
    plain_backward = torch.Tensor.backward

    def observed_backward(self, *args, **kwargs):
        flows: dict[str, torch.Tensor] = {}
        hooks = [p.register_hook(lambda g, n=n: flows.__setitem__(n, g.clone())) for n, p in params.items()]
        try:
            plain_backward(self, *args, **kwargs)
        finally:
            for hook in hooks:
                hook.remove()
        passes.append(flows)

    torch.Tensor.backward = observed_backward
    try:
        exec(cell, namespace)
    finally:
        torch.Tensor.backward = plain_backward
    return passes


def _assert_summarises(summary: dict, expected: torch.Tensor) -> None:
    assert summary is not None and summary.get("unavailable") is None, summary
    assert summary["shape"] == list(expected.shape)
    for key, value in (
        ("min", expected.min()),
        ("max", expected.max()),
        ("mean", expected.mean()),
        ("norm", expected.norm()),
    ):
        assert math.isclose(summary[key], float(value), rel_tol=1e-4, abs_tol=1e-6), key


@pytest.mark.parametrize("name", list(CELLS))
def test_flowed_gradient_of_each_pass_matches_torch(ipython, name):
    cell = CELLS[name]
    expected = _flowed_by_torch(cell)
    ipython.run(MODEL)
    run = ipython.run("%%autograd_trace -o tr\n" + cell)
    assert run.error is None
    trace = ipython.user_ns["tr"]
    assert len(trace.backward) == len(expected)
    for passage, flows in zip(trace.backward, expected, strict=True):
        for weight in WEIGHTS:
            _assert_summarises(passage["grads"][trace.tensor(weight)["id"]], flows[weight])


def test_flowed_and_stored_gradients_differ_where_the_cell_changed_grad(ipython):
    ipython.run(MODEL)
    ipython.run("%%autograd_trace -o tr\n" + CELLS["clipping after the pass"])
    trace = ipython.user_ns["tr"]
    weight = trace.tensor("model.0.weight")
    flowed = trace.backward[0]["grads"][weight["id"]]
    stored = weight["grad"]
    assert stored["norm"] < flowed["norm"]
    _assert_summarises(stored, ipython.user_ns["model"][0].weight.grad)


def test_no_reference_to_a_gradient_outlives_the_block(ipython):
    ipython.run(MODEL)
    ipython.run(
        "import torchlesson, weakref\n"
        "with torchlesson.trace() as tr:\n"
        + textwrap.indent(CELLS["one step"], "    ")
        + "grad_ref = weakref.ref(model[0].weight.grad)\n"
    )
    ipython.run("model[0].weight.grad = None")
    assert ipython.user_ns["grad_ref"]() is None
    # read after the gradient is gone: the trace says so instead of inventing numbers
    trace = ipython.user_ns["tr"]
    weight = trace.tensor("model.0.weight")
    assert trace.backward[0]["grads"][weight["id"]]["unavailable"] == "freed"


def test_a_gradient_changed_after_the_block_is_not_misreported(ipython):
    ipython.run(MODEL)
    ipython.run(
        "import torchlesson\nwith torchlesson.trace() as tr:\n" + textwrap.indent(CELLS["one step"], "    ")
    )
    ipython.run("model[0].weight.grad.zero_()")
    trace = ipython.user_ns["tr"]
    weight = trace.tensor("model.0.weight")
    assert trace.backward[0]["grads"][weight["id"]]["unavailable"] == "changed after the trace"
    assert weight["grad"]["unavailable"] == "changed after the trace"


def test_the_cell_still_sees_its_own_gradients(ipython):
    """Holding a .grad for later must not change what the learner's code computes with it."""
    ipython.run(MODEL)
    ipython.run(CELLS["loop, zero_grad zeroes in place"])
    plain = [p.detach().clone() for p in ipython.user_ns["model"].parameters()]
    ipython.run(MODEL)
    ipython.run("%%autograd_trace\n" + CELLS["loop, zero_grad zeroes in place"])
    traced = list(ipython.user_ns["model"].parameters())
    assert all(torch.equal(a, b) for a, b in zip(plain, traced, strict=True))
