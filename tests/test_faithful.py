"""Tracing never changes the learner's program: cells by class, run plain and traced and compared,
through both entry points (the magic and ``torchlesson.trace()``).

Each class is a way a real cell could notice the tracer: ``torch.compile``, torch's mode stacks
(function and dispatch modes, subclasses that dispatch themselves), threads, warnings, traces inside
traces, memory written behind torch's back, uninitialised memory, interrupts and ``-o`` names.
"""

from __future__ import annotations

import gc
import json
import random
import re
import textwrap
import threading
import time
import warnings

import pytest
import torch

ENTRIES = ("magic", "api")


@pytest.fixture(params=ENTRIES)
def entry(request) -> str:
    return request.param


def cell_for(code: str, entry: str, traced: bool) -> str:
    """The cell that runs ``code`` plain or traced. Both API forms wrap it in the same two lines, so
    tracebacks and warnings name the same line numbers."""
    if entry == "magic":
        return ("%%autograd_trace -o _trace\n" + code) if traced else code
    manager = "torchlesson.trace()" if traced else "contextlib.nullcontext()"
    return f"import contextlib, torchlesson\nwith {manager} as _trace:\n" + textwrap.indent(code, "    ")


def run_fresh(ipython, cells: list[str]):
    """Run cells in a fresh namespace and cell count, with the same random state each time."""
    ipython.reset()
    ipython.run("%load_ext torchlesson")
    torch.manual_seed(1234)
    random.seed(1234)
    return [ipython.run(cell) for cell in cells]


_NUMBERED = re.compile(r"Cell In\[\d+\]|<ipython-input-\d+-[0-9a-f]+>")


def seen(run) -> tuple:
    """What a learner sees of a cell: printed text, warnings and tracebacks, the error, the results."""
    results = [
        o
        for o in run.outputs
        if "application/vnd.jupyter.widget-view+json" not in o
        and not o.get("text/plain", "").startswith("autograd trace")
    ]
    error = None if run.error is None else (type(run.error).__name__, str(run.error))
    return _NUMBERED.sub("Cell", run.stdout), _NUMBERED.sub("Cell", run.stderr), error, results


def assert_same(ipython, code: str, entry: str, after: tuple[str, ...] = ()):
    """``code`` (then the plain cells ``after``) shows the same traced and untraced; returns the trace."""
    plain = run_fresh(ipython, [cell_for(code, entry, False), *after])
    plain_ns = {k: repr(v) for k, v in ipython.user_ns.items() if k.startswith("out_")}
    traced = run_fresh(ipython, [cell_for(code, entry, True), *after])
    traced_ns = {k: repr(v) for k, v in ipython.user_ns.items() if k.startswith("out_")}
    for p, t in zip(plain, traced, strict=True):
        assert seen(t) == seen(p)
    assert traced_ns == plain_ns
    return ipython.user_ns["_trace"]


def observers() -> tuple:
    """Everything a trace installs while it runs; all of it must be as before once it ends."""
    from torch.nn.modules import module

    return (
        [type(m).__name__ for m in torch.overrides._get_current_function_mode_stack()],
        torch._C._len_torch_dispatch_stack(),
        len(module._global_forward_hooks),
        len(module._global_forward_pre_hooks),
        warnings.showwarning,
        warnings._showwarnmsg,
        list(warnings.filters),
    )


# ------------------------------------------------------------------------------ torch.compile
COMPILED = """\
import torch
torch._dynamo.reset()
from torch._dynamo.utils import counters
counters.clear()
def f(x):
    return (x * 2 + 1).sin().sum()
x = torch.linspace(-1, 1, 5, requires_grad=True)
cf = torch.compile(f, backend={backend!r}, fullgraph={fullgraph})
out_y = cf(x)
out_y.backward()
out_grad = x.grad
out_breaks = sum(counters["graph_break"].values())
print("breaks", out_breaks, round(out_y.item(), 5))
"""


