"""The trace engine: what it captures, through both entry points, checked against torch itself."""

from __future__ import annotations

import gc
import json
import re
import textwrap

import pytest
import torch

import _seed as seed

SEED_CELL = "import torch\n" + seed.SEED_CELL
SEED_SECOND = "import torch\n" + seed.SEED_SECOND


def run_traced(ipython, code: str, entry: str):
    """Run ``code`` traced through the magic or the Python API; return (CellRun, Trace)."""
    if entry == "magic":
        run = ipython.run("%%autograd_trace -o _trace\n" + code)
    else:
        body = textwrap.indent(code, "    ")
        run = ipython.run(f"import torchlesson\nwith torchlesson.trace() as _trace:\n{body}")
    return run, ipython.user_ns["_trace"]


def line_offset(entry: str) -> int:
    """The API wraps the code in two lines (import, with): its lines count from the cell's top."""
    return 0 if entry == "magic" else 2


@pytest.fixture(params=["magic", "api"])
def entry(request) -> str:
    return request.param


def test_seed_cell_gradients(ipython, entry):
    run, trace = run_traced(ipython, SEED_CELL, entry)
    assert run.error is None
    off = line_offset(entry)
    x, y, z, loss = (trace.tensor(n) for n in ("x", "y", "z", "loss"))
    assert x["grad"]["values"] == [2.0, 2.0, 2.0]
    assert (x["is_leaf"], y["is_leaf"]) == (True, False)
    assert [t["grad_fn"] for t in (x, y, z, loss)] == [None, "MulBackward0", "AddBackward0", "SumBackward0"]
    assert [t["line"] for t in (x, y, z, loss)] == [2 + off, 3 + off, 4 + off, 5 + off]
    assert trace.flowing_grad("y")["values"] == [1.0, 1.0, 1.0]
    assert trace.flowing_grad("z")["values"] == [1.0, 1.0, 1.0]
    assert trace.flowing_grad("x")["values"] == [2.0, 2.0, 2.0]
    (passage,) = trace.backward
    names = {n["id"]: n["name"] for n in trace.to_dict()["autograd"]["nodes"]}
    assert [names[n] for n in passage["order"]] == [
        "SumBackward0",
        "AddBackward0",
        "MulBackward0",
        "AccumulateGrad",
    ]
    assert passage["line"] == 6 + off
    assert passage["root"] == [loss["id"]]
    assert passage["accumulated"] == [x["id"]]
    mul = next(op for op in trace.ops if op["name"] == "mul")
    assert mul["inputs"] == [{"tensor": x["id"]}, {"value": "2"}]
    assert mul["outputs"] == [y["id"]]
    assert mul["line"] == 3 + off and mul["grad_enabled"] is True


def test_seed_second_example(ipython, entry):
    run, trace = run_traced(ipython, SEED_SECOND, entry)
    assert "Gradient of x: tensor([10., 14., 18.])" in run.stdout
    assert trace.tensor("x")["grad"]["values"] == [10.0, 14.0, 18.0]
    assert trace.flowing_grad("z")["values"] == [10.0, 14.0, 18.0]
    assert trace.backward[0]["gradient"]["values"] == [1.0, 1.0, 1.0]
    assert trace.tensor("y")["requires_grad"] is False


def test_to_dict_is_json_and_follows_the_schema(ipython):
    _, trace = run_traced(ipython, SEED_CELL, "magic")
    data = json.loads(json.dumps(trace.to_dict(), allow_nan=False))
    assert data["schema"] == "torchlesson.trace/1"
    assert set(data) >= {"tensors", "ops", "autograd", "backward", "error", "truncated", "lines", "cuts"}
    tensor_keys = {"id", "name", "shape", "dtype", "device", "requires_grad", "is_leaf", "grad_fn", "line"}
    for tensor in data["tensors"]:
        assert tensor_keys <= set(tensor)
        assert {"shape", "dtype", "min", "max", "mean", "norm"} <= set(tensor["value"])
    assert data["tensors"][0]["dtype"] == "float32" and data["tensors"][0]["device"] == "cpu"
    assert {"source", "target"} <= set(data["autograd"]["edges"][0])
    assert data["lines"][1] == "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)"


def test_intermediate_gradients_match_torch(ipython):
    """Every flowing gradient equals what retain_grad() reports on the same code (torch as the oracle)."""
    code = """\
import torch
torch.manual_seed(0)
x = torch.randn(4, 5, requires_grad=True)
w = torch.randn(5, 3, requires_grad=True)
h = x @ w
a = h.relu()
s = a.sigmoid() * 3
loss = (s ** 2).mean()
loss.backward()
"""
    _, trace = run_traced(ipython, code, "magic")
    oracle = {}
    exec(code.replace("loss.backward()", "[t.retain_grad() for t in (h, a, s)]\nloss.backward()"), oracle)
    for name in ("h", "a", "s"):
        flowed = trace.flowing_grad(name)
        expected = oracle[name].grad
        assert flowed["shape"] == list(expected.shape)
        assert torch.allclose(torch.tensor(flowed["values"]), expected, rtol=1e-6, atol=1e-7)
    assert torch.allclose(torch.tensor(trace.tensor("w")["grad"]["values"]), oracle["w"].grad, rtol=1e-6)
    # the intermediates keep no .grad and no retain_grad after tracing
    assert ipython.user_ns["h"].retains_grad is False


