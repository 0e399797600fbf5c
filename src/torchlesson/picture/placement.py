"""Ordered layers -> pixels: x per vertex, y per rank, module boxes and edge polylines.

Takes the layers :mod:`torchlesson.picture.layout` ranked and ordered (nodes and the dummy vertices that
carry long edges) and turns them into the coordinates the widget and the static SVG draw: x by
averaging neighbours while keeping the order, sibling module boxes moved apart, y per rank with
room for module titles, then everything shifted to the margin.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from .graph import Graph
from .groups import common_prefix, is_fold

SWEEPS = 4  # passes of _layout's ordering and of x here (down, up, down, up): fixed, so time stays linear
NODE_GAP, DUMMY_GAP, RANK_GAP = 18.0, 8.0, 34.0
GROUP_PAD, GROUP_LABEL_H, MARGIN = 10.0, 16.0, 12.0


def x_coordinates(
    layers: list[list[int]],
    up: list[list[int]],
    down: list[list[int]],
    width: list[float],
    groups: list[list[str]],
    rank: list[int],
    n: int,
) -> list[float]:
    """Centres: each node pulled to the mean of its neighbours in the rank above (going down) or
    below (going up), then the closest placement that keeps the order and the gaps (`_fit`)."""
    x = [0.0] * len(width)
    # NOTE [main line]: a node lines up with its neighbours on the longest path through it (the
    # activations of a network), not with side branches (weights and biases above it, their
    # AccumulateGrad below it); where they compete for a place, the side branches give way.
    # Following every neighbour makes a long network drift into a staircase.
    count = len(width)
    above, below = [0] * count, [0] * count  # longest path from a source / to a sink
    for layer in layers:
        for v in layer:
            above[v] = max((above[u] + 1 for u in up[v]), default=0)
    for layer in reversed(layers):
        for v in layer:
            below[v] = max((below[c] + 1 for c in down[v]), default=0)
    main_up = [[u for u in us if above[u] == max(above[w] for w in us)] for us in up]
    main_down = [[c for c in cs if below[c] == max(below[w] for w in cs)] for cs in down]
    on_line_down, on_line_up = [1e-4] * count, [1e-4] * count
    for v in range(count):
        for c in main_down[v]:
            on_line_down[c] = 1.0
        for u in main_up[v]:
            on_line_up[u] = 1.0
    seps: list[list[float]] = []
    for layer in layers:
        sep = []
        for a, b in pairwise(layer):
            common = len(common_prefix(groups[a], groups[b]))
            pad = GROUP_PAD * (len(groups[a]) + len(groups[b]) - 2 * common)
            sep.append((width[a] + width[b]) / 2 + (NODE_GAP if a < n and b < n else DUMMY_GAP) + pad)
        seps.append(sep)
        at = -sum(sep) / 2
        for i, v in enumerate(layer):
            x[v] = at
            at += sep[i] if i < len(sep) else 0
    for sweep in range(SWEEPS):
        neighbours, weight, ranks = (
            (main_up, on_line_down, range(len(layers)))
            if sweep % 2 == 0
            else (main_down, on_line_up, range(len(layers) - 1, -1, -1))
        )
        for r in ranks:
            layer = layers[r]
            if len(layer) == 1:
                v = layer[0]
                x[v] = sum(x[u] for u in neighbours[v]) / len(neighbours[v]) if neighbours[v] else x[v]
                continue
            want = [
                sum(x[u] for u in neighbours[v]) / len(neighbours[v]) if neighbours[v] else x[v]
                for v in layer
            ]
            for v, at in zip(layer, _fit(want, [weight[v] for v in layer], seps[r]), strict=True):
                x[v] = at
    _separate(layers, x, width, groups, rank, n, seps)
    return x


def _separate(
    layers: list[list[int]],
    x: list[float],
    width: list[float],
    groups: list[list[str]],
    rank: list[int],
    n: int,
    seps: list[list[float]],
    budget: int = 40,
) -> None:
    """Move sibling module boxes that share ranks apart, then nodes out of the boxes of modules
    they are not in (optimizer.step()'s updates beside a network's box): what lies right of the
    clash shifts right until it is gone (a bounded number of shifts per stage; if a stage does not
    settle, its moves are undone). Skipped for hundreds of modules: such graphs are collapsed
    unless asked otherwise, and time stays linear."""
    paths = {p for g in groups[:n] for p in g}
    if not paths or len(paths) > 200:
        return
    for nodes_too in (False, True):
        before = x[:]
        for _ in range(budget):
            box = _boxes(x, width, groups, rank, n)
            clash = _box_clash(box) or (nodes_too and _node_clash(box, layers, x, width, groups, n))
            if not clash:
                break
            shift, line, moving, staying, held = clash
            for layer, sep in zip(layers, seps, strict=True):
                for i, v in enumerate(layer):
                    if (moving and moving in groups[v]) or (
                        (staying is None or staying not in groups[v])
                        and x[v] >= line
                        and not (held and rank[v] == held[0] and i <= held[1])
                    ):
                        x[v] += shift
                    if i and x[v] < x[layer[i - 1]] + sep[i - 1]:  # keep the order's gaps
                        x[v] = x[layer[i - 1]] + sep[i - 1]
        else:
            # Boxes that interleave with the main line (an autograd view, where a module's
            # AccumulateGrad nodes sit beside the next module's node) cannot be pulled apart by
            # shifting: keep the line.
            x[:] = before
            return


# How far to shift, and what: a box's members (`moving`), and whatever lies right of a vertical
# line, but the members of another box (`staying`) and the vertices up to (rank, index) `held`.
Clash = tuple[float, float, str | None, str | None, tuple[int, int] | None]


def _boxes(
    x: list[float], width: list[float], groups: list[list[str]], rank: list[int], n: int
) -> dict[str, list[float]]:
    """Each module's box around its nodes: [left, right, first rank, last rank]."""
    box: dict[str, list[float]] = {}
    for v in range(n):
        for depth, path in enumerate(groups[v]):
            pad = GROUP_PAD * (len(groups[v]) - depth)
            b = box.setdefault(path, [math.inf, -math.inf, rank[v], rank[v]])
            b[:] = [min(b[0], x[v] - width[v] / 2 - pad), max(b[1], x[v] + width[v] / 2 + pad),
                    min(b[2], rank[v]), max(b[3], rank[v])]  # fmt: skip
    return box