@pytest.mark.parametrize(("backend", "fullgraph"), [("eager", True), ("aot_eager", False)])
def test_torch_compile_runs_as_without_tracing(ipython, entry, backend, fullgraph):
    code = COMPILED.format(backend=backend, fullgraph=fullgraph)
    trace = assert_same(ipython, code, entry)
    assert ipython.user_ns["out_breaks"] == 0
    # the compiled call is one operation, with its tensor argument and its result
    (compiled,) = [op for op in trace.ops if op["name"].startswith("compiled")]
    assert compiled["name"] == "compiled f" and compiled["compiled"] == "f"
    assert [i.get("tensor") for i in compiled["inputs"]] == [trace.tensor("x")["id"]]
    assert compiled["outputs"] == [trace.tensor("out_y")["id"]]
    assert not [op for op in trace.ops if op["name"] in ("sin", "sin.default", "mul", "mul.Tensor")]
    assert trace.tensor("x")["grad"]["values"] == pytest.approx(ipython.user_ns["x"].grad.tolist())


def test_a_compiled_module_runs_as_without_tracing(ipython, entry):
    code = """\
import torch
torch._dynamo.reset()
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
fast = torch.compile(model, backend="aot_eager")
out_y = fast(torch.ones(2, 4))
out_y.sum().backward()
out_grad = model[0].weight.grad
"""
    trace = assert_same(ipython, code, entry)
    (compiled,) = [op for op in trace.ops if op["name"].startswith("compiled")]
    assert compiled["outputs"] == [trace.tensor("out_y")["id"]]


# ------------------------------------------------------------------------------ modes and subclasses
LEFT_OPEN_MODE = """\
import torch
from torch.overrides import TorchFunctionMode
class Counting(TorchFunctionMode):
    calls = 0
    def __torch_function__(self, func, types, args=(), kwargs=None):
        Counting.calls += 1
        return func(*args, **(kwargs or {}))
Counting().__enter__()
out_y = torch.ones(3) * 2
"""


def test_a_mode_the_learner_left_open_stays_and_ours_goes(ipython, entry):
    before = observers()
    run_fresh(ipython, [cell_for(LEFT_OPEN_MODE, entry, True)])
    trace = ipython.user_ns["_trace"]
    ops = len(trace.ops)
    stack = torch.overrides._get_current_function_mode_stack()
    try:
        assert [type(m).__name__ for m in stack] == ["Counting"]
        ipython.run("for _ in range(50):\n    out_z = torch.ones(2) + 1")
        assert len(trace.ops) == ops  # no tracer is left recording
        assert ipython.user_ns["Counting"].calls >= 100
    finally:
        while torch._C._len_torch_function_stack():
            torch._C._pop_torch_function_stack()
    assert observers() == before


DISPATCH_LOGGERS = {
    "a dispatch mode": """\
import torch
from torch.utils._python_dispatch import TorchDispatchMode
class Log(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))
with Log() as log:
    x = torch.linspace(0, 1, 100, requires_grad=True)
    y = (x * 2).exp()
    y.sum().backward()
out_ops = log.ops
""",
    "a subclass that dispatches itself": """\
import torch
from torch.utils._pytree import tree_map
class Logged(torch.Tensor):
    ops = []
    @staticmethod
    def __new__(cls, elem):
        return torch.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype, requires_grad=elem.requires_grad)
    def __init__(self, elem):
        self.elem = elem
    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        cls.ops.append(str(func))
        unwrap = lambda t: t.elem if isinstance(t, Logged) else t
        wrap = lambda t: Logged(t) if isinstance(t, torch.Tensor) else t
        return tree_map(wrap, func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs or {})))
w = Logged(torch.ones(3))
v = w * 2 + 1
out_ops = Logged.ops
""",
}


@pytest.mark.parametrize("name", list(DISPATCH_LOGGERS))
def test_dispatch_loggers_see_only_the_learners_operations(ipython, entry, name):
    trace = assert_same(ipython, DISPATCH_LOGGERS[name], entry)
    assert trace.ops  # the learner's own operations are still recorded


