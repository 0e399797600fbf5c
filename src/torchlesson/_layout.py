"""Graph layout: a trace dict -> node boxes, edge polylines and module boxes, in pixels.

Pure Python, no torch. The graph widget (``static/graph.js``) and the static SVG (``_static.py``)
both draw what :func:`layout` returns, so both show the same picture and the layout is testable.

A layered (Sugiyama-style) layout kept simple so it scales to thousands of nodes: longest-path
ranks (iterative), dummy nodes on long edges, barycentric ordering with a fixed number of sweeps
(members of one module kept side by side), then x by averaging neighbours while keeping the order.
Ranks go top-down and y grows down; in both views the graph's sources are on top: the forward view
starts at the inputs, the autograd view at the loss's grad_fn (the direction backward walks).
"""

from __future__ import annotations

import gc
import math
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

SCHEMA = "torchlesson.trace/1"
AUTO_COLLAPSE_NODES = 150  # above this many nodes, modules are collapsed when `collapsed` is None
SWEEPS = 4  # ordering and coordinate passes (down, up, down, up): fixed, so time stays linear
CHAR_W, SMALL_CHAR_W = 7.3, 6.3  # px per character of the 12px / 10.5px monospace fonts
NODE_GAP, DUMMY_GAP, RANK_GAP = 18.0, 8.0, 34.0
GROUP_PAD, GROUP_LABEL_H, MARGIN = 10.0, 16.0, 12.0
MAX_LABEL, MAX_SUBLABEL = 28, 36

# op name -> operator as code writes it; reversed forms (`2 - x` is `rsub`) put the value first
_OPERATORS = {
    "add": "+",
    "sub": "−",
    "subtract": "−",
    "mul": "×",
    "multiply": "×",
    "div": "÷",
    "divide": "÷",
    "truediv": "÷",
    "true_divide": "÷",
    "floordiv": "//",
    "floor_divide": "//",
    "matmul": "@",
    "pow": "**",
    "mod": "%",
    "remainder": "%",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "and": "&",
    "or": "|",
    "xor": "^",
}
_UNARY = {"neg": "−", "negative": "−", "pos": "+", "invert": "~"}


def layout(
    trace: dict[str, Any],
    view: str = "forward",
    collapsed: Iterable[str] | None = None,
    max_nodes: int = 2000,
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
        Module paths drawn as one box each. ``None`` collapses modules automatically when the graph
        has more than ~150 nodes; ``[]`` never collapses.
    max_nodes : int
        Draw at most this many nodes (the first ones the cell made); ``omitted`` and ``note`` say
        how many were left out.

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
    schema = trace.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ValueError(f"layout() reads traces of schema {SCHEMA!r}, this one is {schema!r}")
    if view not in ("forward", "autograd"):
        raise ValueError(f"view must be 'forward' or 'autograd', not {view!r}")
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, not {max_nodes}")
    with _collector_paused():
        return _layout(trace, view, collapsed, max_nodes)


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
    trace: dict[str, Any], view: str, collapsed: Iterable[str] | None, max_nodes: int
) -> dict[str, Any]:
    graph = _Graph()
    if view == "forward":
        _build_forward(trace, graph)
    else:
        _build_autograd(trace, graph)
        _adopt(graph)
    notes = []
    total = len(graph.nodes)
    counts = _group_counts(graph.nodes)
    auto = collapsed is None
    if auto:
        collapsed = _auto_collapse(graph.nodes, counts) if total > AUTO_COLLAPSE_NODES else set()
    types = _module_types(trace)
    graph, shown = _collapse(graph, set(collapsed or ()), counts, types)
    if auto and shown:
        modules = "1 module is" if len(shown) == 1 else f"{len(shown)} modules are"
        notes.append(f"{modules} collapsed to keep {total} nodes readable.")
    omitted = max(0, len(graph.nodes) - max_nodes)
    if omitted:
        graph.keep_first(max_nodes)
        notes.append(
            f"Showing the first {max_nodes} of {max_nodes + omitted} nodes; collapse modules or "
            "trace fewer operations to see the rest."
        )
    if trace.get("truncated"):
        notes.append(f"Only the first {trace.get('max_ops')} operations were recorded.")
    result = _place(graph, counts, types)
    if result.pop("dropped"):
        notes.append("Edges that would close a cycle are not drawn.")
    result.update(view=view, omitted=omitted, note=" ".join(notes) or None)
    return result


