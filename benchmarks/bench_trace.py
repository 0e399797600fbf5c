"""How much slower is a traced cell than a plain one, and how much more memory does it take?

Prints, for each workload, the median time of a plain run, of a run with the tracer's observers doing
nothing (the floor), and of a run under ``torchlesson.trace()`` (gradients captured for every tensor),
their ratios, and the tracer's own cost per event beyond the floor. Then a 300-step training loop
traced past ``--max-ops`` (observing should cost nothing once recording stops), and the tracer's
extra peak memory: Python objects (tracemalloc) and tensor memory (the profiler's allocation events).
All numbers come from one run on this machine, so they compare like with like.

    python benchmarks/bench_trace.py [--repeats 30] [--threads N] [--skip-memory]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import statistics
import time

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler (peak memory) prints less

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

import torchlesson


def seed_cell() -> None:
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y + 3
    loss = z.sum()
    loss.backward()


def make_mlp_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    inputs, targets = torch.randn(64, 784), torch.randint(0, 10, (64,))

    def step() -> None:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()

    return step


def make_transformer_step():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=256, nhead=8, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    inputs = torch.randn(16, 128, 256)

    def step() -> None:
        optimizer.zero_grad()
        loss = model(inputs).pow(2).mean()
        loss.backward()
        optimizer.step()

    return step


class _ObserversOnly(TorchFunctionMode):
    """The floor: what any tracer built on the same observers pays before recording anything.

    Every torch call passes through a function mode, and each backward pass puts a pre-hook on every
    node it will run (the only way to see the gradient arriving at an intermediate): all doing nothing.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.backward and args[0].grad_fn is not None:
            handles, stack, seen = [], [args[0].grad_fn], set()
            while stack:
                node = stack.pop()
                handles.append(node.register_prehook(_ignore))
                for child, _ in node.next_functions:
                    if child is not None and child not in seen:
                        seen.add(child)
                        stack.append(child)
            try:
                return func(*args, **kwargs)
            finally:
                for handle in handles:
                    handle.remove()
        return func(*args, **kwargs)


def _ignore(*args) -> None:
    return None


def observers_only(fn) -> None:
    with _ObserversOnly():
        fn()


def timed(fn, repeats: int, mode: str) -> tuple[float, int]:
    """Median seconds of ``fn``: plain, observers only, traced, or traced and then read (what
    displaying it needs)."""
    times, events = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        if mode == "plain":
            fn()
        elif mode == "floor":
            observers_only(fn)
        else:
            with torchlesson.trace() as t:
                fn()
            if mode == "read":
                t.to_dict()
        times.append(time.perf_counter() - start)
        if mode in ("traced", "read"):
            events = len(t.ops) + sum(len(p["order"]) for p in t.backward)
    return statistics.median(times), events