# ------------------------------------------------------------------------------ threads
THREAD = """\
import threading, torch
from torch import nn
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 3))
other = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
stop = threading.Event()
def elsewhere():
    while not stop.is_set():
        other(torch.ones(2, 3)).sum().backward()
worker = threading.Thread(target=elsewhere)
worker.start()
"""
TRACED_WHILE_THE_THREAD_RUNS = """\
for _ in range(30):
    out_y = net(torch.ones(2, 3))
stop.set()
worker.join()
"""


def test_a_background_thread_is_not_the_traced_cell(ipython, entry):
    run_fresh(ipython, [THREAD, cell_for(TRACED_WHILE_THE_THREAD_RUNS, entry, True)])
    trace = ipython.user_ns["_trace"]
    data = trace.to_dict()
    assert sorted(data["modules"]) == ["net", "net.0"]
    assert {op["module"] for op in data["ops"]} == {None, "net.0"}
    assert sum(op["name"] == "linear" for op in data["ops"]) == 30
    assert data["backward"] == []
    assert not [t for t in data["tensors"] if (t["name"] or "").startswith("other")]


# ------------------------------------------------------------------------------ warnings
def test_warnings_caught_in_the_cell_name_the_cells_line(ipython, entry):
    code = """\
import warnings, torch
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    torch.nn.functional.softmax(torch.ones(2, 3))
    v = torch.ones(2, requires_grad=True) * 2
    v.grad
out_caught = [(w.lineno, w.category.__name__, "torch" in w.filename) for w in caught]
"""
    assert_same(ipython, code, entry)
    offset = 0 if entry == "magic" else 2
    assert ipython.user_ns["out_caught"] == [
        (4 + offset, "UserWarning", False),
        (6 + offset, "UserWarning", False),
    ]


SHOWN_ONCE = """\
import warnings, torch, torchlesson, contextlib
def old_api():
    warnings.warn("old_api is deprecated", UserWarning)
old_api()
with {manager}:
    old_api()
    x = torch.ones(2) * 2
    for _ in range(3):
        old_api()
old_api()
with {manager}:
    old_api()
print("ran")
"""


def test_a_warning_shown_once_is_not_shown_again():
    """Python's "shown once per place" memory is the same with and without traces in between (in a
    script, where nothing else resets it)."""
    import subprocess
    import sys

    runs = [
        subprocess.run(
            [sys.executable, "-c", SHOWN_ONCE.format(manager=manager)], capture_output=True, text=True
        )
        for manager in ("contextlib.nullcontext()", "torchlesson.trace()")
    ]
    assert runs[0].returncode == runs[1].returncode == 0, runs[1].stderr
    assert runs[0].stderr.count("old_api is deprecated") == 1
    assert runs[1].stderr == runs[0].stderr


# ------------------------------------------------------------------------------ traces inside traces
NESTED = """\
import torch, torchlesson
with torchlesson.trace() as out_inner:
    x = torch.ones(3, requires_grad=True)
    y = (x * 2).sum()
    y.backward()
"""


def test_a_trace_inside_a_trace_sees_only_the_learners_operations(ipython, entry):
    run_fresh(ipython, [cell_for(NESTED, entry, True)])
    outer, inner = ipython.user_ns["_trace"], ipython.user_ns["out_inner"]
    names = [op["name"] for op in inner.ops]
    assert names == ["ones", "mul", "sum"]
    assert [op["name"] for op in outer.ops] == names
    assert len(outer.backward) == len(inner.backward) == 1
    assert outer.tensor("x")["grad"]["values"] == [2.0, 2.0, 2.0]


def test_traces_closed_out_of_order_leave_nothing_behind():
    import torchlesson

    before = observers()
    first, second = torchlesson.trace(), torchlesson.trace()
    first.__enter__()
    second.__enter__()
    torch.ones(2) * 2
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert observers() == before