def test_a_gradient_passed_on_as_a_view_is_summarised_for_each_tensor(ipython):
    """TBackward hands ``grad.t()`` on: one memory, two tensors, each with its own shape."""
    code = """\
import torch
torch.manual_seed(0)
x = torch.randn(30, 20, requires_grad=True)
h = x * 2
ht = h.t()
loss = (ht * torch.randn(20, 30)).sum()
loss.backward()
"""
    _, trace = run_traced(ipython, code, "magic")
    oracle = {}
    exec(code.replace("loss.backward()", "h.retain_grad()\nht.retain_grad()\nloss.backward()"), oracle)
    for name in ("h", "ht"):
        flowed, expected = trace.flowing_grad(name), oracle[name].grad
        assert flowed["shape"] == list(expected.shape)
        for key, value in (("min", expected.min()), ("max", expected.max()), ("norm", expected.norm())):
            assert flowed[key] == pytest.approx(float(value), rel=1e-5)


def test_module_paths_and_parameter_names(ipython):
    code = """\
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Identity(), nn.Linear(3, 2))
out = model(torch.randn(5, 4))
loss = out.pow(2).sum()
loss.backward()
"""
    _, trace = run_traced(ipython, code, "magic")
    linears = [op for op in trace.ops if op["name"] == "linear"]
    assert [op["module"] for op in linears] == ["model.0", "model.3"]
    assert all(op["line"] == 5 for op in linears)
    relu = next(op for op in trace.ops if op["name"] == "relu")
    assert relu["module"] == "model.1"
    # what each module made and returned; nn.Identity returns its input: that stays model.1's
    made = {t["id"]: t for t in trace.tensors}
    first, second = (made[op["outputs"][0]] for op in (linears[0], relu))
    assert (first["made_by"], first["output_of"], first["name"]) == ("linear", "model.0", None)
    assert (second["made_by"], second["output_of"]) == ("relu", "model.1")
    assert trace.tensor("out")["output_of"] == "model.3"
    weight = trace.tensor("model.0.weight")
    assert weight["kind"] == "parameter" and weight["module"] == "model.0"
    assert weight["shape"] == [3, 4]
    grad = ipython.user_ns["model"][0].weight.grad
    assert weight["grad"]["norm"] == pytest.approx(grad.norm().item(), rel=1e-5)
    assert trace.flowing_grad("model.0.weight")["norm"] == pytest.approx(grad.norm().item(), rel=1e-5)


def test_ops_inside_functions_get_the_calling_cell_line(ipython):
    ipython.run("import torch\ndef double(t):\n    return t * 2\n")
    _, trace = run_traced(ipython, "a = torch.ones(2, requires_grad=True)\n\nb = double(a)\n", "magic")
    mul = next(op for op in trace.ops if op["name"] == "mul")
    assert mul["line"] == 3
    assert trace.tensor("b")["line"] == 3


def test_reads_and_printing_are_not_operations(ipython):
    code = (
        "import torch\nx = torch.ones(2, 3)\nprint(x.shape, x.dtype, x.requires_grad, repr(x), x.size(0))\n"
    )
    run, trace = run_traced(ipython, code, "magic")
    assert "torch.Size([2, 3])" in run.stdout
    assert [op["name"] for op in trace.ops] == ["ones"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("b = a.detach()", "detach"),
        ("with torch.no_grad():\n    b = a * 2", "no_grad"),
        ("with torch.inference_mode():\n    b = a * 2", "inference_mode"),
        ("b = a.argmax()", "integer dtype"),
    ],
)
def test_where_gradient_flow_stops(ipython, code, reason):
    _, trace = run_traced(ipython, "import torch\na = torch.ones(3, requires_grad=True)\n" + code, "magic")
    (cut,) = trace.to_dict()["cuts"]
    assert cut["reason"] == reason
    assert cut["tensor"] == trace.tensor("b")["id"]
    assert cut["source"] == trace.tensor("a")["id"]
    assert trace.tensor("b")["requires_grad"] is False


def test_requires_grad_false_is_a_cut(ipython):
    _, trace = run_traced(
        ipython, "import torch\na = torch.ones(3, requires_grad=True)\na.requires_grad_(False)", "magic"
    )
    (cut,) = trace.to_dict()["cuts"]
    assert cut["reason"] == "requires_grad_(False)" and cut["tensor"] == trace.tensor("a")["id"]


def test_inplace_ops_record_the_version_counter(ipython):
    code = "import torch\na = torch.zeros(3)\na.add_(1)\na.mul_(2)\nb = torch.ones(2, requires_grad=True) * 1\nb.relu_()\n"
    _, trace = run_traced(ipython, code, "magic")
    add, mul = (op for op in trace.ops if op["name"] in ("add_", "mul_"))
    a = trace.tensor("a")["id"]
    assert add["inplace"] and add["outputs"] == [a] and add["version"] == {a: 1}
    assert mul["version"] == {a: 2}
    assert trace.tensor("a")["value"]["values"] == [2.0, 2.0, 2.0]
    relu = next(op for op in trace.ops if op["name"] == "relu_")
    assert relu["inplace"] and trace.tensor("b")["grad_fn"] == "ReluBackward0"


