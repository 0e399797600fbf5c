"""Trace dict -> the abstract graph to draw: nodes and edges, before any position.

The forward view has a node per tensor and per op with tensor inputs (in-place ops give the
tensor a new version node, in the module the op ran in; cuts are labelled edges; a failing op is
drawn in red, and so is the in-place op that broke a failing backward), the autograd view a
node per grad_fn plus each leaf's ``.grad``. Nodes carry their module path; modules can then be
collapsed to one node each, chosen by hand or automatically for big graphs.
"""

from __future__ import annotations

import math
from typing import Any

from .labels import (
    CHAR_W,
    MAX_GRAD_LABEL,
    MAX_LABEL,
    MAX_SUBLABEL,
    SMALL_CHAR_W,
    facts_text,
    op_label,
    root_label,
    shape_text,
    short_name,
    shorten,
    summary_text,
    tensor_label,
)

# Box heights in px. An op is a pill of one row, or two when it has a sublabel (`sum` over
# `(dim=0)`); a tensor has its name and its facts, then one row per gradient it shows and a little
# room under the last one, so it does not sit on the border (see NOTE [gradient rows]).
OP_H, OP_TWO_ROWS_H, TENSOR_H, GRAD_ROW_H, GRAD_ROWS_PAD = 24, 36, 38, 14, 2
OP_ROW_H = 12  # each row of an op after its first (its arguments, a warning)
MODIFIED_WARNING = "modified a tensor backward needed"  # under the in-place op a backward failed on


class Graph:
    """Nodes (dicts in walk order) and edges ``[source index, target index, kind, label]``;
    ``after`` holds pairs ``[earlier, later]`` that order ranks but are not drawn (NOTE [write after
    read])."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        self.edges: list[list[Any]] = []
        self.after: list[list[int]] = []
        # node id -> (operation index, slot) of what made it (NOTE [folding loops] in fold.py)
        self.made_at: dict[str, tuple[int, int] | None] = {}
        # ``after`` pairs a folded optimizer call adds (NOTE [the story of a cell] in story.py)
        self.story_after: dict[str, list[list[int]]] = {}

    def add(self, node_id: str, kind: str, ref: str, label: str, sublabel: str | None, **extra: Any) -> int:
        if node_id in self.index:
            return self.index[node_id]
        width = max(len(label) * CHAR_W, len(sublabel or "") * SMALL_CHAR_W, 24.0) + 16
        node = {"id": node_id, "kind": kind, "ref": ref, "label": label, "sublabel": sublabel}
        node.update(w=round(width), h=OP_H, group=None, classes=[], grad_label=None, line=None)
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
        self.after = [p for p in self.after if p[0] < count and p[1] < count]


def build_graph(trace: dict[str, Any], view: str) -> Graph:
    """The nodes and edges of a trace's ``"forward"`` or ``"autograd"`` view, in walk order."""
    graph = Graph()
    if view == "forward":
        _build_forward(trace, graph)
    else:
        _build_autograd(trace, graph)
        _adopt(graph)
    return graph


def _last_grads(trace: dict[str, Any], tensors: dict[str, Any]) -> tuple[str | None, dict, dict]:
    """(root label, tensor id -> flowed gradient, node id -> received gradient) of the last pass."""
    passes = trace.get("backward") or []
    if not passes:
        return None, {}, {}
    last = passes[-1]
    root = root_label([tensor_label(tensors.get(r, {"id": r})) for r in last.get("root") or ()])
    return root, last.get("grads") or {}, last.get("node_grads") or {}


def _first_nodes(trace: dict[str, Any]) -> dict[str, str | None]:
    """Tensor id -> the autograd node of its first version, for the tensors an in-place op gave a
    node of their own (NOTE [gradients of in-place versions] in capture/_backward.py)."""
    made = [op.get("nodes") or {} for op in trace.get("ops") or ()]
    made_in_place = {nid for nodes in made for nid in nodes.values()}  # every version's, not the last
    first: dict[str, str | None] = dict.fromkeys(tid for nodes in made for tid in nodes)
    for node in (trace.get("autograd") or {}).get("nodes") or ():
        for tid in (node.get("outputs") or {}).values():
            if tid in first and first[tid] is None and node["id"] not in made_in_place:
                first[tid] = node["id"]
    return first


