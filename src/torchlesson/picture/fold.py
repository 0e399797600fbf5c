"""Fold repeated structure: a loop's iterations drawn once, as one block that says ``× N``.

NOTE [folding loops]: when the same lines of the cell run the same operations again and again (a
``for`` loop over a chain, a training loop, a function called in a loop), the operations' keys
(line, name, module, which inputs are tensors) repeat with a period. :func:`find_folds` finds the
longest such runs in the cell's operations (the cell's own loop lines, read with ``ast``, name
them: ``for step in range(300): × 300``), nested loops included. :func:`fold_graph` then keeps
one iteration of each run, the last (its tensors hold the names the variables have after the
cell), in a box of its own (a group, like a module's, whose path ends in ``↻<op index>``), and maps
every edge of the other iterations onto it; edges from one iteration to the next are dropped (the
``× N`` says the block repeats). Small loops (at most ``MIN_FOLDED_OPS`` operations in all) are
drawn whole. A learner can unfold a run: its first and last iterations are then drawn each on
its own, and the ones in between stay folded.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

MIN_FOLDED_OPS = 24  # a loop that ran fewer operations than this in all is drawn whole
MAX_CANDIDATES = 16  # periods tried at each operation (the next places its key comes back)
SHOWN_WHEN_UNFOLDED = (3, 2)  # iterations drawn one by one at the start and at the end of an unfolded run
FOLD_MARK = "↻"


@dataclass
class Fold:
    """A run of ``repeats`` iterations of ``period`` operations, from operation ``start``."""

    start: int
    period: int
    repeats: int
    what: str = ""  # the code that repeats: ``for step in range(300):``, a line, ``lines 3–5``
    note: str = ""  # which iterations, for the runs left folded in an unfolded loop
    lines: tuple[int, int] | None = None
    inner: list[Fold] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``× 300 · for step in range(300):``: the count first, so that a narrow box keeps it."""
        return (
            f"× {self.repeats}"
            + (f" · {self.what}" if self.what else "")
            + (f" {self.note}" if self.note else "")
        )

    @property
    def id(self) -> str:
        return f"{FOLD_MARK}{self.start}"

    @property
    def end(self) -> int:
        return self.start + self.period * self.repeats

    @property
    def last(self) -> int:
        """The first operation of the iteration drawn (the last one)."""
        return self.start + self.period * (self.repeats - 1)


def op_key(op: dict[str, Any]) -> int:
    inputs = [i for i in op.get("inputs") or () if isinstance(i, dict)]
    shape = tuple(("tensor" in i, i.get("arg")) for i in inputs)
    return hash((op.get("line"), op.get("name"), op.get("module"), bool(op.get("inplace")), shape))


def find_folds(ops: list[dict[str, Any]], lo: int = 0, hi: int | None = None, depth: int = 0) -> list[Fold]:
    """The runs of repeated operations in ``ops[lo:hi]``, longest coverage first at each place."""
    hi = len(ops) if hi is None else hi
    keys = [op_key(op) if isinstance(op, dict) else 0 for op in ops[lo:hi]]
    at: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        at.setdefault(key, []).append(i)
    seen = dict.fromkeys(at, 0)  # how far each key's list has been walked
    folds, i, n = [], 0, len(keys)
    while i < n:
        key, best = keys[i], None
        positions = at[key]
        while seen[key] < len(positions) and positions[seen[key]] <= i:
            seen[key] += 1
        for j in _candidates(keys, positions[seen[key] :], i):
            period = j - i
            if j + period > n or keys[i:j] != keys[j : j + period]:
                continue
            repeats = 2
            while (
                i + (repeats + 1) * period <= n
                and keys[i + repeats * period : i + (repeats + 1) * period] == keys[i:j]
            ):
                repeats += 1
            if best is None or repeats * period > best[0] * best[1]:
                best = (period, repeats)
        if best and best[0] * best[1] > MIN_FOLDED_OPS:
            fold = Fold(lo + i, best[0], best[1])
            if depth < 2 and fold.period > 1:  # a loop inside the loop: fold it inside the iteration drawn
                fold.inner = find_folds(ops, fold.last, fold.end, depth + 1)
            folds.append(fold)
            i += best[0] * best[1]
        else:
            i += 1
    return folds


def _candidates(keys: list[int], later: list[int], i: int) -> list[int]:
    """Where the block starting at ``i`` may repeat: the next place its key comes back, and the
    places where a run of that key starts again (the next iteration of a loop with a loop in it)."""
    out: list[int] = []
    for j in later[:512]:
        if j == i + 1 or keys[j - 1] != keys[i]:
            out.append(j)
            if len(out) >= MAX_CANDIDATES:
                break
    return out


def name_folds(folds: list[Fold], ops: list[dict[str, Any]], lines: list[str]) -> None:
    """Each fold's label: the loop statement of the cell around its lines (``for step in range(300):``),
    else the lines it spans; and ``× N``."""
    loops = _loops(lines)
    for fold in folds:
        numbers = [
            ops[k].get("line") for k in range(fold.last, fold.end) if isinstance(ops[k].get("line"), int)
        ]
        if numbers:
            fold.lines = (min(numbers), max(numbers))
        around = [
            (a, b, head) for a, b, head in loops if fold.lines and a <= fold.lines[0] and fold.lines[1] <= b
        ]
        if around:
            head = max(around)[2]  # the innermost loop around all of them
            fold.what = head if len(head) <= 48 else head[:47] + "…"
        elif fold.lines and fold.lines[0] == fold.lines[1] and 0 < fold.lines[0] <= len(lines):
            code = lines[fold.lines[0] - 1].strip()  # a comprehension, a function called in a loop...
            fold.what = code if len(code) <= 48 else code[:47] + "…"
        elif fold.lines:
            a, b = fold.lines
            fold.what = f"lines {a}–{b}"
        name_folds(fold.inner, ops, lines)