def _box_clash(box: dict[str, list[float]]) -> Clash | None:
    """Two sibling boxes that share ranks and overlap: the right one, and whatever lies right of
    its left side (but the left one), move right."""
    siblings: dict[str, list[str]] = {}
    for path in box:
        siblings.setdefault(path.rpartition(".")[0], []).append(path)
    for _parent, kids in sorted(siblings.items()):
        kids.sort(key=lambda p: (box[p][0], p))
        for i, a in enumerate(kids):
            for b in kids[i + 1 :]:
                if box[b][0] >= box[a][1] + NODE_GAP:
                    break
                if box[a][2] <= box[b][3] and box[b][2] <= box[a][3]:
                    return box[a][1] + NODE_GAP - box[b][0], box[b][0], b, a, None
    return None


def _node_clash(
    box: dict[str, list[float]],
    layers: list[list[int]],
    x: list[float],
    width: list[float],
    groups: list[list[str]],
    n: int,
) -> Clash | None:
    """A node inside the box of a module it is not in (a box is as wide as its widest rank). Only
    the boxes beside it are checked, the children of its own innermost module: any other box it
    meets lies in a box beside it, or in one that clashes with such a box. The node stays on the
    side of the box that it has in its rank's order."""
    children: dict[str, list[str]] = {}
    for path in sorted(box):
        children.setdefault(path.rpartition(".")[0], []).append(path)
    found: list[Clash] = []
    for r, layer in enumerate(layers):
        for i, v in enumerate(layer):
            if v >= n:
                continue
            left, right = x[v] - width[v] / 2, x[v] + width[v] / 2
            for p in children.get(groups[v][-1] if groups[v] else "", ()):
                lo, hi, first, last = box[p]
                if not first <= r <= last or left >= hi + NODE_GAP - 0.5 or right + NODE_GAP - 0.5 <= lo:
                    continue
                members = [k for k, u in enumerate(layer) if p in groups[u]]
                if (i > members[0]) if members else x[v] > (lo + hi) / 2:
                    found.append((hi + NODE_GAP - left, left, None, p, None))  # v goes right of the box
                else:
                    found.append((right + NODE_GAP - lo, lo, p, None, (r, i)))  # the box goes right of v
    # the longest shift first: it takes every node that lies right of its own along
    return max(found, key=lambda clash: clash[0], default=None)