def _gradient_rows(
    node: dict[str, Any],
    tensor: dict[str, Any],
    root: str | None,
    flowed: dict[str, Any] | None,
    stored: bool = True,
) -> None:
    """NOTE [gradient rows]: below a tensor's name and facts, one row per gradient it shows: the
    gradient that flowed into it in the last backward pass (``grad_label``: ``∂loss/∂x = …``, drawn
    as an outlined pill: it was not kept), then the ``.grad`` it stores after the cell
    (``stored_label``: ``x.grad = …``, a filled pill; leaves, parameters, tensors that retain grad).
    The box is tall and wide enough for both, so nothing is drawn outside it (over a module box's
    title). ``stored_label`` is set only where there is one: most nodes have none, and of a tensor
    that in-place ops rewrote, only its first node (``stored=False`` for the versions they made); each
    version shows the gradient that reached its own autograd node, if any."""
    chars = []
    if flowed is not None:
        text = f"∂{root}/∂{node['label']} = {summary_text(flowed) or '?'}"  # the box's own label
        node["grad_label"] = shorten(text, MAX_GRAD_LABEL)
        chars.append(len(text))
    if stored and tensor.get("grad"):
        text = f"{node['label']}.grad = {summary_text(tensor['grad']) or '?'}"
        node["stored_label"] = shorten(text, MAX_GRAD_LABEL)
        chars.append(len(text))
    node["h"] = TENSOR_H + (GRAD_ROW_H * len(chars) + GRAD_ROWS_PAD if chars else 0)
    node["w"] = max([node["w"], *(round(min(c, MAX_GRAD_LABEL) * SMALL_CHAR_W + 16) for c in chars)])


def finish_rows(graph: Graph) -> None:
    """Write the gradient rows (NOTE [gradient rows]) of the tensors still drawn: after folding
    (NOTE [folding loops] in fold.py), so that a 2,000-iteration loop formats one iteration's."""
    for node in graph.nodes:
        rows = node.pop("_rows", None)
        if rows is not None:
            _gradient_rows(node, *rows)


def _tensor_node(
    graph: Graph, tensor: dict[str, Any], node_id: str, extra_classes: list[str], group: str | None
) -> int:
    """A tensor's node, drawn in the box of the module ``group`` (None: in no module's box)."""
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
    label = shorten(short_name(tensor, group or ""), MAX_LABEL)
    sub = facts_text(tensor) + (f" · {device}" if device != "cpu" else "")
    index = graph.add(
        node_id,
        "tensor",
        tid,
        label,
        sub,
        classes=classes,
        line=tensor.get("line"),
        group=group,
        h=TENSOR_H,
    )
    # room for the device badge beside the facts (scene.py draws it there): the device is a fact too
    node = graph.nodes[index]
    node["w"] = max(
        node["w"], math.ceil((len(sub) + len(str(tensor.get("device") or ""))) * SMALL_CHAR_W + 30)
    )
    return index


