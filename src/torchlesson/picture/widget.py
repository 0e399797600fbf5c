"""The interactive graph widget: what a ``%%autograd_trace`` cell built, drawn in the notebook.

Layout in Python, drawing in JavaScript: the positions come from :func:`torchlesson.picture.layout.layout`
(the same ones the static SVG uses); ``static/graph.js`` draws them, replays backward and handles
selection, pan and zoom. The widget never touches torch objects: it renders ``Trace.to_dict()``.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import anywidget
import traitlets

from .labels import tensor_label
from .layout import layout

__all__ = ["GraphWidget"]

_STATIC = pathlib.Path(__file__).parent.parent / "static"
VIEWS = ("forward", "autograd")

# NOTE [what the browser gets]
# The synced state is a trimmed copy of the trace and the layouts: what graph.js draws, shows in its
# panel, table and tooltips, and nothing it can derive. So that a 2,000-node graph stays under 1 KB
# of state per node (tests/test_graph_widget.py measures it):
# - fields at their default are left out (listed in _DEFAULTS; graph.js reads a missing one as it);
# - a summary with its values drops the statistics (the panel shows the values then), and drops
#   shape/dtype/numel where they are the tensor's own;
# - floats keep what torch prints: 4 decimals, at least 5 significant digits (_number);
# - layout nodes drop rank, line, grad_label and stored_label (graph.js writes the gradient of
#   the pass it shows, and the .grad, from the trace), edges their id, and autograd edges travel
#   only in the autograd layout.
_TENSOR_KEYS = (
    "id",
    "name",
    "shape",
    "dtype",
    "device",
    "requires_grad",
    "is_leaf",
    "retains_grad",
    "grad_fn",
    "line",
    "module",
    "kind",
    "created",
    "node",
    "value",
    "grad",
)
_OP_KEYS = ("id", "name", "line", "inputs", "outputs", "grad_enabled", "module", "inplace", "version")
_NODE_KEYS = ("id", "name", "tensor", "earlier")
_PASS_KEYS = ("id", "line", "kind", "root", "gradient", "retain_graph", "order", "grads", "accumulated")
_DEFAULTS = {
    "tensor": {
        "retains_grad": False,
        "created": True,
        "module": None,
        "grad_fn": None,
        "node": None,
        "grad": None,
    },
    "op": {"grad_enabled": True, "module": None, "inplace": False},
    "node": {"earlier": False},
    "layout_node": {"sublabel": None, "group": None, "classes": []},
    "edge": {"label": None},
}
_STATS = ("min", "max", "mean", "std", "norm")
_LAYOUT_DROP = {"node": ("rank", "line", "grad_label", "stored_label"), "edge": ("id",)}


def _number(value: Any) -> Any:
    """A JSON-safe copy of a number or nested list, with the digits torch prints."""
    if isinstance(value, float):
        if not math.isfinite(value):  # JSON has no NaN/inf; graph.js prints these strings as they are
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return float(f"{value:.5g}") if abs(value) < 1 else round(value, 4)
    if isinstance(value, (list, tuple)):
        return [_number(item) for item in value]
    return value


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (anywhere in dicts and lists) as the string the trace
    schema uses, so that the state always serialises (NOTE [the display is total])."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _number(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _summary(summary: dict[str, Any] | None, tensor: dict[str, Any] | None = None) -> dict[str, Any] | None:
    if summary is None:
        return None
    own = tensor or {}
    has_values = summary.get("values") is not None
    out = {}
    for key, item in summary.items():
        if key in ("shape", "dtype") and own.get(key) == item:
            continue
        if key == "numel" and "shape" in own and own.get("shape") == summary.get("shape"):
            continue
        if key in _STATS and has_values:
            continue
        out[key] = item if key in ("shape", "dtype") else _number(item)
    return out


def _trim(item: dict[str, Any], keys: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in keys if k in item and not (k in defaults and item[k] == defaults[k])}


def compact_trace(trace: dict[str, Any]) -> dict[str, Any]:
    """What graph.js needs of ``Trace.to_dict()``: facts, summaries, ops, passes, cuts, error."""
    tensors, by_id = [], {}
    for tensor in trace.get("tensors", []):
        item = _trim(tensor, _TENSOR_KEYS, _DEFAULTS["tensor"])
        if not tensor.get("name"):
            item["label"] = tensor_label(tensor)  # one rule for unnamed tensors: _labels.py's
        item["value"] = _summary(tensor.get("value"), tensor)
        if tensor.get("grad") is not None:
            item["grad"] = _summary(tensor["grad"], tensor)
        tensors.append(item)
        by_id[tensor["id"]] = tensor
    passes = []
    for backward in trace.get("backward", []):
        item = _trim(backward, _PASS_KEYS, {})
        item["gradient"] = _summary(backward.get("gradient"))
        item["grads"] = {tid: _summary(g, by_id.get(tid)) for tid, g in backward.get("grads", {}).items()}
        if backward.get("node_grads"):  # NOTE [gradients of in-place versions] in _capture.py
            item["node_grads"] = {nid: _summary(g) for nid, g in backward["node_grads"].items()}
        passes.append(item)
    return {
        "lines": list(trace.get("lines", [])),
        "tensors": tensors,
        "ops": [_trim(op, _OP_KEYS, _DEFAULTS["op"]) for op in trace.get("ops", [])],
        "nodes": [
            _trim(n, _NODE_KEYS, _DEFAULTS["node"]) for n in trace.get("autograd", {}).get("nodes", [])
        ],
        "backward": passes,
        "cuts": [dict(cut) for cut in trace.get("cuts", [])],
        "error": trace.get("error"),
        "truncated": bool(trace.get("truncated", False)),
        "stopped": trace.get("stopped"),
        "max_ops": trace.get("max_ops"),
    }


def compact_layout(layout: dict[str, Any]) -> dict[str, Any]:
    """``_layout.layout`` output without what graph.js derives (see NOTE [what the browser gets])."""
    nodes = []
    for node in layout["nodes"]:
        item = {
            k: v
            for k, v in node.items()
            if k not in _LAYOUT_DROP["node"] and _DEFAULTS["layout_node"].get(k, ...) != v
        }
        if item.get("ref") == item["id"]:
            del item["ref"]
        nodes.append(item)
    edges = [
        {
            k: v
            for k, v in edge.items()
            if k not in _LAYOUT_DROP["edge"] and _DEFAULTS["edge"].get(k, ...) != v
        }
        for edge in layout["edges"]
    ]
    return {**layout, "nodes": nodes, "edges": edges}


class GraphWidget(anywidget.AnyWidget):
    """The computational graph of a traced cell, with backward replay, as a notebook widget.

    Parameters
    ----------
    trace
        ``Trace.to_dict()`` (schema ``torchlesson.trace/1``).
    view
        ``"forward"`` (tensors and ops as the code ran them) or ``"autograd"`` (the backward graph).

    Examples
    --------
    >>> import torch, torchlesson
    >>> with torchlesson.trace() as t:
    ...     x = torch.tensor([1.0, 2.0], requires_grad=True)
    ...     (x * 2).sum().backward()
    >>> torchlesson.GraphWidget(t.to_dict(), view="autograd")
    GraphWidget(3 tensors, 3 ops, 1 backward pass, view='autograd')
    """

    _esm = _STATIC / "graph.js"
    _css = _STATIC / "graph.css"

    trace = traitlets.Dict(help="trimmed trace: what the browser draws").tag(sync=True)
    layouts = traitlets.Dict(help="{'forward': layout, 'autograd': layout} from _layout.layout").tag(
        sync=True
    )
    view = traitlets.Enum(VIEWS, default_value="forward").tag(sync=True)
    selected = traitlets.Unicode(None, allow_none=True, help="selected tensor/op/node id").tag(sync=True)
    collapsed = traitlets.List(
        traitlets.Unicode(),
        default_value=None,
        allow_none=True,
        help="collapsed module paths; None lets the layout collapse big graphs itself",
    ).tag(sync=True)
    pass_index = traitlets.Int(
        0, help="the backward pass the gradients and the replay show (default: the last)"
    ).tag(sync=True)

    def __init__(self, trace: dict[str, Any], **kwargs: Any) -> None:
        if not isinstance(trace, dict) or "tensors" not in trace:
            raise TypeError("GraphWidget needs Trace.to_dict(), a dict with 'tensors', 'ops' and 'autograd'.")
        self._source = trace
        self._counts = (
            len(trace.get("tensors", [])),
            len(trace.get("ops", [])),
            len(trace.get("backward", [])),
        )
        # the last pass by default: its gradients are the ones the layout makes room for, and the
        # leaves' .grad is what it left behind
        kwargs.setdefault("pass_index", max(0, self._counts[2] - 1))
        super().__init__(trace=json_safe(compact_trace(trace)), **kwargs)
        if not self.layouts:  # a `collapsed=` keyword has already laid it out
            self._relayout()

    @traitlets.validate("pass_index")
    def _check_pass_index(self, proposal: traitlets.Bunch) -> int:
        index, passes = proposal["value"], self._counts[2]
        if index < 0 or (index >= passes and index != 0):
            raise traitlets.TraitError(
                f"pass_index {index} is out of range: the cell ran {passes} backward pass(es)."
            )
        return index

    @traitlets.observe("collapsed")
    def _on_collapsed(self, change: traitlets.Bunch) -> None:
        self._relayout()

    def _relayout(self) -> None:
        collapsed = None if self.collapsed is None else list(self.collapsed)
        self.layouts = json_safe(
            {view: compact_layout(layout(self._source, view, collapsed)) for view in VIEWS}
        )

    def __repr__(self) -> str:
        tensors, ops, passes = self._counts
        return (
            f"GraphWidget({tensors} tensors, {ops} ops, {passes} backward "
            f"pass{'' if passes == 1 else 'es'}, view={self.view!r})"
        )