def steady_allocator() -> bool:
    """Keep glibc's malloc from handing big blocks back to the system between steps.

    A step frees and re-allocates its gradients (the first weight's is 800 KB); glibc serves blocks
    that big with fresh mmap pages or from its heap depending on what was freed before (its mmap
    threshold moves), and the page faults of the first kind added 0.6 ms to the plain MLP step in
    some runs and not in others. Fixed thresholds make every mode run on a warm heap: the plain
    step at its fastest, so the ratios are the least flattering ones.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):  # not glibc
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the peak memory table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    workloads = [
        ("seed cell (x*2+3, sum, backward)", seed_cell, args.repeats * 10),
        ("MLP 784-256-128-10 step, batch 64", make_mlp_step(), args.repeats),
        ("TransformerEncoder d256 h8 L4 seq128 b16 step", make_transformer_step(), max(5, args.repeats // 5)),
    ]
    steady = steady_allocator()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, steady allocator: {steady}")
    header = f"{'workload':<46} {'plain ms':>9} {'floor':>6} {'traced':>8} {'ratio':>6}"
    print(header + f" {'+read':>8} {'ratio':>6} {'events':>7} {'us/event':>9}")
    for name, fn, repeats in workloads:
        for _ in range(3):  # warm up both paths
            fn()
            with torchlesson.trace():
                fn()
        # interleave the modes so that any drift of the machine hits all three alike
        runs: dict[str, list[float]] = {"plain": [], "floor": [], "traced": [], "read": []}
        events = 0
        for _ in range(3):
            for mode in runs:
                seconds, n = timed(fn, repeats, mode)
                runs[mode].append(seconds)
                events = n or events
        p, f, t, r = (statistics.median(runs[m]) for m in ("plain", "floor", "traced", "read"))
        per_event = (t - f) / events * 1e6 if events else float("nan")
        print(
            f"{name:<46} {p * 1e3:9.3f} {f / p:6.2f} {t * 1e3:8.3f} {t / p:6.2f} {r * 1e3:8.3f} {r / p:6.2f}"
            f" {events:7d} {per_event:9.1f}"
        )
    print("floor: ratio with the observers alone, recording nothing (a function mode and a pre-hook on")
    print("       every autograd node of each pass, all doing nothing)")
    print("traced: captured, gradients of every tensor summarised; +read: and then Trace.to_dict()")
    print("events: operations recorded + autograd nodes run; us/event: the tracer's own cost,")
    print("        (traced - floor) / events")
    past_the_cap(args.repeats)
    if not args.skip_memory:
        print()
        peak_memory()


def past_the_cap(repeats: int) -> None:
    """Training steps run after recording stopped at ``--max-ops``: against plain, and against a
    function mode that does nothing (torch's own cost of dispatching every call to a mode)."""
    step = make_mlp_step()

    def steps() -> None:
        for _ in range(100):
            step()

    def capped() -> None:
        with torchlesson.trace(max_ops=1):
            step()  # recording stops here
            steps()

    def no_op_mode() -> None:
        with _DoNothing():
            steps()

    steps()
    runs: dict[str, list[float]] = {"plain": [], "mode": [], "capped": []}
    for _ in range(max(5, repeats // 5)):  # interleaved, as above
        for mode, fn in (("plain", steps), ("mode", no_op_mode), ("capped", capped)):
            start = time.perf_counter()
            fn()
            runs[mode].append(time.perf_counter() - start)
    p, m, c = (statistics.median(runs[k]) for k in ("plain", "mode", "capped"))
    c -= p / 100  # the one recorded step
    label = "MLP steps after --max-ops stopped recording"
    print(f"{label:<46} {p * 10:9.3f} {m / p:6.2f} {c * 10:8.3f} {c / p:6.2f}")
    print("       (floor here: a function mode that does nothing; past the cap the tracer only counts)")


class _DoNothing(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def _peaks(fn) -> tuple[int, int]:
    """(Python peak bytes by tracemalloc, tensor peak bytes by the profiler's allocation events)."""
    import tracemalloc

    from torch.profiler import ProfilerActivity, profile

    tracemalloc.start()
    fn()
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage  # an op's own allocations, not its children's again
        peak = max(peak, live)
    return python_peak, peak


def peak_memory() -> None:
    """The tracer's extra peak memory on the MLP and Transformer steps, against the plain step's."""
    print(f"{'peak memory (MB)':<46} {'python':>8} {'tensors':>8}   traced extra, % of plain")
    for name, step in (("MLP step", make_mlp_step()), ("TransformerEncoder step", make_transformer_step())):
        step()

        def traced(step=step) -> None:
            with torchlesson.trace() as t:
                step()
            del t

        plain_py, plain_tensors = _peaks(step)
        traced_py, traced_tensors = _peaks(traced)
        extra_py, extra_tensors = traced_py - plain_py, traced_tensors - plain_tensors
        total = plain_py + plain_tensors
        print(
            f"{name:<46} {plain_py / 1e6:8.2f} {plain_tensors / 1e6:8.2f}   "
            f"+{extra_py / 1e6:.2f} MB python, {extra_tensors / 1e6:+.2f} MB tensors: "
            f"{(extra_py + extra_tensors) / total * 100:.1f}%"
        )


if __name__ == "__main__":
    main()