def _fit(want: list[float], weight: list[float], sep: list[float]) -> list[float]:
    """The x closest to `want` (weighted least squares) with x[i+1] - x[i] >= sep[i], in linear time:
    shifted by the gaps, this is isotonic regression, solved by pooling adjacent violators."""
    offset = [0.0]
    for gap in sep:
        offset.append(offset[-1] + gap)
    blocks: list[list[float]] = []  # [weighted mean, total weight, size]
    for target, w, off in zip(want, weight, offset, strict=True):
        blocks.append([target - off, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, w2, size = blocks.pop()
            last = blocks[-1]
            last[0] = (last[0] * last[1] + mean * w2) / (last[1] + w2)
            last[1] += w2
            last[2] += size
    out: list[float] = []
    for mean, _, size in blocks:
        out.extend([mean] * int(size))
    return [z + off for z, off in zip(out, offset, strict=True)]


def geometry(
    graph: Graph,
    rank: list[int],
    layers: list[list[int]],
    x: list[float],
    chains: list[list[int]],
    groups: list[list[str]],
    counts: dict[str, int],
    types: dict[str, tuple[str, str]],
    edges: list[list[Any]],
    dropped: int,
) -> dict[str, Any]:
    """y per rank (room for module titles), module boxes, edge polylines; shifted to the margin."""
    nodes, n = graph.nodes, len(graph.nodes)
    span: dict[str, list[int]] = {}
    for v in range(n):
        for p in groups[v]:
            lo_hi = span.setdefault(p, [rank[v], rank[v]])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], rank[v]), max(lo_hi[1], rank[v])
    starts, ends = [0] * (len(layers) + 1), [0] * (len(layers) + 1)
    for v in range(n):
        starts[rank[v]] = max(starts[rank[v]], sum(span[p][0] == rank[v] for p in groups[v]))
        ends[rank[v]] = max(ends[rank[v]], sum(span[p][1] == rank[v] for p in groups[v]))
    y, at = [0.0] * len(x), starts[0] * (GROUP_PAD + GROUP_LABEL_H)
    for r, layer in enumerate(layers):
        height = max((nodes[v]["h"] for v in layer if v < n), default=0)
        for v in layer:
            y[v] = at + height / 2
        at += height + RANK_GAP + ends[r] * GROUP_PAD + starts[r + 1] * (GROUP_PAD + GROUP_LABEL_H)
    boxes: dict[str, list[float]] = {}
    for v in range(n):
        if nodes[v]["group"]:
            w, h = nodes[v]["w"] / 2, nodes[v]["h"] / 2
            _grow(boxes, nodes[v]["group"], [x[v] - w, y[v] - h, x[v] + w, y[v] + h])
    for path in sorted(span, key=lambda p: (-p.count("."), p)):  # innermost first, then its parent
        box = boxes[path]
        box[:] = [
            box[0] - GROUP_PAD,
            box[1] - GROUP_PAD - GROUP_LABEL_H,
            box[2] + GROUP_PAD,
            box[3] + GROUP_PAD,
        ]
        if "." in path:
            _grow(boxes, path.rpartition(".")[0], box)
    lefts = [x[v] - nodes[v]["w"] / 2 for v in range(n)] + [b[0] for b in boxes.values()]
    tops = [y[v] - nodes[v]["h"] / 2 for v in range(n)] + [b[1] for b in boxes.values()]
    dx, dy = MARGIN - min(lefts, default=0.0), MARGIN - min(tops, default=0.0)
    x, y = [c + dx for c in x], [c + dy for c in y]
    out_nodes, right, bottom = [], 0.0, 0.0
    for v, node in enumerate(nodes):
        placed = {**node, "x": round(x[v], 1), "y": round(y[v], 1), "rank": rank[v]}
        right, bottom = max(right, x[v] + node["w"] / 2), max(bottom, y[v] + node["h"] / 2)
        out_nodes.append(placed)
    out_groups = []
    for path in sorted(boxes, key=lambda p: (p.count("."), p)):
        left, t, r, b = boxes[path][0] + dx, boxes[path][1] + dy, boxes[path][2] + dx, boxes[path][3] + dy
        right, bottom = max(right, r), max(bottom, b)
        out_groups.append(_group(path, types, counts, left, t, r - left, b - t, collapsed=False))
    for node in out_nodes:
        if node["kind"] == "group":
            left, t = node["x"] - node["w"] / 2, node["y"] - node["h"] / 2
            out_groups.append(
                _group(node["ref"], types, counts, left, t, node["w"], node["h"], collapsed=True)
            )
    return {
        "width": round(right + MARGIN),
        "height": round(bottom + MARGIN),
        "nodes": out_nodes,
        "edges": _edges(nodes, edges, chains, x, y),
        "groups": out_groups,
        "dropped": dropped,
    }


