"""How much slower is a traced cell than a plain one?

Prints, for each workload, the median time of a plain run and of a run under ``torchlesson.trace()``
(gradients captured for every tensor), their ratio, and the tracer's overhead per recorded operation.
All numbers come from one run on this machine, so they compare like with like.

    python benchmarks/bench_trace.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import statistics
import time

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

    Every torch call passes through a function mode, every module call through global hooks, and
    each backward pass puts a pre-hook on every node it will run (the only way to see the gradient
    arriving at an intermediate): all of them doing nothing.
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
    from torch.nn.modules import module

    handles = [module.register_module_forward_pre_hook(_ignore), module.register_module_forward_hook(_ignore)]
    try:
        with _ObserversOnly():
            fn()
    finally:
        for handle in handles:
            handle.remove()


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
        per_event = (t - p) / events * 1e6 if events else float("nan")
        print(
            f"{name:<46} {p * 1e3:9.3f} {f / p:6.2f} {t * 1e3:8.3f} {t / p:6.2f} {r * 1e3:8.3f} {r / p:6.2f}"
            f" {events:7d} {per_event:9.1f}"
        )
    print("floor: ratio with the observers alone, recording nothing (a function mode, module hooks and a")
    print("       pre-hook on every autograd node of each pass, all doing nothing)")
    print("traced: captured, gradients of every tensor summarised; +read: and then Trace.to_dict()")
    print("events: operations recorded + autograd nodes run; us/event: (traced - plain) / events")


if __name__ == "__main__":
    main()
