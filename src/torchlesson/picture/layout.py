"""Graph layout: a trace dict -> node boxes, edge polylines and module boxes, in pixels.

Pure Python, no torch. The graph widget (``static/graph.js``) and the static SVG (``picture/svg.py``)
both draw what :func:`layout` returns, so both show the same picture and the layout is testable.

A layered (Sugiyama-style) layout kept simple so it scales to thousands of nodes: longest-path
ranks (iterative), dummy nodes on long edges, barycentric ordering with a fixed number of sweeps
(members of one module kept side by side), then x by averaging neighbours while keeping the order.
Ranks go top-down and y grows down; in both views the graph's sources are on top: the forward view
starts at the inputs, the autograd view at the loss's grad_fn (the direction backward walks).

This module owns the entry point and the layered structure (ranks, dummies, order within a rank);
the graph it lays out comes from :mod:`torchlesson.picture.graph`, the node texts from
:mod:`torchlesson.picture.labels`, the pixels from :mod:`torchlesson.picture.placement`.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

from .fold import find_folds, fold_graph, name_folds, unfold
from .graph import Graph, build_graph, finish_rows
from .groups import (
    AUTO_COLLAPSE_NODES,
    auto_collapse,
    collapse,
    common_prefix,
    first_view,
    group_counts,
    group_titles,
    module_types,
    prefixes,
)
from .placement import SWEEPS, geometry, x_coordinates
from .story import is_story, open_stories, tell_story

SCHEMA = "torchlesson.trace/1"


def layout(
    trace: dict[str, Any],
    view: str = "forward",
    collapsed: Iterable[str] | None = None,
    max_nodes: int = 2000,
    unfolded: Iterable[str] = (),
    story: bool = False,
) -> dict[str, Any]:
    """Lay out a trace's forward or autograd graph; returns plain JSON-safe data.

    Parameters
    ----------
    trace : dict
        ``Trace.to_dict()`` (schema ``torchlesson.trace/1``); a ``Trace`` itself is accepted too.
    view : {"forward", "autograd"}
        ``"forward"``: tensors and the ops between them; ``"autograd"``: the grad_fn nodes that
        backward walks, from the root down to each leaf's ``.grad``.
    collapsed : iterable of str, optional
        Module paths (and constructions, optimizer calls: NOTE [the story of a cell] in story.py)
        drawn as one box each. ``None`` collapses modules automatically when the graph has more
        than ~150 nodes, or with ``story``, draws the first view (NOTE [the first view] in
        groups.py); ``[]`` never collapses.
    max_nodes : int
        Draw at most this many nodes (the first ones the cell made); ``omitted`` and ``note`` say
        how many were left out.
    unfolded : iterable of str
        Folded loops (``↻12``) to draw iteration by iteration (NOTE [folding loops] in fold.py).
    story : bool
        Constructions and optimizer calls as boxes of their own (NOTE [the story of a cell] in
        story.py), the way the picture draws a cell.

    Examples
    --------
    >>> t = {"tensors": [{"id": "t0", "name": "x", "shape": [3], "dtype": "float32"}], "ops": []}
    >>> layout(t)["nodes"][0]["label"]
    'x'
    """
    if hasattr(trace, "to_dict"):
        trace = trace.to_dict()
    if not isinstance(trace, dict):
        raise TypeError(f"layout() needs Trace.to_dict(), a dict, not {type(trace).__name__}")
    schema = trace.get("schema") or SCHEMA  # a trace without one is read as this schema's
    if schema != SCHEMA:
        raise ValueError(f"layout() reads traces of schema {SCHEMA!r}, this one is {schema!r}")
    if view not in ("forward", "autograd"):
        raise ValueError(f"view must be 'forward' or 'autograd', not {view!r}")
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, not {max_nodes}")
    with _collector_paused():
        return _layout(trace, view, collapsed, max_nodes, set(unfolded), story)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """NOTE [collector]: a layout allocates many small lists and dicts while the trace (big, for
    thousands of operations) stays alive, so the cyclic collector's full passes walk that trace
    again and again: 3x slower at 5,000 nodes. The layout makes no reference cycles, so the
    collector waits until it is done and is then left as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _layout(
    trace: dict[str, Any],
    view: str,
    collapsed: Iterable[str] | None,
    max_nodes: int,
    unfolded: set[str],
    story: bool,
) -> dict[str, Any]:
    graph = build_graph(trace, view)
    stories = tell_story(trace, graph) if story and view == "forward" else {}
    notes = []
    ops = [op for op in trace.get("ops") or () if isinstance(op, dict)]
    folds = find_folds(ops) if len(ops) == len(trace.get("ops") or ()) else []
    name_folds(folds, ops, [str(line) for line in trace.get("lines") or ()])
    folds = unfold(folds, unfolded)
    folded = fold_graph(graph, folds, [graph.made_at.get(n["id"]) for n in graph.nodes])
    finish_rows(graph)
    for fold in folds:
        what = f" of {fold.what}" if fold.what else ""
        notes.append(f"{fold.repeats} iterations{what} are drawn as one (× {fold.repeats}).")
    total = len(graph.nodes)
    counts = group_counts(graph.nodes)
    auto = collapsed is None
    if auto:
        if story:
            collapsed = first_view(graph.nodes, counts)
        else:
            collapsed = auto_collapse(graph.nodes, counts) if total > AUTO_COLLAPSE_NODES else set()
    if stories:
        shut = {p.rpartition(".")[2] for p in collapsed or () if is_story(p)}
        open_stories(graph, set(stories) - shut)
        counts = group_counts(graph.nodes)
    types = group_titles(counts, module_types(trace), folded["folds"], stories)
    graph, shown = collapse(graph, set(collapsed or ()), counts, types)
    modules = [p for p in shown if p in counts and not is_story(p)]
    if auto and modules:
        what = "1 module is" if len(modules) == 1 else f"{len(modules)} modules are"
        notes.append(f"{what} collapsed to keep {total} nodes readable: click one to open it.")
    omitted = max(0, len(graph.nodes) - max_nodes)
    if omitted:
        graph.keep_first(max_nodes)
        notes.append(
            f"Showing the first {max_nodes} of {max_nodes + omitted} nodes; collapse modules or "
            "trace fewer operations to see the rest."
        )
    result = _place(graph, counts, types)
    if result.pop("dropped"):
        notes.append("Edges that would close a cycle are not drawn.")
    # a truncated recording is said by the scene's banner (scene.banners), not here
    result.update(view=view, omitted=omitted, note=" ".join(notes) or None, notes=notes)
    result["copies"] = folded["copies"]  # a folded box -> the tensors (ops, nodes) of each iteration
    result["folds"] = {fid: {"label": f.label, "repeats": f.repeats} for fid, f in folded["folds"].items()}
    result["stories"] = stories  # a construction's or an optimizer call's texts, for its details
    return result