def _build_forward(trace: dict[str, Any], graph: Graph) -> None:
    tensors = {t["id"]: t for t in trace.get("tensors") or ()}
    root, grads, node_grads = _last_grads(trace, tensors)
    first_nodes = _first_nodes(trace)
    error = trace.get("error") or None
    error_op = error.get("op") if error else None
    roots = set((trace.get("backward") or [{}])[-1].get("root") or ())
    cut_ids = {c.get("tensor") for c in trace.get("cuts") or ()}

    def tensor(
        tid: str,
        node_id: str | None = None,
        version: Any = None,
        module: str | None = None,
        grad_node: str | None = None,
    ) -> str:
        """The node of a tensor, or of the version ``version`` an in-place op ran in ``module`` made
        (``grad_node``: the autograd node that op gave it)."""
        node_id = node_id or tid
        if node_id not in graph.index:
            made_at[node_id] = born.get(tid) if version is None else made_at.get(node_id)
            info = tensors.get(tid, {"id": tid})
            extra = ["root"] if tid in roots else []
            extra += ["cut"] if tid in cut_ids else []
            extra += ["version"] if version is not None else []
            group = info.get("module") if version is None else module
            node = graph.nodes[_tensor_node(graph, info, node_id, extra, group)]
            if version is not None:
                node["sublabel"] = f"{node['sublabel']} · v{version}"
                node["w"] = max(node["w"], round(len(node["sublabel"]) * SMALL_CHAR_W + 16))
                node["grad_node"] = grad_node  # graph.js reads the gradient of this node, or none
                node["_rows"] = (info, root, node_grads.get(grad_node) if grad_node else None, False)
            elif tid in first_nodes:  # NOTE [gradients of in-place versions]
                node["grad_node"] = first_nodes[tid]
                node["_rows"] = (info, root, node_grads.get(first_nodes[tid]), True)
            else:
                node["_rows"] = (info, root, grads.get(tid), True)
        return node_id

    current: dict[str, str] = {}  # tensor id -> node id of its latest version (in-place ops)
    readers: dict[str, list[str]] = {}  # node id of a tensor version -> the ops that read it
    produced: set[str] = set()
    op_outputs: dict[str, dict[str, str]] = {}
    # NOTE [folding loops] in fold.py: (operation index, output slot) that made each node
    made_at = graph.made_at
    born: dict[str, tuple[int, int]] = {}
    reads: dict[str, int] = {}
    for op in trace.get("ops") or ():
        for item in op.get("inputs") or ():
            if "tensor" in item:
                reads[item["tensor"]] = reads.get(item["tensor"], 0) + 1
    for k, op in enumerate(trace.get("ops") or ()):
        inputs = [i["tensor"] for i in op.get("inputs") or () if "tensor" in i]
        if not inputs and op["id"] != error_op:
            for j, tid in enumerate(op.get("outputs") or ()):  # a factory (torch.tensor, rand): no node
                born.setdefault(tid, (k, j))
                produced.add(tid)
            continue
        made_at[op["id"]] = (k, -1)
        for i, tid in enumerate(inputs):  # made by no operation (a .grad backward left): by its one reader
            if (
                tid not in produced
                and reads.get(tid) == 1
                and (tensors.get(tid) or {}).get("line") == op.get("line")
            ):
                born.setdefault(tid, (k, 1000 + i))
        sources = [current.get(tid) or tensor(tid) for tid in inputs]  # tensors first: walk order
        label, sub = op_label(op)
        classes = (
            ["op"] + ["inplace"] * bool(op.get("inplace")) + ["no-grad"] * (not op.get("grad_enabled", 1))
        )
        graph.add(
            op["id"],
            "op",
            op["id"],
            label,
            sub,
            classes=classes,
            group=op.get("module"),
            line=op.get("line"),
            h=OP_TWO_ROWS_H if sub else OP_H,
        )
        for source in sources:
            graph.edge(source, op["id"], "data")
            readers.setdefault(source, []).append(op["id"])
        outs = op_outputs.setdefault(op["id"], {})
        for j, tid in enumerate(op.get("outputs") or ()):
            if tid in produced or tid in inputs:  # in-place: the tensor gets a new version node
                # NOTE [write after read]: the ops that read the version this op overwrites ran
                # before it, so it is ranked below them (optimizer.step() below the forward pass
                # that used the parameters), though no edge is drawn between them.
                for reader in readers.get(current.get(tid) or tid, ()):
                    if reader != op["id"]:
                        graph.after.append([graph.index[reader], graph.index[op["id"]]])
                version = (op.get("version") or {}).get(tid, len(outs) + 1)
                node_id = f"{tid}@v{version}"
                while node_id in graph.index:
                    node_id += "'"
                # a version is drawn where the op that made it ran: optimizer.step()'s updates of
                # a module's parameters ran outside any module, so they are outside its box
                made_at[node_id] = (k, j)
                made = (op.get("nodes") or {}).get(tid)
                current[tid] = outs[tid] = tensor(tid, node_id, version, op.get("module"), made)
            else:
                born.setdefault(tid, (k, j))
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
        shapes = shorten(", ".join(shape_text(i.get("shape")) for i in error.get("inputs") or ()), 40)
        if error_op not in graph.index:
            name = error.get("op_name") or error.get("type") or "error"
            graph.add(
                "error",
                "op",
                error_op or "error",
                shorten(name, MAX_LABEL),
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
        node["h"] = OP_H  # one row: the input shapes are written under it (nothing follows a failure)
        label_w = (len(node["label"]) + 2) * CHAR_W  # graph.js writes "✕ " before it
        node["w"] = max(node["w"], round(max(label_w, len(shapes) * SMALL_CHAR_W) + 16))
    if error and error.get("modified_by") in graph.index:  # the in-place op a backward failed on
        node = graph.nodes[graph.index[error["modified_by"]]]
        node["classes"] = [*node["classes"], "modified"]
        node["warning"] = MODIFIED_WARNING
        node["h"] += OP_ROW_H
        node["w"] = max(node["w"], round(len(MODIFIED_WARNING) * SMALL_CHAR_W + 16))


def _made_at(trace: dict[str, Any]) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """(tensor id -> (op index, output slot) of the op that first made it, autograd node id -> the
    in-place op that gave a tensor that node)."""
    tensors: dict[str, tuple[int, int]] = {}
    nodes: dict[str, tuple[int, int]] = {}
    for k, op in enumerate(trace.get("ops") or ()):
        for j, tid in enumerate(op.get("outputs") or ()):
            tensors.setdefault(tid, (k, j))
        for j, nid in enumerate((op.get("nodes") or {}).values()):
            nodes[nid] = (k, 100 + j)
    return tensors, nodes


def _build_autograd(trace: dict[str, Any], graph: Graph) -> None:
    tensors = {t["id"]: t for t in trace.get("tensors") or ()}
    made_tensor, made_node = _made_at(trace)
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
        made = made_node.get(n["id"]) or made_tensor.get(n.get("tensor"))
        graph.made_at[n["id"]] = made
        graph.add(
            n["id"],
            "grad_fn",
            n["id"],
            shorten(str(n.get("name")), MAX_LABEL),
            shorten(sub, MAX_SUBLABEL) if sub else None,
            classes=classes,
            group=group,
            h=32,
            line=info.get("line") if info else None,
        )
    edges = [e for e in trace.get("autograd", {}).get("edges") or () if isinstance(e, dict)]
    for e in edges:
        if e.get("source") in graph.index and e.get("target") in graph.index:
            graph.edge(e["source"], e["target"], "grad")
    # a node of no tensor (TBackward0 inside F.linear) was made with the node that points to it
    changed = True
    while changed:
        changed = False
        for e in edges:
            source, target = graph.made_at.get(e.get("source")), e.get("target")
            if source is not None and target in graph.index and graph.made_at.get(target) is None:
                graph.made_at[target] = (source[0], (source[1], "next", e.get("input_nr")))
                changed = True
    for n in trace.get("autograd", {}).get("nodes") or ():
        info = tensors.get(n.get("tensor"))
        if n.get("name") != "AccumulateGrad" or info is None:
            continue
        made = made_tensor.get(info["id"])
        graph.made_at[f"{n['id']}.grad"] = (made[0], 200 + made[1]) if made else None
        classes = ["grad"] + (["empty"] if info.get("grad") is None else [])
        classes += ["accumulated"] * (info["id"] in accumulated)
        graph.add(
            f"{n['id']}.grad",
            "grad",
            info["id"],
            shorten(tensor_label(info) + ".grad", MAX_LABEL),
            summary_text(info.get("grad")) or "None",
            classes=classes,
            group=info.get("module"),
            h=32,
            line=info.get("line"),
        )
        graph.edge(n["id"], f"{n['id']}.grad", "grad")


def _adopt(graph: Graph) -> None:
    """A grad_fn of no tensor (``TBackward0`` of ``weight.t()`` inside ``F.linear``) whose
    neighbours are all in one module belongs to that module's box."""
    around: list[set[str | None]] = [set() for _ in graph.nodes]
    for s, t, *_ in graph.edges:
        around[s].add(graph.nodes[t]["group"])
        around[t].add(graph.nodes[s]["group"])
    for node, groups in zip(graph.nodes, around, strict=True):
        if node["kind"] == "grad_fn" and node["group"] is None and len(groups) == 1 and None not in groups:
            node["group"] = next(iter(groups))