def _loops(lines: list[str]) -> list[tuple[int, int, str]]:
    """(first line, last line, head) of every ``for`` and ``while`` statement of the cell, if it
    parses: ``for step in range(300):`` (written from the code, so comments drop out)."""
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):  # IPython syntax (%magic, !shell) or anything else: no names
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.AsyncFor)):
            head = f"for {ast.unparse(node.target)} in {ast.unparse(node.iter)}:"
        elif isinstance(node, ast.While):
            head = f"while {ast.unparse(node.test)}:"
        else:
            continue
        out.append((node.lineno, node.end_lineno or node.lineno, head))
    return out


def unfold(folds: list[Fold], unfolded: set[str]) -> list[Fold]:
    """The folds with those the learner unfolded (by id) opened: their first and last iterations
    drawn one by one, the ones between (if any) folded as a run of their own."""
    out = []
    for fold in folds:
        if fold.id not in unfolded:
            out.append(fold)
            continue
        first, last = SHOWN_WHEN_UNFOLDED
        middle = fold.repeats - first - last
        if middle >= 2:
            inner = Fold(fold.start + first * fold.period, fold.period, middle, lines=fold.lines)
            inner.what, inner.note = fold.what, f"(iterations {first + 1}–{first + middle})"
            out.append(inner)
    return out


def _inside(fold: Fold, k: int) -> bool:
    return fold.start <= k < fold.end


def fold_graph(graph: Any, folds: list[Fold], at: list[Any]) -> dict[str, Any]:
    """Fold ``graph`` (a graph.Graph) in place: the nodes of every iteration but the drawn one go,
    their edges move onto the drawn iteration's copies, and the drawn nodes join the fold's group.
    ``at[v]``: (operation index, slot) of node ``v`` (None for nodes no operation of the cell made).
    Returns ``{"copies": {kept node id: [refs of every iteration's copy]}, "folds": {id: Fold}}``."""
    by_at = {a: v for v, a in enumerate(at) if a is not None}
    n = len(graph.nodes)
    target = list(range(n))
    chains: list[list[tuple[str, int]]] = [[] for _ in range(n)]
    inside: list[list[Fold]] = [[] for _ in range(n)]  # the folds whose drawn iteration holds the node
    for v in range(n):
        if at[v] is None:
            continue
        k, slot = at[v]
        level = folds
        while True:
            fold = next((f for f in level if _inside(f, k)), None)
            if fold is None:
                break
            iteration = (k - fold.start) // fold.period
            chains[v].append((fold.id, iteration))
            k = fold.last + (k - fold.start) % fold.period
            inside[v].append(fold)
            level = fold.inner
        if chains[v]:
            target[v] = by_at.get((k, slot), v)
    kept = [v for v in range(n) if target[v] == v]
    # group paths: each fold's box sits inside the modules all its drawn nodes share
    groups = [graph.nodes[v]["group"] for v in range(n)]
    order: list[Fold] = []  # outer folds before the folds inside them
    for v in kept:
        for fold in inside[v]:
            if fold not in order:
                order.append(fold)
    for fold in order:
        members = [v for v in kept if fold in inside[v]]
        prefix = _common([groups[v] for v in members])
        for v in members:
            rest = (groups[v] or "")[len(prefix) :].lstrip(".")
            groups[v] = ".".join(p for p in (prefix, fold.id, rest) if p)
    for v in kept:
        graph.nodes[v]["group"] = groups[v]
    copies: dict[str, list[str]] = {}
    for v in range(n):
        if chains[v]:
            copies.setdefault(graph.nodes[target[v]]["id"], []).append(graph.nodes[v]["ref"])

    def crosses(s: int, t: int) -> bool:
        """An edge from one iteration of a fold to another: the × N says it."""
        for (fa, ia), (fb, ib) in zip(chains[s], chains[t], strict=False):
            if fa != fb:
                return False
            if ia != ib:
                return True
        return False

    index = {v: k for k, v in enumerate(kept)}
    edges, seen = [], set()
    for s, t, kind, label in graph.edges:
        if crosses(s, t):
            continue
        a, b = index.get(target[s]), index.get(target[t])
        if a is None or b is None or a == b or (a, b, kind) in seen:
            continue
        seen.add((a, b, kind))
        edges.append([a, b, kind, label])
    after = []
    for s, t in graph.after:
        a, b = index.get(target[s]), index.get(target[t])
        if a is not None and b is not None and a != b and not crosses(s, t):
            after.append([a, b])
    graph.nodes = [graph.nodes[v] for v in kept]
    graph.index = {node["id"]: k for k, node in enumerate(graph.nodes)}
    graph.edges, graph.after = edges, after
    every = {}
    stack = list(folds)
    while stack:
        fold = stack.pop()
        every[fold.id] = fold
        stack += fold.inner
    return {"copies": {k: v for k, v in copies.items() if len(v) > 1}, "folds": every}


def _common(paths: list[str | None]) -> str:
    """The module path all of ``paths`` are inside ("" when one is in none)."""
    parts = [p.split(".") if p else [] for p in paths]
    if not parts:
        return ""
    common = parts[0]
    for other in parts[1:]:
        k = 0
        while k < len(common) and k < len(other) and common[k] == other[k]:
            k += 1
        common = common[:k]
    # a module's own nodes are inside it: a fold among them is inside it too
    return ".".join(common)