def test_shape_error_shows_both_shapes_and_the_same_traceback(ipython):
    code = "import torch\na = torch.ones(2, 3)\nb = torch.ones(4, 5)\nc = a @ b\n"
    plain = ipython.run(code)
    traced, trace = run_traced(ipython, code, "magic")
    assert type(traced.error) is type(plain.error) is RuntimeError
    assert str(traced.error) == str(plain.error)
    # each names its own cell, by the count the notebook shows next to it: "Cell In[N], line 4"
    # (IPython 8+), "<ipython-input-N-...> in <cell line: 0>()" and "----> 4" (IPython 7)
    numbered = re.compile(r"Cell In\[(\d+)\]|<ipython-input-(\d+)-")
    for run in (plain, traced):
        found = numbered.search(run.stdout)
        assert found and int(found[1] or found[2]) == run.result.execution_count, run.stdout
        assert re.search(r"(line 4|^-+> 4 )", run.stdout, re.M)
    assert numbered.sub("Cell", traced.stdout) == numbered.sub("Cell", plain.stdout)
    assert "torchlesson" not in traced.stdout and "overrides.py" not in traced.stdout
    error = trace.error
    assert error["type"] == "RuntimeError" and error["line"] == 4 and error["op_name"] == "matmul"
    assert [i["shape"] for i in error["inputs"]] == [[2, 3], [4, 5]]
    assert "mat1 and mat2 shapes cannot be multiplied" in error["message"]
    assert [t["name"] for t in trace.tensors] == ["a", "b"]


def test_inplace_error_in_backward_names_the_op_that_modified(ipython):
    code = """\
import torch
x = torch.ones(3, requires_grad=True)
y = x.sigmoid()
y.mul_(2)
y.sum().backward()
"""
    run, trace = run_traced(ipython, code, "magic")
    assert isinstance(run.error, RuntimeError) and "modified by an inplace operation" in str(run.error)
    error = trace.error
    assert error["line"] == 5 and error["op_name"] == "backward"
    culprit = next(op for op in trace.ops if op["id"] == error["modified_by"])
    assert culprit["name"] == "mul_" and culprit["line"] == 4


def test_several_passes_are_told_apart(ipython):
    code = """\
import torch
w = torch.tensor([1.0, -2.0], requires_grad=True)
loss = (w * w).sum()
loss.backward(retain_graph=True)
loss.backward()
"""
    _, trace = run_traced(ipython, code, "magic")
    first, second = trace.backward
    assert (first["line"], second["line"]) == (4, 5)
    assert first["retain_graph"] is True and second["retain_graph"] is False
    assert first["grads"][trace.tensor("w")["id"]]["values"] == [2.0, -4.0]
    assert trace.tensor("w")["grad"]["values"] == [4.0, -8.0]  # accumulated twice


def test_autograd_grad_records_the_gradients_it_returns(ipython):
    code = """\
import torch
x = torch.tensor([1.0, 2.0], requires_grad=True)
y = (x ** 3).sum()
(g,) = torch.autograd.grad(y, x, create_graph=True)
g.sum().backward()
"""
    _, trace = run_traced(ipython, code, "magic")
    grad_pass, backward_pass = trace.backward
    assert grad_pass["kind"] == "grad" and grad_pass["create_graph"] is True
    assert grad_pass["grads"][trace.tensor("x")["id"]]["values"] == [3.0, 12.0]
    assert backward_pass["kind"] == "backward"
    assert trace.tensor("x")["grad"]["values"] == [6.0, 12.0]


def test_earlier_cells_nodes_are_marked_earlier(ipython):
    ipython.run("import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 3")
    _, trace = run_traced(ipython, "z = (y + 1).sum()\nz.backward()", "magic")
    nodes = {n["name"]: n for n in trace.to_dict()["autograd"]["nodes"]}
    assert nodes["MulBackward0"]["earlier"] is True
    assert nodes["AddBackward0"]["earlier"] is False
    assert trace.tensor("y")["created"] is False and trace.tensor("z")["created"] is True
    assert trace.flowing_grad("y")["values"] == [1.0, 1.0]


def test_meta_device_is_reported(ipython):
    code = "import torch\na = torch.ones(2, 3, device='meta', requires_grad=True)\nb = (a * 2).sum()\n"
    run, trace = run_traced(ipython, code, "magic")
    assert run.error is None
    assert {t["device"] for t in trace.tensors} == {"meta"}
    assert trace.tensor("a")["value"]["values"] is None  # a meta tensor has no values to show


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_device_is_reported(ipython):
    code = "import torch\na = torch.ones(3, device='cuda', requires_grad=True)\n(a * 2).sum().backward()\n"
    _, trace = run_traced(ipython, code, "magic")
    assert trace.tensor("a")["device"] == "cuda:0"
    assert trace.tensor("a")["grad"]["values"] == [2.0, 2.0, 2.0]


