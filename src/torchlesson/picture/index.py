"""The lookups every part of the picture needs from a trace dict, made once per trace; and the
gradient a pass sent into a box."""

from __future__ import annotations

from typing import Any

from .labels import root_label
from .labels import tensor_label as name_of


class Index:
    """Lookups a scene needs from the trace, made once per trace."""

    def __init__(self, trace: dict[str, Any]) -> None:
        def dicts(value: Any) -> list[dict]:
            return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []

        self.trace = trace
        self.tensor_list = dicts(trace.get("tensors"))
        self.tensors = {t["id"]: t for t in self.tensor_list if isinstance(t.get("id"), str)}
        self.ops = {o["id"]: o for o in dicts(trace.get("ops")) if isinstance(o.get("id"), str)}
        autograd = trace.get("autograd") if isinstance(trace.get("autograd"), dict) else {}
        self.nodes = {n["id"]: n for n in dicts(autograd.get("nodes")) if isinstance(n.get("id"), str)}
        self.passes = dicts(trace.get("backward"))
        self.lines = [str(line) for line in trace.get("lines") or () if isinstance(line, str)]
        self.error = trace.get("error") if isinstance(trace.get("error"), dict) else None
        self.cuts = dicts(trace.get("cuts"))

    def name(self, tid: Any) -> str:
        return name_of(self.tensors.get(tid) or {"id": tid})

    def source(self, line: Any) -> str:
        return self.lines[line - 1].strip() if isinstance(line, int) and 0 < line <= len(self.lines) else ""

    def root(self, passage: dict | None) -> str:
        return root_label([self.name(r) for r in (passage or {}).get("root") or ()])

    def tensor_of(self, node: dict) -> dict | None:
        """The tensor a scene node stands for (a tensor, its autograd node, its .grad), or None."""
        ref = node.get("ref")
        if ref in self.tensors:
            return self.tensors[ref]
        ag = self.nodes.get(ref)
        return self.tensors.get(ag.get("tensor")) if ag else None


def flowed_into(passage: dict | None, node: dict, tensor: dict | None) -> Any:
    """The gradient the pass sent into this box: each box of an in-place-rewritten tensor shows
    what its own autograd node received (NOTE [gradients of in-place versions] in capture/_backward.py)."""
    if not passage or tensor is None:
        return None
    if "grad_node" in node:
        return (passage.get("node_grads") or {}).get(node["grad_node"]) if node["grad_node"] else None
    return (passage.get("grads") or {}).get(tensor.get("id"))


def grad_label(index: Index, passage: dict | None, label: str) -> str:
    return f"∂{index.root(passage)}/∂{label}"