def _ranks(
    n: int, edges: list[list[Any]], groups: list[str | None], after: list[list[int]]
) -> tuple[list[int], list[list[Any]], int]:
    """Longest-path ranks from the sources (iterative Kahn walk); sources sit just above their
    first consumer. ``after`` pairs rank like edges but are not drawn (NOTE [write after read] in
    _graph.py). An edge that would close a cycle (not expected in a trace) is dropped."""
    order_only = [[s, t, "after", None] for s, t in after]
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for s, t, *_ in edges + order_only:
        succ[s].append(t)
        indeg[t] += 1
    queue = deque(v for v in range(n) if indeg[v] == 0)
    seen = [indeg[v] == 0 for v in range(n)]
    where, order, nxt = [0] * n, [], 0
    while len(order) < n:
        if not queue:  # a cycle: start again from its first node
            while seen[nxt]:
                nxt += 1
            seen[nxt] = True
            queue.append(nxt)
        v = queue.popleft()
        where[v] = len(order)
        order.append(v)
        for t in succ[v]:
            indeg[t] -= 1
            if indeg[t] == 0 and not seen[t]:
                seen[t] = True
                queue.append(t)
    kept = [e for e in edges if where[e[0]] < where[e[1]]]
    ranked = kept + [e for e in order_only if where[e[0]] < where[e[1]]]
    pred: list[list[int]] = [[] for _ in range(n)]
    succ = [[] for _ in range(n)]
    for s, t, *_ in ranked:
        pred[t].append(s)
        succ[s].append(t)

    def inside(child: str | None, parent: str | None) -> bool:
        return bool(parent) and (child == parent or (child or "").startswith(f"{parent}."))

    # An edge into a module whose node also takes the module's own sources (weight, bias) spans two
    # ranks, so those sources get a rank of their own inside the module's box instead of sharing
    # one with the previous module's output (the boxes would overlap). Likewise an edge out of a
    # module waits below the module's own tail (AccumulateGrad and .grad in the autograd view).
    owns = [
        any(not pred[p] and groups[p] == groups[v] for p in pred[v]) and bool(groups[v]) for v in range(n)
    ]
    tail = [0] * n
    for v in reversed(order):
        tail[v] = max((tail[c] + 1 for c in succ[v] if inside(groups[c], groups[v])), default=0)
    length = {}
    for s, t, *_ in ranked:
        entering = not inside(groups[s], groups[t])
        length[s, t] = 2 if owns[t] and entering and not (not pred[s] and groups[s] == groups[t]) else 1
        if groups[s] and not inside(groups[t], groups[s]):
            length[s, t] = max(length[s, t], tail[s] + 1)
    rank = [0] * n
    for v in order:
        rank[v] = max((rank[p] + length[p, v] for p in pred[v]), default=0)
    for v in range(n):
        if not pred[v] and succ[v]:
            rank[v] = min(rank[t] - length[v, t] for t in succ[v])
    used = sorted(set(rank))
    compact = {r: k for k, r in enumerate(used)}
    return [compact[r] for r in rank], kept, len(edges) - len(kept)