def test_max_ops_truncates_but_the_cell_runs_to_the_end(ipython):
    code = "import torch\nt = torch.zeros(1)\nfor _ in range(100):\n    t = t + 1\nprint(int(t))"
    run = ipython.run("%%autograd_trace --max-ops 10 -o tr\n" + code)
    trace = ipython.user_ns["tr"]
    assert run.stdout.strip() == "100"
    assert trace.truncated is True and len(trace.ops) == 10
    assert "truncated" in repr(trace)


def test_backward_passes_past_max_ops_are_not_recorded(ipython):
    code = (
        "import torch\nw = torch.ones(2, requires_grad=True)\n"
        "for _ in range(50):\n    (w * 3).sum().backward()\nprint(w.grad)"
    )
    run = ipython.run("%%autograd_trace --max-ops 20 -o tr\n" + code)
    trace = ipython.user_ns["tr"]
    assert "tensor([150., 150.])" in run.stdout
    assert trace.truncated is True
    assert 1 <= len(trace.backward) < 50
    assert trace.to_dict()["op_count"] > 20


def test_trace_keeps_no_tensor_alive(ipython, entry):
    _, trace = run_traced(
        ipython, SEED_CELL + "import weakref\nrefs = [weakref.ref(t) for t in (x, y, z, loss)]\n", entry
    )
    refs = ipython.user_ns["refs"]
    ipython.run("del x, y, z, loss")
    gc.collect()
    assert [r() for r in refs] == [None, None, None, None]
    assert trace.tensor("x")["grad"]["values"] == [2.0, 2.0, 2.0]  # the facts stay


def _observers() -> tuple:
    import warnings

    from torch.nn.modules import module

    return (
        len(torch.overrides._get_current_function_mode_stack()),
        len(module._global_forward_hooks),
        len(module._global_forward_pre_hooks),
        warnings.showwarning,
        list(warnings.filters),
    )


@pytest.mark.parametrize(
    "code",
    [
        "loss.backward(retain_graph=True)",
        "loss.backward(retain_graph=True)\nraise ValueError('boom')",
        "loss.backward(retain_graph=True)\nraise KeyboardInterrupt",
        "with torch.no_grad():\n    loss.backward(retain_graph=True)\n    1 / 0",
    ],
)
def test_nothing_survives_the_cell(ipython, code):
    before = _observers()
    ipython.run(SEED_CELL.replace("loss.backward()\n", ""))
    run = ipython.run("%%autograd_trace -o tr\n" + code)
    assert _observers() == before
    assert before[:3] == (0, 0, 0)
    assert ipython.shell.custom_exceptions == ()
    trace = ipython.user_ns["tr"]
    order = list(trace.backward[0]["order"])
    # the next plain cell's backward is not observed: no node hook of ours is left
    again = ipython.run("loss.backward()\nprint(x.grad)")
    assert again.error is None
    assert trace.backward[0]["order"] == order and len(trace.backward) == 1
    if "raise" in code or "1 / 0" in code:
        assert run.error is not None and trace.error is not None


# Cells that must behave identically traced and untraced (output, namespace, gradients, RNG)
# tensor kinds with no plain memory to read (torch warns that both APIs are new or deprecated)
NESTED_CELL = (
    "import torch, warnings\nwarnings.simplefilter('ignore')\n"
    "nt = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)])\n"
    "jt = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged)\n"
)
QUANTIZED_CELL = (
    "import torch, warnings\nwarnings.simplefilter('ignore')\n"
    "q = torch.quantize_per_tensor(torch.linspace(0, 1, 200), 0.01, 0, torch.quint8)\n"
    "small = torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), 0.1, 0, torch.quint8)\n"
)