# ------------------------------------------------------------------------------ memory behind torch's back
@pytest.mark.parametrize(
    "write",
    [
        "w.grad.numpy()[:] = 123",
        "np.asarray(w.grad)[:] = 123",
        "torch.utils.dlpack.from_dlpack(w.grad.__dlpack__()).fill_(123)",
        "w.grad.untyped_storage().fill_(0)",
    ],
)
def test_a_gradient_written_behind_torchs_back_is_reported_as_it_flowed(ipython, entry, write):
    code = f"""\
import numpy as np, torch
w = torch.linspace(0, 1, 100, requires_grad=True)
(w * 3).sum().backward()
{write}
"""
    run_fresh(ipython, [cell_for(code, entry, True)])
    trace = ipython.user_ns["_trace"]
    flowed = trace.flowing_grad("w")
    assert flowed["min"] == flowed["max"] == 3.0
    stored = ipython.user_ns["w"].grad
    assert trace.tensor("w")["grad"]["max"] == stored.max().item() != 3.0


# ------------------------------------------------------------------------------ uninitialised memory
@pytest.mark.parametrize(
    "make",
    [
        "torch.empty(3)",
        "torch.empty(10, 10)",
        "torch.empty_like(torch.ones(4))",
        "torch.ones(2).new_empty(5)",
        "torch.empty_strided((2, 3), (3, 1))",
        "torch.empty(6).view(2, 3)",
    ],
)
def test_uninitialised_memory_is_never_shown_as_numbers(ipython, entry, make):
    code = f"import torch\nout_e = {make}\nout_f = torch.empty(2).fill_(7.0)\n"
    run_fresh(ipython, [cell_for(code, entry, True)])
    trace = ipython.user_ns["_trace"]
    data = json.loads(json.dumps(trace.to_dict(), allow_nan=False))
    empty = next(t for t in data["tensors"] if t["name"] == "out_e")
    assert empty["value"]["unavailable"] == "uninitialised"
    assert empty["value"]["values"] is None and empty["value"]["mean"] is None
    filled = next(t for t in data["tensors"] if t["name"] == "out_f")
    assert filled["value"]["values"] == [7.0, 7.0]


def test_a_model_built_in_the_cell_never_shows_its_raw_memory(ipython, entry):
    """nn.Linear makes its bias with torch.empty: that tensor, summarised at birth, is uninitialised;
    the parameters, once initialised, show their numbers."""
    code = "import torch\ntorch.manual_seed(0)\nhead = torch.nn.Linear(20, 3)\n"
    run_fresh(ipython, [cell_for(code, entry, True)])
    trace = ipython.user_ns["_trace"]
    tensors = trace.to_dict()["tensors"]
    raw = [t for t in tensors if t["made_by"] == "empty"]
    assert raw and all(t["value"]["unavailable"] == "uninitialised" for t in raw)
    bias = trace.tensor("head.bias")
    assert bias["value"]["values"] == pytest.approx(ipython.user_ns["head"].bias.tolist())
    # nothing is named after the module: no tensor was ever held by `head`
    assert not [t for t in tensors if t["name"] == "head"]