def _place(graph: Graph, counts: dict[str, int], types: dict[str, str]) -> dict[str, Any]:
    nodes, n = graph.nodes, len(graph.nodes)
    rank, edges, dropped = _ranks(n, graph.edges, [node["group"] for node in nodes], graph.after)
    top = max(rank, default=-1)
    for v, node in enumerate(nodes):  # a failing op nothing connects to goes where the cell stopped
        if node.pop("bottom", False) and not any(v in e[:2] for e in edges) and n > 1:
            rank[v] = top = top + 1
    # vertices: the nodes, then dummy nodes that carry long edges around the nodes in between
    width = [float(node["w"]) for node in nodes]
    groups = [prefixes(node["group"]) for node in nodes]
    chains: list[list[int]] = []
    budget = 3 * n + 200
    for s, t, *_ in edges:
        chain = [s]
        if rank[t] - rank[s] - 1 <= budget:
            budget -= rank[t] - rank[s] - 1
            common = common_prefix(groups[s], groups[t])
            for r in range(rank[s] + 1, rank[t]):
                chain.append(len(rank))
                rank.append(r)
                width.append(2.0)
                groups.append(common)
        chains.append([*chain, t])
    count = len(rank)
    up: list[list[int]] = [[] for _ in range(count)]
    down: list[list[int]] = [[] for _ in range(count)]
    for chain in chains:
        for a, b in pairwise(chain):
            down[a].append(b)
            up[b].append(a)
    layers: list[list[int]] = [[] for _ in range(max(rank, default=-1) + 1)]
    for v in range(count):
        layers[rank[v]].append(v)
    start = [float(v) for v in range(n)] + [0.0] * (count - n)
    for chain in chains:
        for d in chain[1:-1]:
            start[d] = chain[0] + 0.5
    for layer in layers:
        layer.sort(key=lambda v: (start[v], v))
    _order(layers, up, down, groups)
    x = x_coordinates(layers, up, down, width, groups, rank, n)
    return geometry(graph, rank, layers, x, chains, groups, counts, types, edges, dropped)


def _order(
    layers: list[list[int]], up: list[list[int]], down: list[list[int]], groups: list[list[str]]
) -> None:
    """Barycentric crossing reduction, a fixed number of sweeps; a module's members stay adjacent."""
    gid = {p: k for k, p in enumerate(sorted({p for g in groups for p in g}))}
    last = len(gid)
    pos = [0.0] * len(up)
    for layer in layers:
        for i, v in enumerate(layer):
            pos[v] = i
    for sweep in range(SWEEPS):
        neighbours, ranks = (
            (up, range(1, len(layers))) if sweep % 2 == 0 else (down, range(len(layers) - 2, -1, -1))
        )
        for r in ranks:
            layer = layers[r]
            if len(layer) == 1:
                continue
            bary = {
                v: sum(pos[u] for u in neighbours[v]) / len(neighbours[v]) if neighbours[v] else pos[v]
                for v in layer
            }
            if gid:
                total: dict[str, list[float]] = {}
                for v in layer:
                    for p in groups[v]:
                        acc = total.setdefault(p, [0.0, 0])
                        acc[0] += bary[v]
                        acc[1] += 1
                mean = {p: s / c for p, (s, c) in total.items()}
                keys = {v: [(mean[p], gid[p]) for p in groups[v]] + [(bary[v], last + pos[v])] for v in layer}
            else:
                keys = {v: (bary[v], pos[v]) for v in layer}
            layer.sort(key=keys.__getitem__)
            for i, v in enumerate(layer):
                pos[v] = i
