"""The autograd graph as the tracer meets it: which nodes, under which ids, outputting which tensors.

The tracer owns one ``AutogradGraph``. It hands it every ``grad_fn`` it meets; the graph gives each
node reachable from it an id (``n0``, ``n1``... in walk order), records the edges ``(node, input_nr)
-> next node`` as in ``grad_fn.next_functions``, and which tensor records each node outputs.

Autograd nodes are not weak-referenceable, so the graph never holds one: a node is known by
``(id, sequence number)``, and an ``AccumulateGrad`` (whose sequence number is the same for all of
them) by the record of the leaf it accumulates into. The leaf's record comes from the tracer, which
owns the tensor records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

ACCUMULATE_GRAD = "AccumulateGrad"


# node type -> name, for the types whose Python class is named as the node (nearly all): asking a
# node its name builds a string each time, and the tracer asks for every node it walks past
_NAME_OF_TYPE: dict[type, str] = {}


def node_name(node) -> str:
    """``torch::autograd::AccumulateGrad`` -> ``AccumulateGrad``; other names as torch gives them."""
    name = _NAME_OF_TYPE.get(type(node))
    if name is None:
        name = node.name().rsplit("::", 1)[-1]
        if type(node).__name__ == name:  # a generic wrapper type can stand for nodes of many names
            _NAME_OF_TYPE[type(node)] = name
    return name


class AutogradGraph:
    """Node records (``id``, ``name``, ``earlier``, ``line``, ``outputs``) and edges, in walk order."""

    def __init__(self, leaf_record: Callable[[torch.Tensor], dict]) -> None:
        self._leaf_record = leaf_record  # leaf tensor -> its record, made if the tracer has none yet
        self._by_key: dict[Any, dict] = {}  # node key -> record
        self.nodes: list[dict] = []
        self.edges: list[dict] = []
        # NOTE [earlier nodes]: autograd numbers nodes per thread in creation order, so a node whose
        # sequence number is below this one was built before the trace started (an earlier cell).
        self._start_seq = torch._C._autograd._get_sequence_nr() if hasattr(torch._C, "_autograd") else 0

    def made_before(self, node) -> bool:
        """Was ``node`` built before the trace started? (NOTE [earlier nodes])"""
        return node._sequence_nr() < self._start_seq

    def _key(self, node) -> Any:
        if node_name(node) == ACCUMULATE_GRAD:
            return ("leaf", self._leaf_record(node.variable)["id"])
        return (id(node), node._sequence_nr())

    def register(self, root, line: int | None, visit=None) -> dict:
        """Give ids to ``root`` and every node reachable from it (iteratively; each node once).

        Without ``visit`` the walk stops at nodes already known (their subgraph is known too); with
        it, every reachable node is visited once and passed to ``visit(node, record)``.
        """
        key = self._key(root)
        first = self._by_key.get(key)
        if first is not None and visit is None:
            return first
        if first is None:
            first = self._add(root, key, line)
            fresh = {first["id"]}
        else:
            fresh = set()
        stack, seen = [(root, first)], {first["id"]}
        while stack:
            node, record = stack.pop()
            if visit is not None:
                visit(node, record)
            for index, (child, _output_nr) in enumerate(node.next_functions):
                if child is None:
                    continue
                child_key = self._key(child)
                child_record = self._by_key.get(child_key)
                if child_record is None:
                    child_record = self._add(child, child_key, line, parent_earlier=record["earlier"])
                    fresh.add(child_record["id"])
                if record["id"] in fresh:
                    self.edges.append({"source": record["id"], "target": child_record["id"],
                                       "input_nr": index})  # fmt: skip
                if child_record["id"] not in seen and (visit is not None or child_record["id"] in fresh):
                    seen.add(child_record["id"])
                    stack.append((child, child_record))
        return first

    def _add(self, node, key, line: int | None, parent_earlier: bool = False) -> dict:
        name = node_name(node)
        if name == ACCUMULATE_GRAD:
            leaf = self._leaf_record(node.variable)
            outputs = {0: leaf["id"]}
            leaf["node"] = f"n{len(self.nodes)}"
            # a leaf's accumulator belongs to an earlier graph only when reached from one
            earlier = parent_earlier
        else:
            outputs = {}
            earlier = self.made_before(node)
        record = {"id": f"n{len(self.nodes)}", "name": name, "earlier": earlier, "line": line,
                  "outputs": outputs}  # fmt: skip
        self._by_key[key] = record
        self.nodes.append(record)
        return record

    def link_output(self, grad_fn, output_nr: int, record: dict) -> str:
        """``grad_fn``'s output ``output_nr`` is the tensor of ``record`` (``grad_fn`` is registered);
        returns the node's id."""
        node = self._by_key[self._key(grad_fn)]
        node["outputs"][output_nr] = record["id"]
        record["node"] = node["id"]
        return node["id"]

    def to_dict(self) -> dict:
        """The schema's ``autograd`` section."""
        nodes = [
            {
                "id": n["id"],
                "name": n["name"],
                "tensor": n["outputs"].get(0, next(iter(n["outputs"].values()), None)),
                "outputs": {str(k): v for k, v in sorted(n["outputs"].items())},
                "earlier": n["earlier"],
                "line": n["line"],
            }
            for n in self.nodes
        ]
        return {"nodes": nodes, "edges": self.edges}

    def release(self) -> None:
        """Forget which key names which node, once the trace is built."""
        self._by_key = {}