# ------------------------------------------------------------------------------ interrupts and errors
def test_interrupts_at_random_moments_leave_nothing_behind(ipython):
    """The Interrupt button (KeyboardInterrupt in the main thread) at 20 random moments of a traced
    training loop: the cell stops, the trace reads, and nothing of the tracer stays installed."""
    import _thread

    ipython.reset()
    ipython.run("%load_ext torchlesson")
    ipython.run(
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
        "model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.01)\ndata = torch.randn(32, 8)"
    )
    before = observers()
    # The clock starts when the cell's own code does: an interrupt that lands in IPython before the
    # cell runs (a busy machine can take that long) is IPython's to handle, and would stop pytest.
    started = ipython.user_ns["started"] = threading.Event()
    loop = (
        "%%autograd_trace -o tr --max-ops 1000000\nimport time\nstarted.set()\nstart = time.perf_counter()\n"
        "while time.perf_counter() - start < 5:\n    opt.zero_grad()\n"
        "    model(data).pow(2).mean().backward()\n    opt.step()\n"
    )
    rng = random.Random(20261130)

    def interrupt_after(delay: float) -> None:
        if started.wait(60):
            time.sleep(delay)
            _thread.interrupt_main()

    interrupted = 0
    for _ in range(20):
        started.clear()
        timer = threading.Thread(target=interrupt_after, args=(rng.uniform(0.0, 0.4),))
        timer.start()
        run = ipython.run(loop)
        timer.join()
        assert isinstance(run.error, KeyboardInterrupt), run.stdout[-500:]
        interrupted += 1
        assert observers() == before
        trace = ipython.user_ns["tr"]
        assert trace.error["type"] == "KeyboardInterrupt"
        assert trace.error["message"] == ""
        json.dumps(trace.to_dict(), allow_nan=False)
        assert repr(trace).startswith("autograd trace")
        again = ipython.run("model(data).sum().backward()")  # a plain cell is observed by no one
        assert again.error is None and len(trace.backward) == len(trace.to_dict()["backward"])
    assert interrupted == 20


@pytest.mark.parametrize(
    "raising",
    ["assert False", "raise ValueError()", "raise KeyboardInterrupt", "raise RuntimeError('   ')"],
)
def test_an_error_without_a_message_is_recorded_and_shown(ipython, entry, raising):
    code = f"import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\n{raising}\n"
    trace = assert_same(ipython, code, entry)
    error = trace.error
    assert error["message"] == ""
    assert error["line"] == 4 + (0 if entry == "magic" else 2)
    assert repr(trace).startswith("autograd trace")
    assert trace.text_view().text


# ------------------------------------------------------------------------------ learners' modules
def test_a_module_error_has_the_same_traceback(ipython, entry):
    """Module attribution reads the stack: torch's module calls take their usual path, so a
    traceback through a module has the same frames and lines."""
    code = """\
import torch
from torch import nn
model = nn.Sequential(nn.Linear(4, 3), nn.Linear(4, 2))
model(torch.ones(1, 4))
"""
    trace = assert_same(ipython, code, entry)
    assert trace.error["module"] == "model.1"


def test_compiling_a_module_in_a_traced_cell_does_not_warn(ipython, entry):
    code = (
        "import torch, warnings\nwarnings.simplefilter('always')\ntorch._dynamo.reset()\n"
        "m = torch.nn.Linear(2, 2)\nout_y = torch.compile(m, backend='eager')(torch.ones(1, 2))\n"
    )
    assert_same(ipython, code, entry)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", ["class", "match", "get_ipython", "Out", "In", "print", "_", "_5", "_i3"])
def test_o_refuses_names_that_would_break_the_notebook(ipython, name):
    run = ipython.run(f"%%autograd_trace -o {name}\nimport torch\nx = torch.ones(2)\n")
    assert run.error is not None and type(run.error).__name__ == "UsageError"
    assert "-o" in str(run.error) and "say, -o trace" in str(run.error)
    later = ipython.run("%%autograd_trace -o t\nimport torch\ny = torch.ones(2) * 2\n")
    assert later.error is None and ipython.user_ns["t"].tensor("y")


@pytest.mark.parametrize("bad", [True, False, 0, -3, 2.5, "10", None])
def test_trace_refuses_a_max_ops_that_is_not_a_count(bad):
    import torchlesson

    with pytest.raises(ValueError, match="max_ops must be a positive whole number"):
        torchlesson.trace(max_ops=bad)


def test_the_trace_keeps_no_tensor_of_a_compiled_call_alive(ipython):
    ipython.run(cell_for(COMPILED.format(backend="eager", fullgraph=False), "magic", True))
    ipython.run("import weakref\nref = weakref.ref(out_y)\ndel out_y, cf")
    gc.collect()
    assert ipython.user_ns["ref"]() is None