class _Graph:
    """Nodes (dicts in walk order) and edges ``[source index, target index, kind, label]``."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        self.edges: list[list[Any]] = []

    def add(self, node_id: str, kind: str, ref: str, label: str, sublabel: str | None, **extra: Any) -> int:
        if node_id in self.index:
            return self.index[node_id]
        width = max(len(label) * CHAR_W, len(sublabel or "") * SMALL_CHAR_W, 24.0) + 16
        node = {"id": node_id, "kind": kind, "ref": ref, "label": label, "sublabel": sublabel}
        node.update(w=round(width), h=24, group=None, classes=[], grad_label=None, line=None)
        node.update(extra)
        self.index[node_id] = len(self.nodes)
        self.nodes.append(node)
        return self.index[node_id]

    def edge(self, source: str, target: str, kind: str, label: str | None = None) -> None:
        self.edges.append([self.index[source], self.index[target], kind, label])

    def keep_first(self, count: int) -> None:
        for node in self.nodes[count:]:
            del self.index[node["id"]]
        del self.nodes[count:]
        self.edges = [e for e in self.edges if e[0] < count and e[1] < count]


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tensor_label(tensor: dict[str, Any]) -> str:
    """A tensor's display name: its variable name, else ``tensor@line 3``."""
    if tensor.get("name"):
        return str(tensor["name"])
    line = tensor.get("line")
    return f"tensor@line {line}" if line is not None else f"tensor {tensor.get('id', '?')}"


def short_name(tensor: dict[str, Any]) -> str:
    """The label inside its module's box: ``weight`` for ``model.0.weight`` in ``model.0``."""
    label, module = tensor_label(tensor), tensor.get("module")
    return label[len(module) + 1 :] if module and label.startswith(module + ".") else label


def shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    return "[" + ", ".join(str(s) for s in shape) + "]"


def facts_text(item: dict[str, Any]) -> str:
    """``[3] float32`` (``scalar float32`` for shape ``[]``)."""
    shape = "scalar" if item.get("shape") == [] else shape_text(item.get("shape"))
    return f"{shape} {str(item.get('dtype') or '').removeprefix('torch.')}".strip()


def format_values(values: Any, limit: int = 40) -> str | None:
    """Nested lists of numbers the way torch prints them (``[1., 2.5]``), or None if too long."""
    parts: list[str] = []
    stack: list[Any] = [values]
    while stack:  # iterative: nested lists of any depth
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, list):
            stack.append("]")
            for k in range(len(item) - 1, -1, -1):
                stack.append(item[k])
                if k:
                    stack.append(", ")
            stack.append("[")
        elif isinstance(item, float) and item.is_integer():
            parts.append(f"{item:.0f}.")
        elif isinstance(item, float):
            parts.append(f"{item:.4g}")
        else:
            parts.append(str(item))
        if sum(map(len, parts)) > limit:
            return None
    return "".join(parts)


def summary_text(summary: dict[str, Any] | None) -> str | None:
    """A summary's values when short, else its norm (``norm 3.464``)."""
    if not summary:
        return None
    if summary.get("values") is not None and summary.get("numel", 1) <= 6:
        text = format_values(summary["values"], limit=24)
        if text is not None:
            return text
    norm = summary.get("norm")
    return f"norm {norm:.4g}" if isinstance(norm, (int, float)) else facts_text(summary)