EQUIVALENCE_CELLS = {
    "seed": [SEED_CELL],
    "seed second example": [SEED_SECOND],
    "seed tensors": [
        "import torch, numpy as np\ntensor_from_list = torch.tensor([1, 2, 3])\nprint(tensor_from_list)\n"
        "random_tensor = torch.rand(3, 3)\nprint(random_tensor)\n"
        "numpy_array = np.array([1, 2, 3])\ntensor_from_numpy = torch.from_numpy(numpy_array)\n"
        "numpy_array[0] = 7\nprint(tensor_from_numpy)"
    ],
    "training steps": [
        "import torch\nfrom torch import nn\nmodel = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))\n"
        "opt = torch.optim.Adam(model.parameters(), lr=0.1)\ndata, target = torch.randn(16, 4), torch.randn(16, 1)",
        "for step in range(3):\n    opt.zero_grad()\n    loss = nn.functional.mse_loss(model(data), target)\n"
        "    loss.backward()\n    opt.step()\n    print(step, round(loss.item(), 6))",
    ],
    "dropout uses the random generator": [
        "import torch\ndrop = torch.nn.Dropout(0.5)\nx = torch.ones(8, requires_grad=True)\ny = drop(x)\n"
        "y.sum().backward()\nprint(x.grad)\nprint(torch.rand(2))",
    ],
    "retain_graph and accumulation": [
        "import torch\nw = torch.tensor([0.5, -1.0], requires_grad=True)\nl = (w.exp() * w).sum()\n"
        "l.backward(retain_graph=True)\nl.backward()\nprint(w.grad)\nw.grad.zero_()\nprint(w.grad)"
    ],
    "create_graph": [
        "import torch\nx = torch.tensor([2.0], requires_grad=True)\ny = x ** 4\n"
        "(g,) = torch.autograd.grad(y, x, create_graph=True)\n(g2,) = torch.autograd.grad(g, x)\nprint(g, g2)"
    ],
    "custom Function": [
        "import torch\nclass Cube(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, x):\n"
        "        ctx.save_for_backward(x)\n        return x ** 3\n    @staticmethod\n    def backward(ctx, g):\n"
        "        (x,) = ctx.saved_tensors\n        return 3 * x ** 2 * g\n"
        "a = torch.tensor([1.0, 2.0], requires_grad=True)\nb = Cube.apply(a).sum()\nb.backward()\nprint(a.grad)"
    ],
    "user tensor hooks": [
        "import torch\nseen = []\na = torch.ones(3, requires_grad=True)\nh = a * 2\n"
        "h.register_hook(lambda g: seen.append(g.clone()) or g * 10)\nh.sum().backward()\nprint(a.grad, seen)"
    ],
    "long chain": [
        "import torch\nv = torch.tensor([1.0001], requires_grad=True)\nu = v\nfor _ in range(300):\n"
        "    u = u * 1.001 + 0.0001\nu.sum().backward()\nprint(v.grad)"
    ],
    "warnings point at the learner's line": [
        "import torch\nx = torch.ones(2, 3)\ny = torch.nn.functional.softmax(x)\n"
        "w = torch.ones(2, requires_grad=True)\nv = w * 2\nprint(v.grad)"
    ],
    "torch.func transforms": [
        "import torch\nfrom torch.func import grad, vmap\nx = torch.tensor([1.0, 2.0, 3.0])\n"
        "g = grad(lambda t: (t ** 3).sum())(x)\nv = vmap(lambda t: t * 2)(torch.ones(2, 3))\nprint(g, v)"
    ],
    "a tensor subclass that logs its torch calls": [
        "import torch\nclass Logged(torch.Tensor):\n    calls = []\n    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        cls.calls.append(getattr(func, '__name__', '?'))\n"
        "        return super().__torch_function__(func, types, args, kwargs or {})\n"
        "w = torch.ones(3, requires_grad=True).as_subclass(Logged)\nloss = (w * 2).sum()\nloss.backward()\n"
        "print(type(loss).__name__, Logged.calls)",
        "print(Logged.calls)",
    ],
    "nested tensors": [
        NESTED_CELL + "print(nt.is_nested, (jt * 2).is_nested)\ndel nt, jt  # torch.equal can't"
    ],
    "quantized tensors": [QUANTIZED_CELL + "print(q.dequantize().sum(), small.int_repr())"],
    "no torch at all": ["total = sum(range(10))\nprint('total', total)\nnames = [n.upper() for n in 'abc']"],
    "last expression is displayed": ["import torch\nt = torch.arange(4.0)\nt * 2"],
}


def _snapshot(ns: dict) -> dict:
    import types

    out = {}
    for key, value in ns.items():
        if key.startswith("_") or key in ("In", "Out", "exit", "quit", "get_ipython"):
            continue
        if isinstance(value, torch.Tensor):
            grad = value.grad if value.is_leaf else None
            out[key] = (
                value.detach().clone(),
                value.requires_grad,
                type(value.grad_fn).__name__,
                None if grad is None else grad.clone(),
            )
        elif isinstance(value, torch.nn.Module):
            out[key] = [(n, p.detach().clone(), p.grad) for n, p in value.named_parameters()]
        elif isinstance(value, (types.ModuleType, type, types.FunctionType)) or callable(value):
            out[key] = type(value).__name__
        else:
            out[key] = repr(value)
    return out


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or type(a).__name__ != type(b).__name__ or a.dtype != b.dtype:
            return False
        with torch._C.DisableTorchFunctionSubclass():  # each run defined its own subclass
            return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("name", list(EQUIVALENCE_CELLS))
def test_traced_and_plain_runs_are_identical(ipython, name):
    import random

    def run_all(prefix: str):
        ipython.reset()
        ipython.run("%load_ext torchlesson")
        torch.manual_seed(1234)
        random.seed(1234)
        runs = [ipython.run(prefix + cell) for cell in EQUIVALENCE_CELLS[name]]
        return runs, _snapshot(ipython.user_ns), torch.get_rng_state().clone(), random.getstate()

    plain, plain_ns, plain_rng, plain_py = run_all("")
    traced, traced_ns, traced_rng, traced_py = run_all("%%autograd_trace\n")
    for p, t in zip(plain, traced, strict=True):
        assert t.stdout == p.stdout
        assert t.stderr == p.stderr
        assert (t.error is None) == (p.error is None)
        plain_results = list(p.outputs)
        traced_results = [o for o in t.outputs if "application/vnd.jupyter.widget-view+json" not in o]
        traced_results = [
            o for o in traced_results if not o.get("text/plain", "").startswith("autograd trace")
        ]
        assert traced_results == plain_results
    assert plain_ns.keys() == traced_ns.keys()
    for key in plain_ns:
        assert _same(plain_ns[key], traced_ns[key]), key
    assert torch.equal(plain_rng, traced_rng)
    assert plain_py == traced_py


