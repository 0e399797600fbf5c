"""Synthetic trace dicts (schema ``torchlesson.trace/1``) for layout and rendering tests.

:class:`TraceBuilder` records tensors, ops and the autograd graph the way the trace engine does,
without torch: each op whose inputs require grad gets a ``<Name>Backward0`` node pointing at its
inputs' nodes (a leaf's node is its ``AccumulateGrad``). The shape generators (:func:`chain`,
:func:`tree`, :func:`diamonds`, :func:`mlp`) build graphs of about ``n`` forward-view nodes.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any


def summary(shape: list[int], fill: float = 1.0, dtype: str = "float32") -> dict[str, Any]:
    numel = math.prod(shape)
    values: Any = fill
    for size in reversed(shape):
        values = [values] * size if not isinstance(values, list) else [list(values) for _ in range(size)]
    return {
        "shape": list(shape),
        "dtype": dtype,
        "numel": numel,
        "values": values if numel <= 64 else None,
        "min": fill,
        "max": fill,
        "mean": fill,
        "std": 0.0,
        "norm": abs(fill) * math.sqrt(numel),
    }


class TraceBuilder:
    """Build a trace dict step by step; ids come from counters, as in the engine."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.tensors: list[dict[str, Any]] = []
        self.ops: list[dict[str, Any]] = []
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, str]] = []
        self.cuts: list[dict[str, Any]] = []
        self.passes: list[dict[str, Any]] = []
        self.modules: dict[str, str] = {}
        self.error: dict[str, Any] | None = None
        self._by_id: dict[str, dict[str, Any]] = {}

    def _line(self, text: str) -> int:
        self.lines.append(text)
        return len(self.lines)

    def _node(self, name: str, tensor: str) -> str:
        nid = f"n{len(self.nodes)}"
        self.nodes.append({"id": nid, "name": name, "tensor": tensor, "earlier": False})
        return nid

    def _tensor(self, name: str | None, shape: list[int], **facts: Any) -> str:
        tid = f"t{len(self.tensors)}"
        tensor = {
            "id": tid,
            "name": name,
            "shape": list(shape),
            "dtype": facts.pop("dtype", "float32"),
            "device": facts.pop("device", "cpu"),
            "requires_grad": False,
            "is_leaf": True,
            "retains_grad": False,
            "grad_fn": None,
            "line": None,
            "module": None,
            "kind": "constant",
            "created": True,
            "version": 0,
            "node": None,
            "value": summary(shape),
            "grad": None,
        }
        tensor.update(facts)
        self.tensors.append(tensor)
        self._by_id[tid] = tensor
        return tid

    def leaf(
        self,
        name: str | None,
        shape: list[int],
        requires_grad: bool = True,
        module: str | None = None,
        created: bool = True,
        **facts: Any,
    ) -> str:
        """A factory-made tensor: ``name = torch.rand(shape, requires_grad=...)`` or a parameter."""
        kind = "parameter" if module else "leaf" if requires_grad else "constant"
        line = self._line(f"{name} = torch.rand({shape}, requires_grad={requires_grad})")
        tid = self._tensor(name, shape, requires_grad=requires_grad, kind=kind, module=module, line=line)
        tid_facts = self._by_id[tid]
        tid_facts.update(created=created, **facts)
        if requires_grad:
            tid_facts["node"] = self._node("AccumulateGrad", tid)
        self.ops.append(
            {
                "id": f"o{len(self.ops)}",
                "name": "rand",
                "line": line,
                "inputs": [{"value": str(shape)}],
                "outputs": [tid],
                "grad_enabled": True,
                "module": None,
                "inplace": False,
            }
        )
        return tid

    def op(
        self,
        name: str,
        inputs: list[Any],
        out: str | None = None,
        shape: list[int] | None = None,
        module: str | None = None,
        grad_enabled: bool = True,
        backward_name: str | None = None,
    ) -> str:
        """``out = name(*inputs)``; a str input starting with ``t`` is a tensor id, others are values."""
        tensor_ids = [i for i in inputs if isinstance(i, str) and i in self._by_id]
        shape = shape if shape is not None else self._by_id[tensor_ids[0]]["shape"]
        line = self._line(f"{out} = {name}({', '.join(map(str, inputs))})")
        needs_grad = grad_enabled and any(self._by_id[t]["requires_grad"] for t in tensor_ids)
        bw = backward_name or name.capitalize() + "Backward0"
        tid = self._tensor(out, shape, line=line, module=module, requires_grad=needs_grad)
        if needs_grad:
            node = self._node(bw, tid)
            self._by_id[tid].update(is_leaf=False, grad_fn=bw, kind="intermediate", node=node)
            for source in tensor_ids:
                if self._by_id[source]["node"]:
                    self.edges.append({"source": node, "target": self._by_id[source]["node"]})
        self.ops.append(
            {
                "id": f"o{len(self.ops)}",
                "name": name,
                "line": line,
                "inputs": [{"tensor": i} if i in tensor_ids else {"value": str(i)} for i in inputs],
                "outputs": [tid],
                "grad_enabled": grad_enabled,
                "module": module,
                "inplace": False,
            }
        )
        return tid

    def inplace(self, name: str, tensor: str, value: Any) -> None:
        """``tensor.name(value)``, e.g. ``add_``: outputs the same tensor, bumps its version."""
        facts = self._by_id[tensor]
        facts["version"] += 1
        self.ops.append(
            {
                "id": f"o{len(self.ops)}",
                "name": name,
                "line": self._line(f"{facts['name']}.{name}({value})"),
                "inputs": [{"tensor": tensor}, {"value": str(value)}],
                "outputs": [tensor],
                "grad_enabled": True,
                "module": None,
                "inplace": True,
                "version": {tensor: facts["version"]},
            }
        )

    def backward(self, root: str, fills: dict[str, float] | None = None) -> None:
        """``root.backward()``: every tensor reachable from the root gets a gradient of ones, or of
        ``fills[tensor id]`` where given."""
        fills = fills or {}
        start = self._by_id[root]["node"]
        succ: dict[str, list[str]] = {}
        indeg: dict[str, int] = {}
        seen, queue = {start}, deque([start])
        while queue:
            nid = queue.popleft()
            for e in self.edges:
                if e["source"] == nid:
                    succ.setdefault(nid, []).append(e["target"])
                    indeg[e["target"]] = indeg.get(e["target"], 0) + 1
                    if e["target"] not in seen:
                        seen.add(e["target"])
                        queue.append(e["target"])
        order, queue = [], deque([start])
        while queue:
            nid = queue.popleft()
            order.append(nid)
            for t in succ.get(nid, ()):
                indeg[t] -= 1
                if indeg[t] == 0:
                    queue.append(t)
        by_node = {n["id"]: n for n in self.nodes}
        grads, accumulated = {}, []
        for nid in order:
            tid = by_node[nid]["tensor"]
            grads[tid] = summary(self._by_id[tid]["shape"], fills.get(tid, 1.0))
            if by_node[nid]["name"] == "AccumulateGrad":
                accumulated.append(tid)
                self._by_id[tid]["grad"] = grads[tid]
        line = self._line(f"{self._by_id[root]['name']}.backward()")
        self.passes.append(
            {
                "id": f"b{len(self.passes)}",
                "line": line,
                "kind": "backward",
                "root": [root],
                "gradient": None,
                "retain_graph": False,
                "order": order,
                "grads": grads,
                "accumulated": accumulated,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        trace = {
            "schema": "torchlesson.trace/1",
            "lines": self.lines,
            "tensors": self.tensors,
            "ops": self.ops,
            "autograd": {"nodes": self.nodes, "edges": self.edges},
            "backward": self.passes,
            "cuts": self.cuts,
            "error": self.error,
            "truncated": False,
            "max_ops": 5000,
        }
        if self.modules:
            trace["modules"] = dict(self.modules)
        return trace


def seed() -> dict[str, Any]:
    """The seed lesson cell: ``y = x * 2; z = y + 3; loss = z.sum(); loss.backward()``."""
    b = TraceBuilder()
    x = b.leaf("x", [3])
    y = b.op("mul", [x, 2], "y")
    z = b.op("add", [y, 3], "z")
    loss = b.op("sum", [z], "loss", shape=[])
    b.backward(loss, fills={x: 2.0})  # d loss / d x = 2, everything after x passes 1 through
    return b.to_dict()


def failing_matmul(
    message: str = "mat1 and mat2 shapes cannot be multiplied",
) -> tuple[TraceBuilder, str, str]:
    """A cell whose ``a @ c`` failed on line 3: (builder, id of a, id of c)."""
    b = TraceBuilder()
    a = b.leaf("a", [2, 3], requires_grad=False)
    c = b.leaf("c", [4, 5], requires_grad=False)
    b.error = {
        "type": "RuntimeError",
        "message": message,
        "line": 3,
        "op": None,
        "op_name": "matmul",
        "inputs": [{"shape": [2, 3], "tensor": a}, {"shape": [4, 5], "tensor": c}],
    }
    return b, a, c


def chain(n: int) -> dict[str, Any]:
    """x -> [op] -> t -> [op] -> ... : about n forward nodes in one column."""
    b = TraceBuilder()
    t = b.leaf("x", [4])
    for k in range((n - 1) // 2):
        t = b.op(("mul", "add", "tanh")[k % 3], [t, 2] if k % 3 < 2 else [t], f"h{k}")
    return b.to_dict()


def tree(n: int) -> dict[str, Any]:
    """A balanced sum of about n/3 leaves, added pairwise."""
    b = TraceBuilder()
    level = [b.leaf(f"x{k}", [2]) for k in range(max(2, (n + 2) // 3))]
    while len(level) > 1:
        pairs = [level[k : k + 2] for k in range(0, len(level), 2)]
        level = [b.op("add", pair, None) if len(pair) == 2 else pair[0] for pair in pairs]
    b.backward(b.op("sum", level, "loss", shape=[]))
    return b.to_dict()


def diamonds(n: int) -> dict[str, Any]:
    """Repeated diamonds with a long side: a = t*2; c = a+1; t = t*c (6 nodes each)."""
    b = TraceBuilder()
    t = b.leaf("x", [3])
    for k in range(max(1, (n - 1) // 6)):
        a = b.op("mul", [t, 2], f"a{k}")
        c = b.op("add", [a, 1], f"c{k}")
        t = b.op("mul", [t, c], f"d{k}")
    b.backward(b.op("sum", [t], "loss", shape=[]))
    return b.to_dict()


def mlp(n: int, width: int = 8) -> dict[str, Any]:
    """``model = nn.Sequential(Linear, ReLU, Linear, ReLU, ...)`` on a batch, then MSE-like loss:
    6 forward nodes per Linear+ReLU pair, module paths ``model.0``, ``model.1``..."""
    b = TraceBuilder()
    h = b.leaf("inputs", [2, width], requires_grad=False, created=False)
    for k in range(max(1, (n - 6) // 6)):
        linear, relu = f"model.{2 * k}", f"model.{2 * k + 1}"
        b.modules.update({"model": "Sequential", linear: "Linear", relu: "ReLU"})
        w = b.leaf(f"{linear}.weight", [width, width], module=linear)
        bias = b.leaf(f"{linear}.bias", [width], module=linear)
        h = b.op("linear", [h, w, bias], None, module=linear, backward_name="AddmmBackward0")
        h = b.op("relu", [h], None, module=relu)
    target = b.leaf("target", [2, width], requires_grad=False)
    diff = b.op("sub", [h, target], "diff")
    b.backward(b.op("sum", [diff], "loss", shape=[]))
    return b.to_dict()


SHAPES = {"chain": chain, "tree": tree, "diamonds": diamonds, "mlp": mlp}


def forward_node_count(trace: dict[str, Any]) -> int:
    """Nodes the forward view draws: every tensor plus every op that has a tensor input."""
    ops = sum(1 for op in trace["ops"] if any("tensor" in i for i in op["inputs"]))
    return len(trace["tensors"]) + ops