def op_label(op: dict[str, Any]) -> tuple[str, str | None]:
    """(label, sublabel) of an op as code wrote it: ``× 2``, ``+ 3``, ``@``, ``sum``, ``relu_``."""
    name = str(op.get("name") or "?")
    if name.startswith("aten."):
        name = name.split(".")[1]
    name = name.rsplit(".", 1)[-1]
    inplace, swapped = bool(op.get("inplace")), False
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        name = name[2:-2]
        if name[:1] in "ir" and name[1:] in _OPERATORS:
            inplace, swapped = inplace or name[0] == "i", name[0] == "r"
            name = name[1:]
    elif name.startswith("r") and name[1:] in _OPERATORS and name not in _OPERATORS:
        name, swapped = name[1:], True
    base = name.removesuffix("_") if name.endswith("_") and not name.endswith("__") else name
    inplace = inplace or base != name
    items = [i for i in op.get("inputs") or () if "value" in i]
    values = [_short(str(i["value"]), 12) for i in items if "arg" not in i]
    keywords = [f"{i['arg']}={_short(str(i['value']), 12)}" for i in items if "arg" in i]
    if base in _OPERATORS:
        symbol = _OPERATORS[base] + ("=" if inplace else "")
        if not values:
            return symbol, ", ".join(keywords) or None
        first_is_value = "value" in (op.get("inputs") or [{}])[0]
        label = f"{values[0]} {symbol}" if first_is_value != swapped else f"{symbol} {values[0]}"
        return label, ", ".join(values[1:] + keywords) or None
    if base in _UNARY and not values:
        return _UNARY[base], ", ".join(keywords) or None
    sub = _short("(" + ", ".join(values + keywords) + ")", MAX_SUBLABEL) if values or keywords else None
    return _short(base + ("_" if inplace else ""), MAX_LABEL), sub