def test_warnings_name_the_learners_line_as_without_tracing(ipython):
    """A warning raised inside torch names the cell line, and "once per line" still holds."""
    import warnings

    code = (
        "import torch\nx = torch.ones(2, 3)\nfor _ in range(2):\n    y = torch.nn.functional.softmax(x)\n"
        "w = torch.ones(2, requires_grad=True)\nv = w * 2\nv.grad"
    )

    def caught(prefix: str) -> list[tuple]:
        ipython.reset()
        ipython.run("%load_ext torchlesson")
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("default")
            ipython.run(prefix + code)
        return [(r.category, str(r.message)[:40], r.lineno, "torchlesson" in r.filename) for r in records]

    plain, traced = caught(""), caught("%%autograd_trace\n")
    assert [r[2] for r in plain] == [4, 7]  # the softmax line once (not twice), then the .grad line
    assert traced == plain


def test_warnings_in_a_python_c_script_are_shown_as_without_tracing():
    """`python -c` code's module loader cannot give its source: a relocated warning must not ask."""
    import subprocess
    import sys

    body = "x = torch.ones(2, 3)\ny = torch.nn.functional.softmax(x)\nprint('ran')\n"
    traced = "import torch, torchlesson\nwith torchlesson.trace():\n" + textwrap.indent(body, "    ")
    plain = "import torch, torchlesson\nif True:\n" + textwrap.indent(body, "    ")
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        for code in (plain, traced)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.stdout == "ran\n"
    assert runs[1].stderr == runs[0].stderr
    assert runs[0].stderr.startswith("<string>:4: UserWarning: Implicit dimension choice for softmax")


def test_tensors_made_where_torch_cannot_see_are_still_listed(ipython):
    """``torch.from_numpy`` is not a torch function the mode sees; the tensor is still the cell's."""
    code = "import numpy as np, torch\na = np.array([1.0, 2.0])\nb = torch.from_numpy(a)\nc = b * 2\nd = torch.from_numpy(a)"
    _, trace = run_traced(ipython, code, "magic")
    for name, line in (("b", 3), ("d", 5)):
        tensor = trace.tensor(name)
        assert tensor["created"] is True
        assert tensor["line"] == line
        assert tensor["dtype"] == "float64"
    assert trace.tensor("c")["created"] is True


def test_parameters_keep_their_path_and_their_grads_are_named(ipython):
    code = """\
import torch
from torch import nn
model = nn.Sequential(nn.Linear(3, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
model(torch.ones(4, 3)).sum().backward()
opt.step()
for p in model.parameters():
    pass
"""
    _, trace = run_traced(ipython, code, "magic")
    names = {t["name"] for t in trace.tensors}
    assert {"model.0.weight", "model.0.bias", "model.0.weight.grad", "model.0.bias.grad"} <= names
    assert "p" not in names
    step = [op for op in trace.ops if op["line"] == 6]
    assert step, "optimizer.step() ran operations on line 6"
    assert trace.tensor("model.0.weight")["id"] in {o for op in step for o in op["outputs"]}


def test_values_at_the_end_include_updates_through_data(ipython, entry):
    """``w.data -= ...`` (the classic hand-written SGD step) changes values without a version bump."""
    code = "import torch\nw = torch.ones(2, requires_grad=True)\n(w * 2).sum().backward()\nw.data -= 0.1 * w.grad\n"
    _, trace = run_traced(ipython, code, entry)
    assert trace.tensor("w")["value"]["values"] == pytest.approx([0.8, 0.8])


def test_a_submodule_bound_to_its_own_variable_is_named_by_its_place_in_the_model(ipython):
    code = (
        "import torch\nfrom torch import nn\nact = nn.Tanh()\nmodel = nn.Sequential(nn.Linear(2, 2), act)\n"
        "model(torch.ones(1, 2)).sum().backward()"
    )
    _, trace = run_traced(ipython, code, "magic")
    assert [op["module"] for op in trace.ops if op["name"] in ("linear", "tanh")] == ["model.0", "model.1"]
    assert "act" not in trace.to_dict()["modules"]


def test_values_inside_torch_func_are_marked_not_invented(ipython):
    code = "import torch\nfrom torch.func import grad\nx = torch.tensor([1.0, 2.0])\ng = grad(lambda t: (t ** 3).sum())(x)\n"
    _, trace = run_traced(ipython, code, "magic")
    assert trace.to_dict()["stopped"] is None
    assert trace.tensor("g")["value"]["values"] == [3.0, 12.0]
    inside = [t for t in trace.tensors if t["value"].get("unavailable") == "inside torch.func"]
    assert inside and all(t["value"]["values"] is None for t in inside)


STOPPING_CELL = """\
import torch
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x * 2
z = (y + 3).relu()
loss = z.sum()
loss.backward()
print(x.grad, z)
"""


