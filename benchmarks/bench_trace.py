"""How much slower is a traced cell than a plain one?

Prints, for each workload, the median time of a plain run and of a run under ``torchlesson.trace()``
(gradients captured for every tensor), their ratio, and the tracer's overhead per recorded operation.
All numbers come from one run on this machine, so they compare like with like.

    python benchmarks/bench_trace.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

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


def timed(fn, repeats: int, traced: bool) -> tuple[float, int]:
    times, ops = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        if traced:
            with torchlesson.trace() as t:
                fn()
        else:
            fn()
        times.append(time.perf_counter() - start)
        if traced:
            ops = len(t.ops) + sum(len(p["order"]) for p in t.backward)
    return statistics.median(times), ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    workloads = [
        ("seed cell (x*2+3, sum, backward)", seed_cell, args.repeats * 10),
        ("MLP 784-256-128-10 step, batch 64", make_mlp_step(), args.repeats),
        ("TransformerEncoder d256 h8 L4 seq128 b16 step", make_transformer_step(), max(5, args.repeats // 5)),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'workload':<48} {'plain ms':>9} {'traced ms':>10} {'ratio':>6} {'events':>7} {'us/event':>9}")
    for name, fn, repeats in workloads:
        for _ in range(3):  # warm up both paths
            fn()
            with torchlesson.trace():
                fn()
        # interleave to share any drift between the two
        plain, traced, events = [], [], 0
        for _ in range(3):
            plain.append(timed(fn, repeats, traced=False)[0])
            t, events = timed(fn, repeats, traced=True)
            traced.append(t)
        p, t = statistics.median(plain), statistics.median(traced)
        per_event = (t - p) / events * 1e6 if events else float("nan")
        print(f"{name:<48} {p * 1e3:9.3f} {t * 1e3:10.3f} {t / p:6.2f} {events:7d} {per_event:9.1f}")
    print("events = recorded operations + autograd nodes run in backward; us/event = (traced - plain) / events")


if __name__ == "__main__":
    main()