def _last_grads(trace: dict[str, Any], tensors: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    passes = trace.get("backward") or []
    if not passes:
        return None, {}
    last = passes[-1]
    roots = [tensor_label(tensors.get(r, {"id": r})) for r in last.get("root") or ()]
    root = roots[0] if len(roots) == 1 else "(" + ", ".join(roots) + ")" if roots else "root"
    return root, last.get("grads") or {}


def _tensor_node(graph: _Graph, tensor: dict[str, Any], node_id: str, extra_classes: list[str]) -> int:
    tid = tensor["id"]
    classes = [tensor.get("kind") or "constant"]
    if tensor.get("is_leaf") and tensor.get("requires_grad") and classes[0] != "leaf":
        classes.append("leaf")
    classes.append("requires-grad" if tensor.get("requires_grad") else "dimmed")
    if tensor.get("created") is False:
        classes.append("input")
    if tensor.get("retains_grad"):
        classes.append("retains-grad")
    device = str(tensor.get("device") or "cpu").split(":")[0]
    classes += [device, *extra_classes]
    label = _short(short_name(tensor), MAX_LABEL)
    sub = facts_text(tensor) + (f" · {device}" if device != "cpu" else "")
    return graph.add(
        node_id,
        "tensor",
        tid,
        label,
        sub,
        classes=classes,
        line=tensor.get("line"),
        group=tensor.get("module"),
        h=38,
    )


def _build_forward(trace: dict[str, Any], graph: _Graph) -> None:
    tensors = {t["id"]: t for t in trace.get("tensors") or ()}
    root, grads = _last_grads(trace, tensors)
    error = trace.get("error") or None
    error_op = error.get("op") if error else None
    roots = set((trace.get("backward") or [{}])[-1].get("root") or ())
    cut_ids = {c.get("tensor") for c in trace.get("cuts") or ()}

    def tensor(tid: str, node_id: str | None = None, version: Any = None) -> str:
        node_id = node_id or tid
        if node_id not in graph.index:
            info = tensors.get(tid, {"id": tid})
            extra = ["root"] if tid in roots else []
            extra += ["cut"] if tid in cut_ids else []
            idx = _tensor_node(graph, info, node_id, extra + (["version"] if version is not None else []))
            node = graph.nodes[idx]
            if version is not None:
                node["sublabel"] = f"{node['sublabel']} · v{version}"
            elif tid in grads:
                flow = summary_text(grads[tid]) or "?"
                node["grad_label"] = _short(f"∂{root}/∂{short_name(info)} = {flow}", 44)
                node["h"] = 52
            node["w"] = max(node["w"], round(len(node["grad_label"] or "") * SMALL_CHAR_W + 16))
        return node_id

    current: dict[str, str] = {}  # tensor id -> node id of its latest version (in-place ops)
    produced: set[str] = set()
    op_outputs: dict[str, dict[str, str]] = {}
    for op in trace.get("ops") or ():
        inputs = [i["tensor"] for i in op.get("inputs") or () if "tensor" in i]
        if not inputs and op["id"] != error_op:
            produced.update(op.get("outputs") or ())  # a factory (torch.tensor, rand): no node
            continue
        sources = [current.get(tid) or tensor(tid) for tid in inputs]  # tensors first: walk order
        label, sub = op_label(op)
        classes = (
            ["op"] + ["inplace"] * bool(op.get("inplace")) + ["no-grad"] * (not op.get("grad_enabled", 1))
        )
        graph.add(
            op["id"], "op", op["id"], label, sub, classes=classes, group=op.get("module"), line=op.get("line")
        )
        for source in sources:
            graph.edge(source, op["id"], "data")
        outs = op_outputs.setdefault(op["id"], {})
        for tid in op.get("outputs") or ():
            if tid in produced or tid in inputs:  # in-place: the tensor gets a new version node
                version = (op.get("version") or {}).get(tid, len(outs) + 1)
                node_id = f"{tid}@v{version}"
                while node_id in graph.index:
                    node_id += "'"
                current[tid] = outs[tid] = tensor(tid, node_id, version)
            else:
                outs[tid] = tensor(tid)
            produced.add(tid)
            graph.edge(op["id"], outs[tid], "data")
    for tid in tensors:
        tensor(tid)
    for cut in trace.get("cuts") or ():
        tid, reason = cut.get("tensor"), cut.get("reason")
        marked = [
            e
            for e in graph.edges
            if cut.get("op") in graph.index
            and e[0] == graph.index[cut["op"]]
            and graph.nodes[e[1]]["ref"] == tid
        ]
        for e in marked:
            e[2], e[3] = "cut", reason
        if not marked and cut.get("source") and cut["source"] != tid and tid in tensors:
            graph.edge(current.get(cut["source"]) or tensor(cut["source"]), tid, "cut", reason)
    if error and (error_op or error.get("op_name")):  # a torch op failed (else only the caption says)
        shapes = _short(", ".join(shape_text(i.get("shape")) for i in error.get("inputs") or ()), 40)
        if error_op not in graph.index:
            name = error.get("op_name") or error.get("type") or "error"
            graph.add(
                "error",
                "op",
                error_op or "error",
                _short(name, MAX_LABEL),
                None,
                line=error.get("line"),
                bottom=True,
            )
            for item in error.get("inputs") or ():
                if item.get("tensor") in tensors:
                    graph.edge(current.get(item["tensor"]) or tensor(item["tensor"]), "error", "data")
        node = graph.nodes[graph.index[error_op if error_op in graph.index else "error"]]
        node["classes"] = [*node["classes"], "error"]
        node["sublabel"] = shapes or node["sublabel"]
        node["w"] = max(node["w"], round(len(shapes) * SMALL_CHAR_W + 16))


def _build_autograd(trace: dict[str, Any], graph: _Graph) -> None:
    tensors = {t["id"]: t for t in trace.get("tensors") or ()}
    passes = trace.get("backward") or []
    ran = {nid for p in passes for nid in p.get("order") or ()}
    accumulated = set(passes[-1].get("accumulated") or ()) if passes else set()
    for n in trace.get("autograd", {}).get("nodes") or ():
        info = tensors.get(n.get("tensor")) if n.get("tensor") else None
        classes = ["grad_fn"] + ["earlier"] * bool(n.get("earlier")) + ["ran"] * (n["id"] in ran)
        if n.get("name") == "AccumulateGrad" and info:
            classes.append(info.get("kind") or "leaf")
        sub = f"{tensor_label(info)} {facts_text(info)}" if info else None
        group = info.get("module") if info else None
        graph.add(
            n["id"],
            "grad_fn",
            n["id"],
            _short(str(n.get("name")), MAX_LABEL),
            _short(sub, MAX_SUBLABEL) if sub else None,
            classes=classes,
            group=group,
            h=32,
            line=info.get("line") if info else None,
        )
    for e in trace.get("autograd", {}).get("edges") or ():
        if e.get("source") in graph.index and e.get("target") in graph.index:
            graph.edge(e["source"], e["target"], "grad")
    for n in trace.get("autograd", {}).get("nodes") or ():
        info = tensors.get(n.get("tensor"))
        if n.get("name") != "AccumulateGrad" or info is None:
            continue
        classes = ["grad"] + (["empty"] if info.get("grad") is None else [])
        classes += ["accumulated"] * (info["id"] in accumulated)
        graph.add(
            f"{n['id']}.grad",
            "grad",
            info["id"],
            _short(tensor_label(info) + ".grad", MAX_LABEL),
            summary_text(info.get("grad")) or "None",
            classes=classes,
            group=info.get("module"),
            h=32,
            line=info.get("line"),
        )
        graph.edge(n["id"], f"{n['id']}.grad", "grad")


def _adopt(graph: _Graph) -> None:
    """A grad_fn of no tensor (``TBackward0`` of ``weight.t()`` inside ``F.linear``) whose
    neighbours are all in one module belongs to that module's box."""
    around: list[set[str | None]] = [set() for _ in graph.nodes]
    for s, t, *_ in graph.edges:
        around[s].add(graph.nodes[t]["group"])
        around[t].add(graph.nodes[s]["group"])
    for node, groups in zip(graph.nodes, around, strict=True):
        if node["kind"] == "grad_fn" and node["group"] is None and len(groups) == 1 and None not in groups:
            node["group"] = next(iter(groups))


def _prefixes(path: str | None) -> list[str]:
    """``"model.0.attn"`` -> ``["model", "model.0", "model.0.attn"]``."""
    if not path:
        return []
    parts = str(path).split(".")
    return [".".join(parts[: k + 1]) for k in range(len(parts))]


def _group_counts(nodes: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in nodes:
        for prefix in _prefixes(node["group"]):
            counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def _module_types(trace: dict[str, Any]) -> dict[str, str]:
    """Optional ``trace["modules"]``: ``{path: type}`` or ``[{"path", "type"}]``, for group labels."""
    modules = trace.get("modules") or {}
    if isinstance(modules, list):
        return {m["path"]: m.get("type") for m in modules if isinstance(m, dict) and "path" in m}
    return dict(modules) if isinstance(modules, dict) else {}


def _auto_collapse(nodes: list[dict[str, Any]], counts: dict[str, int]) -> set[str]:
    """Collapse the innermost modules first, then their parents, until ~150 nodes remain."""
    height = dict.fromkeys(counts, 0)
    for path in sorted(counts, key=lambda p: -p.count(".")):
        parent = path.rpartition(".")[0]
        if parent:
            height[parent] = max(height[parent], height[path] + 1)
    chosen: set[str] = set()
    for level in range(max(height.values(), default=-1) + 1):
        chosen = {p for p, h in height.items() if h <= level}
        heads = {
            next(p for p in _prefixes(n["group"]) if p in chosen)
            for n in nodes
            if any(p in chosen for p in _prefixes(n["group"]))
        }
        inside = sum(1 for n in nodes if any(p in chosen for p in _prefixes(n["group"])))
        if len(nodes) - inside + len(heads) <= AUTO_COLLAPSE_NODES:
            break
    return chosen


def _collapse(
    graph: _Graph, collapsed: set[str], counts: dict[str, int], types: dict[str, str]
) -> tuple[_Graph, list[str]]:
    """Replace each outermost collapsed module by one node of kind "group"; reroute its edges."""
    out, heads = _Graph(), []
    mapping: list[int] = []
    for node in graph.nodes:
        head = next((p for p in _prefixes(node["group"]) if p in collapsed and p in counts), None)
        if head is None:
            out.index[node["id"]] = len(out.nodes)
            mapping.append(len(out.nodes))
            out.nodes.append(node)
            continue
        gid = "group:" + head
        if gid not in out.index:
            heads.append(head)
            label = _short(f"{head} · {types[head]}" if types.get(head) else head, MAX_LABEL)
            out.add(
                gid,
                "group",
                head,
                label,
                f"{counts[head]} nodes",
                classes=["group", "collapsed"],
                group=head.rpartition(".")[0] or None,
                h=38,
                line=node["line"],
            )
        group_node = out.nodes[out.index[gid]]
        if "error" in node["classes"] and "error" not in group_node["classes"]:
            group_node["classes"] = [*group_node["classes"], "error"]
        mapping.append(out.index[gid])
    seen = set()
    for s, t, kind, label in graph.edges:
        key = (mapping[s], mapping[t], kind)
        if mapping[s] != mapping[t] and key not in seen:
            seen.add(key)
            out.edges.append([mapping[s], mapping[t], kind, label])
    return out, heads


def _ranks(
    n: int, edges: list[list[Any]], groups: list[str | None]
) -> tuple[list[int], list[list[Any]], int]:
    """Longest-path ranks from the sources (iterative Kahn walk); sources sit just above their
    first consumer. An edge that would close a cycle (not expected in a trace) is dropped."""
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for s, t, *_ in edges:
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
    pred: list[list[int]] = [[] for _ in range(n)]
    succ = [[] for _ in range(n)]
    for s, t, *_ in kept:
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
    for s, t, *_ in kept:
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


def _place(graph: _Graph, counts: dict[str, int], types: dict[str, str]) -> dict[str, Any]:
    nodes, n = graph.nodes, len(graph.nodes)
    rank, edges, dropped = _ranks(n, graph.edges, [node["group"] for node in nodes])
    top = max(rank, default=-1)
    for v, node in enumerate(nodes):  # a failing op nothing connects to goes where the cell stopped
        if node.pop("bottom", False) and not any(v in e[:2] for e in edges) and n > 1:
            rank[v] = top = top + 1
    # vertices: the nodes, then dummy nodes that carry long edges around the nodes in between
    width = [float(node["w"]) for node in nodes]
    groups = [_prefixes(node["group"]) for node in nodes]
    chains: list[list[int]] = []
    budget = 3 * n + 200
    for s, t, *_ in edges:
        chain = [s]
        if rank[t] - rank[s] - 1 <= budget:
            budget -= rank[t] - rank[s] - 1
            common = _common(groups[s], groups[t])
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
    x = _xs(layers, up, down, width, groups, rank, n)
    return _geometry(graph, rank, layers, x, chains, groups, counts, types, edges, dropped)


def _common(a: list[str], b: list[str]) -> list[str]:
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    return a[:k]


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


def _xs(
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
            common = len(_common(groups[a], groups[b]))
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
    """Move sibling module boxes that share ranks apart: the right one, and whatever lies right of
    it, shifts right until the boxes no longer overlap (a bounded number of shifts; if that does
    not settle it, nothing moves). Skipped for hundreds of modules: such graphs are collapsed
    unless asked otherwise, and time stays linear."""
    paths = {p for g in groups[:n] for p in g}
    if not paths or len(paths) > 200:
        return
    before = x[:]
    for _ in range(budget):
        box: dict[str, list[float]] = {}
        for v in range(n):
            for depth, path in enumerate(groups[v]):
                pad = GROUP_PAD * (len(groups[v]) - depth)
                b = box.setdefault(path, [math.inf, -math.inf, rank[v], rank[v]])
                b[:] = [min(b[0], x[v] - width[v] / 2 - pad), max(b[1], x[v] + width[v] / 2 + pad),
                        min(b[2], rank[v]), max(b[3], rank[v])]  # fmt: skip
        siblings: dict[str, list[str]] = {}
        for path in box:
            siblings.setdefault(path.rpartition(".")[0], []).append(path)
        clash = None
        for _parent, kids in sorted(siblings.items()):
            kids.sort(key=lambda p: (box[p][0], p))
            for i, a in enumerate(kids):
                for k in range(i + 1, len(kids)):
                    b = kids[k]
                    if box[b][0] >= box[a][1] + NODE_GAP:
                        break
                    if box[a][2] <= box[b][3] and box[b][2] <= box[a][3]:
                        clash = (a, b)
                        break
                if clash:
                    break
            if clash:
                break
        if clash is None:
            return
        a, b = clash
        line, shift = box[b][0], box[a][1] + NODE_GAP - box[b][0]
        for layer, sep in zip(layers, seps, strict=True):
            for i, v in enumerate(layer):
                if b in groups[v] or (a not in groups[v] and x[v] >= line):
                    x[v] += shift
                if i and x[v] < x[layer[i - 1]] + sep[i - 1]:  # keep the order's gaps
                    x[v] = x[layer[i - 1]] + sep[i - 1]
    # Boxes that interleave with the main line (an autograd view, where a module's AccumulateGrad
    # nodes sit beside the next module's node) cannot be pulled apart by shifting: keep the line.
    x[:] = before


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


def _geometry(
    graph: _Graph,
    rank: list[int],
    layers: list[list[int]],
    x: list[float],
    chains: list[list[int]],
    groups: list[list[str]],
    counts: dict[str, int],
    types: dict[str, str],
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
    types: dict[str, str],
    counts: dict[str, int],
    left: float,
    top: float,
    w: float,
    h: float,
    collapsed: bool,
) -> dict[str, Any]:
    label = f"{path} · {types[path]}" if types.get(path) else path
    return {
        "id": path,
        "label": label,
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