@pytest.mark.parametrize(
    ("where", "attr", "nth"),
    [
        ("forward", "record_op", 2),  # while recording an operation
        ("frames", "site", 3),  # before an operation runs
        ("facts", "summarize_shared", 1),  # inside a node pre-hook, while backward runs
        ("backward", "_begin", 1),  # setting up the backward pass
    ],
)
def test_a_failure_inside_the_tracer_stops_the_recording_not_the_cell(ipython, monkeypatch, where, attr, nth):
    """NOTE [the tracer never breaks the cell]: the learner's code runs on as without tracing."""
    from torchlesson.capture import _backward, _facts, _forward, _frames

    plain = ipython.run(STOPPING_CELL)
    holder = {
        "forward": _forward.Forward,
        "frames": _frames.Block,
        "facts": _facts,
        "backward": _backward.Backward,
    }[where]
    original, calls = getattr(holder, attr), []

    def failing(*args, **kwargs):
        calls.append(attr)
        if len(calls) == nth:
            raise RuntimeError("something the tracer cannot read")
        return original(*args, **kwargs)

    monkeypatch.setattr(holder, attr, failing)
    before = _observers()
    traced = ipython.run("%%autograd_trace -o tr\n" + STOPPING_CELL)
    monkeypatch.undo()
    assert len(calls) >= nth
    assert traced.error is None
    assert traced.stdout == plain.stdout
    trace = ipython.user_ns["tr"]
    stopped = trace.to_dict()["stopped"]
    assert stopped["type"] == "RuntimeError" and stopped["message"] == "something the tracer cannot read"
    assert _observers() == before
    assert "recording stopped after" in trace.text_view().text
    assert json.loads(json.dumps(trace.to_dict(), allow_nan=False))  # still a whole, readable trace


def test_nested_tensors_are_listed_with_the_shape_torch_can_tell(ipython):
    run, trace = run_traced(ipython, NESTED_CELL, "magic")
    assert run.error is None and trace.to_dict()["stopped"] is None
    json.dumps(trace.to_dict(), allow_nan=False)
    strided, jagged = trace.tensor("nt"), trace.tensor("jt")
    assert strided["shape"] == [2, "*", 3] and strided["value"]["unavailable"] == "nested tensor"
    assert jagged["shape"][0] == 2 and jagged["shape"][2] == 3 and isinstance(jagged["shape"][1], str)


def test_quantized_tensors_show_the_numbers_they_stand_for(ipython):
    run, trace = run_traced(ipython, QUANTIZED_CELL, "magic")
    assert run.error is None and trace.to_dict()["stopped"] is None
    assert trace.tensor("small")["value"]["values"] == [1.0, 2.0]
    assert trace.tensor("q")["dtype"] == "quint8"
    assert trace.tensor("q")["value"]["mean"] == pytest.approx(0.5, abs=1e-3)


def test_tensors_kept_in_a_list_or_dict_are_named_by_their_place(ipython):
    code = (
        "import torch\nparts = [torch.ones(2, requires_grad=True) for _ in range(3)]\n"
        "batch = {'x': torch.ones(2)}\nc = torch.cat(parts) * batch['x'].repeat(3)\nc.sum().backward()\n"
    )
    _, trace = run_traced(ipython, code, "magic")
    assert trace.tensor("parts[1]")["grad"]["values"] == [1.0, 1.0]
    assert trace.tensor("batch['x']")["requires_grad"] is False
    assert [t["name"] for t in trace.tensors if t["name"] and t["name"].startswith("parts")] == [
        "parts[0]",
        "parts[1]",
        "parts[2]",
    ]
    # IPython's history of outputs is not a name the learner gave
    ipython.run("import torch\nshown = torch.ones(3)\nshown")
    _, again = run_traced(ipython, "del shown\ny = Out[max(Out)] * 2\n", "magic")
    assert all(not (t["name"] or "").startswith("Out[") for t in again.tensors)


def test_text_view_names_columns_and_long_values(ipython):
    """--text: the widget's names, one column width for all, statistics instead of 48 numbers."""
    ipython.run(
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
        "model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))\n"
        "inputs, targets = torch.randn(8, 20), torch.randint(0, 3, (8,))"
    )
    run = ipython.run(
        "%%autograd_trace --text\nloss = nn.functional.cross_entropy(model(inputs), targets)\nloss.backward()"
    )
    text = run.outputs[-1]["text/plain"]
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  model.")}
    assert "model.0" in rows and rows["model.0"].startswith("  model.0 output ")
    columns = {
        line.index("[") for line in text.splitlines()[2:] if line.startswith("  ") and " float32 " in line
    }
    assert len(columns) == 1, text  # the shapes line up
    weight = next(line for line in text.splitlines() if line.startswith("  model.2.weight "))
    assert ".grad = min " in weight and weight.count(",") < 10  # 48 values read as statistics


