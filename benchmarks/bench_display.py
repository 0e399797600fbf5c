"""What a whole ``%%autograd_trace`` cell costs, picture included, against the same cell run plain.

Each workload runs in a real IPython shell, as a notebook runs a cell: plain, then traced with the
display a notebook gets (the widget's state as the kernel sends it, and the static ``text/html``
fallback). It prints the median times, their ratio and difference, and the bytes the traced cell
leaves in a saved notebook (widget state + ``text/html`` + ``text/plain``). The first traced cell
of a fresh kernel is measured in a new interpreter each time (imports included). ``picture s`` is the
part of the traced time that the picture takes (the widget's state sent as JSON, the static
fallback, the text), measured again on its own; the rest is recording.

    python benchmarks/bench_display.py [--repeats 5]

The targets (issue 11): the seed cell at most plain + 50 ms; the 2,000-op loop at most 0.5 s in
all; the 300-step MLP loop at most 1.5x plain and at most 1 MB saved; the first traced cell of a
fresh kernel at most plain + 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _seed import SEED_CELL as SEED

SETUP = """
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
inputs, targets = torch.randn(64, 784), torch.randint(0, 10, (64,))
"""

LOOP = """\
x = torch.ones(3, requires_grad=True)
g = x
for _ in range(2000):
    g = g * 1.0001
g.sum().backward()
"""

MLP_LOOP = """\
for step in range(300):
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step()
"""

WORKLOADS = [
    ("seed cell", SEED, "plain + 50 ms"),
    ("2,000-op loop g = g * 1.0001", LOOP, "0.5 s in all"),
    ("300-step MLP loop 784-256-128-10", MLP_LOOP, "1.5x plain, 1 MB saved"),
]

FIRST_CELL = """
import sys, time
sys.path.insert(0, {tests!r})
from _shell import Shell
shell = Shell.create({tmp!r})
shell.run("import torch")
shell.run("torch.set_num_threads(1)")
shell.run("%load_ext torchlesson")
start = time.perf_counter()
run = shell.run({cell!r})
print(time.perf_counter() - start)
assert run.error is None, run.error
"""


def widget_of(view: dict):
    from ipywidgets.widgets.widget import _instances

    return _instances[view["model_id"]]


def saved_bytes(outputs: list[dict]) -> tuple[int, int]:
    """(widget state bytes, text/html + text/plain bytes) of a traced cell's displayed outputs."""
    state = fallback = 0
    for bundle in outputs:
        fallback += len(bundle.get("text/html", "").encode()) + len(bundle.get("text/plain", "").encode())
        view = bundle.get("application/vnd.jupyter.widget-view+json")
        if view:
            state += len(json.dumps(widget_of(view).get_state(), separators=(",", ":")).encode())
    return state, fallback


def picture_only(shell) -> float:
    """Seconds the picture of the last traced cell takes on its own: the mime bundle (widget state
    sent as JSON, static fallback, text) of a fresh Trace over the same data."""
    from torchlesson import Trace

    data = shell.user_ns["_bench_trace"]._d
    start = time.perf_counter()
    bundle = Trace(data)._repr_mimebundle_()
    view = bundle.get("application/vnd.jupyter.widget-view+json")
    if view:
        json.dumps(widget_of(view).get_state())
    return time.perf_counter() - start


def run_cell(shell, code: str, traced: bool) -> tuple[float, list[dict]]:
    """Seconds one cell takes as a notebook runs it: the cell, then the widget state serialised as
    the kernel sends it (the display bundle itself is built inside the cell's run)."""
    start = time.perf_counter()
    run = shell.run(("%%autograd_trace -o _bench_trace\n" if traced else "") + code)
    for bundle in run.outputs:  # what the kernel does next: send the widget's state as JSON
        view = bundle.get("application/vnd.jupyter.widget-view+json")
        if view:
            json.dumps(widget_of(view).get_state())
    seconds = time.perf_counter() - start
    if run.error is not None:
        raise run.error
    return seconds, run.outputs


def first_cell(traced: bool, tmp: str) -> float:
    code = ("%%autograd_trace\n" if traced else "") + SEED
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    script = FIRST_CELL.format(tests=tests, tmp=tmp, cell=code)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import tempfile

    import ipywidgets
    import torch

    from _shell import Shell

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: steadier on a busy machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="bench-display-")
    shell = Shell.create(tmp)
    shell.run("%load_ext torchlesson")
    shell.run(SETUP)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats} runs")
    print(
        f"{'workload':<34} {'plain s':>8} {'traced s':>9} {'ratio':>6} {'+ s':>7} {'saved KB':>9} "
        f"{'picture s':>10}  target"
    )
    for name, code, target in WORKLOADS:
        run_cell(shell, code, traced=False)  # warm up both paths
        run_cell(shell, code, traced=True)
        plain, traced, pictured, saved = [], [], [], (0, 0)
        for _ in range(args.repeats):
            shell.run(SETUP)  # the same model and data for both
            plain.append(run_cell(shell, code, traced=False)[0])
            shell.run(SETUP)
            seconds, outputs = run_cell(shell, code, traced=True)
            traced.append(seconds)
            saved = saved_bytes(outputs)
            pictured.append(picture_only(shell))
            ipywidgets.Widget.close_all()
        p, t, d = statistics.median(plain), statistics.median(traced), statistics.median(pictured)
        kb = f"{sum(saved) / 1e3:.0f}"
        print(f"{name:<34} {p:8.3f} {t:9.3f} {t / p:6.2f} {t - p:7.3f} {kb:>9} {d:10.3f}  {target}")
        print(
            f"{'':<34} saved = widget state {saved[0] / 1e3:.0f} KB"
            f" + text/html, text/plain {saved[1] / 1e3:.0f} KB"
        )
    plain = statistics.median(first_cell(False, tmp) for _ in range(3))
    traced = statistics.median(first_cell(True, tmp) for _ in range(3))
    print(
        f"{'first traced cell, fresh kernel':<34} {plain:8.3f} {traced:9.3f} {traced / plain:6.2f} "
        f"{traced - plain:7.3f} {'':>9} {'':>10}  plain + 0.5 s"
    )


if __name__ == "__main__":
    main()