def _grow(boxes: dict[str, list[float]], path: str, box: list[float]) -> None:
    have = boxes.setdefault(path, list(box))
    have[:] = [min(have[0], box[0]), min(have[1], box[1]), max(have[2], box[2]), max(have[3], box[3])]


def _group(
    path: str,
    types: dict[str, tuple[str, str]],
    counts: dict[str, int],
    left: float,
    top: float,
    w: float,
    h: float,
    collapsed: bool,
) -> dict[str, Any]:
    label = (types.get(path) or (path, ""))[0]
    return {
        "id": path,
        "label": label,
        "fold": is_fold(path),
        "x": round(left, 1),
        "y": round(top, 1),
        "w": round(w, 1),
        "h": round(h, 1),
        "collapsed": collapsed,
        "count": counts.get(path, 0),
        "depth": path.count("."),
    }


def _edges(
    nodes: list[dict[str, Any]],
    edges: list[list[Any]],
    chains: list[list[int]],
    x: list[float],
    y: list[float],
) -> list[dict[str, Any]]:
    """Polylines from the bottom of the source to the top of the target, through the dummies; the
    edges leaving (entering) one node spread along its bottom (top) side in the order of their ends."""
    leaving: dict[int, list[int]] = {}
    entering: dict[int, list[int]] = {}
    for k, chain in enumerate(chains):
        leaving.setdefault(chain[0], []).append(k)
        entering.setdefault(chain[-1], []).append(k)
    start_dx, end_dx = [0.0] * len(chains), [0.0] * len(chains)
    for ports, offsets, near in ((leaving, start_dx, 1), (entering, end_dx, -2)):
        for v, ks in ports.items():
            ks.sort(key=lambda k: (x[chains[k][near]], k))
            step = min(12.0, (nodes[v]["w"] - 12) / max(1, len(ks) - 1))
            for i, k in enumerate(ks):
                offsets[k] = (i - (len(ks) - 1) / 2) * step
    out = []
    for k, (chain, (s, t, kind, label)) in enumerate(zip(chains, edges, strict=True)):
        points = [[x[s] + start_dx[k], y[s] + nodes[s]["h"] / 2]]
        points += [[x[d], y[d]] for d in chain[1:-1]]
        points.append([x[t] + end_dx[k], y[t] - nodes[t]["h"] / 2])
        out.append(
            {
                "id": f"e{k}",
                "source": nodes[s]["id"],
                "target": nodes[t]["id"],
                "kind": kind,
                "label": label,
                "points": [[round(a, 1), round(b, 1)] for a, b in points],
            }
        )
    return out
