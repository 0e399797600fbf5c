"""How long ``layout()`` takes and how big its JSON is, for 500 / 2,000 / 5,000-node graphs.

Run from the repository root::

    python benchmarks/bench_layout.py [--repeats 5] [--sizes 500 2000 5000]

For each graph shape (chain, tree, diamonds, mlp) and view it prints the median time of the
repeats, the time per node, how the time grows against the smallest size (a linear layout grows
like the node count), the JSON bytes per node the widget receives, and the median time of a
2,000-node forward layout as a ratio of the 0.5 s target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _synthetic import SHAPES
from torchlesson.picture.layout import layout

TARGET_S = 0.5  # 2,000 nodes


def measure(trace: dict, view: str, repeats: int) -> tuple[float, int, int]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = layout(trace, view, collapsed=[], max_nodes=1_000_000)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(result["nodes"]), len(json.dumps(result, separators=(",", ":")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    args = parser.parse_args()
    print(f"{'shape':9} {'view':8} {'nodes':>6} {'median s':>9} {'us/node':>8} {'growth':>10} {'B/node':>7}")
    at_target = []
    for name, make in SHAPES.items():
        for view in ("forward", "autograd"):
            base = None
            for size in args.sizes:
                seconds, nodes, size_bytes = measure(make(size), view, args.repeats)
                base = base or (seconds, nodes)
                growth = f"{seconds / base[0]:.1f}x/{nodes / base[1]:.1f}x"
                print(
                    f"{name:9} {view:8} {nodes:6d} {seconds:9.3f} {seconds / nodes * 1e6:8.1f} "
                    f"{growth:>10} {size_bytes / nodes:7.0f}"
                )
                if size == 2000 and view == "forward":
                    at_target.append(seconds / TARGET_S)
    if at_target:
        print(
            f"2,000-node forward layouts take {max(at_target):.2f}x of the {TARGET_S} s target (worst shape)"
        )
    print("growth = time ratio / node ratio against the smallest size; close ratios mean linear time")


if __name__ == "__main__":
    main()