def test_each_node_of_an_inplace_modified_tensor_keeps_the_gradient_it_received(ipython):
    """NOTE [gradients of in-place versions]: y = x * 2 then y.mul_(3): the mul_ node receives 1,
    the x * 2 node receives 3 (torch's own tensor hooks on each version as the oracle)."""
    code = (
        "import torch\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ny = x * 2\n"
        "y.mul_(3)\nloss = y.sum()\nloss.backward()\n"
    )
    _, trace = run_traced(ipython, code, "magic")
    oracle: dict = {}
    exec(
        code.replace(
            "y = x * 2\n", "y = x * 2\nseen = []\ny.register_hook(lambda g: seen.append(('v0', g)))\n"
        ).replace("y.mul_(3)\n", "y.mul_(3)\ny.register_hook(lambda g: seen.append(('v1', g)))\n"),
        oracle,
    )
    received = {name: g.tolist() for name, g in oracle["seen"]}
    data = trace.to_dict()
    names = {n["id"]: n["name"] for n in data["autograd"]["nodes"]}
    passage = data["backward"][0]
    muls = [n for n in passage["order"] if names[n] == "MulBackward0"]  # mul_'s node runs first
    assert [passage["node_grads"][n]["values"] for n in muls] == [received["v1"], received["v0"]]
    assert passage["grads"][trace.tensor("y")["id"]]["values"] == received["v0"]  # the slot: oldest
    assert trace.tensor("x")["grad"]["values"] == [6.0, 6.0, 6.0]


@pytest.mark.parametrize(
    "modify",
    ["y.mul_(2)", "y.detach().zero_()", "y.detach()[1:].fill_(0)", "y[0] = 5", "y.view(3, 1).add_(1)"],
)
def test_a_backward_broken_in_place_names_the_write_whichever_tensor_made_it(ipython, modify):
    """The write that broke backward is found through any tensor on the same memory: the tensor
    itself, a detached alias, a slice of one, a view."""
    code = f"import torch\nx = torch.ones(3, requires_grad=True)\ny = x.sigmoid()\n{modify}\ny.sum().backward()\n"
    run, trace = run_traced(ipython, code, "magic")
    assert isinstance(run.error, RuntimeError) and "modified by an inplace operation" in str(run.error)
    culprit = next(op for op in trace.ops if op["id"] == trace.error["modified_by"])
    assert culprit["line"] == 4 and culprit["inplace"]


TRAINING_LOOP = """\
import torch
from torch import nn
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
opt = torch.optim.{optimizer}(net.parameters(), lr=0.1)
x = torch.randn(5, 4)
norms = []
for step in range(2):
    opt.zero_grad(set_to_none={to_none})
    loss = net(x).pow(2).mean()
    loss.backward()
    before = [p.detach().norm().item() for p in net.parameters()]
    opt.step()
    norms.append((before, [p.detach().norm().item() for p in net.parameters()]))
"""


@pytest.mark.parametrize(("optimizer", "to_none"), [("SGD", True), ("SGD", False), ("Adam", True)])
def test_each_optimizer_call_lists_what_it_did(ipython, entry, optimizer, to_none):
    code = TRAINING_LOOP.format(optimizer=optimizer, to_none=to_none)
    off = line_offset(entry)
    run, trace = run_traced(ipython, code, entry)
    assert run.error is None
    calls = trace.to_dict()["optimizer_calls"]
    steps = [c for c in calls if c["method"] == "step"]
    assert len(steps) == 2
    params = [trace.tensor(f"net.{path}")["id"] for path in ("0.weight", "0.bias", "2.weight", "2.bias")]
    for step, (before, after) in zip(steps, ipython.user_ns["norms"], strict=True):
        assert (step["optimizer"], step["class"], step["lr"], step["line"]) == (
            "opt",
            optimizer,
            0.1,
            13 + off,
        )
        assert list(step["updated"]) == params  # parameters only, not Adam's state
        for tensor_id, b, a in zip(params, before, after, strict=True):
            assert step["updated"][tensor_id]["before"] == pytest.approx(b, rel=1e-5)
            assert step["updated"][tensor_id]["after"] == pytest.approx(a, rel=1e-5)
        ops = {op["id"]: op for op in trace.ops}
        assert step["ops"] and all(ops[o]["optimizer"] == step["id"] for o in step["ops"])
        assert all(ops[o]["source"] == "opt.step()" for o in step["ops"])
    zero = [c for c in calls if c["method"] == "zero_grad"]
    if to_none:  # the first zero_grad had nothing to clear; p.grad = None is no operation
        assert [c["cleared"] for c in zero] == [params]
    else:
        assert len(zero) == 1 and zero[0]["ops"] and zero[0]["cleared"] == []
    forward = [op for op in trace.ops if "optimizer" not in op and "constructor" not in op]
    assert {op["source"] for op in forward} >= {"net(x)", "net(x).pow(2).mean()"}


def test_a_constructors_operations_name_it(ipython, entry):
    code = "import torch\nfrom torch import nn\nhead = nn.Linear(20, 3)\nx = torch.ones(2, 20)\ny = head(x)\n"
    _, trace = run_traced(ipython, code, entry)
    built = [op for op in trace.ops if op.get("constructor")]
    assert {op["constructor"] for op in built} == {"Linear"}
    assert {op["source"] for op in built} == {"nn.Linear(20, 3)"}
    assert {op["name"] for op in built} >= {"kaiming_uniform_", "uniform_"}
    weight = trace.tensor("head.weight")
    assert weight["created"] is True and weight["line"] == 3 + line_offset(entry)
    linear = next(op for op in trace.ops if op["name"] == "linear")
    assert "constructor" not in linear and linear["module"] == "head"
