"""The interactive graph widget: what a ``%%autograd_trace`` cell built, drawn in the notebook.

A scene in Python, drawing in JavaScript: :class:`~torchlesson.picture.picture.Picture` builds each
view's scene (every box, text and number final), and ``static/graph.js`` draws it, replays backward
and handles selection, pan and zoom; it formats nothing. The widget never touches torch objects: it
renders ``Trace.to_dict()``.

NOTE [what the browser gets]: one trait, ``picture``: both views' scenes (with the replay's steps),
the details of everything they show, the table and the passes. Not the trace, not the layouts:
only what is drawn. Collapsing a module or picking another pass sends a new ``picture``.
"""

from __future__ import annotations

import pathlib
from typing import Any

import anywidget
import traitlets

from .palette import css
from .picture import VIEWS, Picture

__all__ = ["GraphWidget"]

_STATIC = pathlib.Path(__file__).parent.parent / "static"


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
    _css = css() + (_STATIC / "graph.css").read_text(encoding="utf-8")

    picture = traitlets.Dict(help="both views' scenes, details, table: what graph.js draws").tag(sync=True)
    view = traitlets.Enum(VIEWS, default_value="forward").tag(sync=True)
    selected = traitlets.Unicode(None, allow_none=True, help="selected tensor/op/node id").tag(sync=True)
    collapsed = traitlets.List(
        traitlets.Unicode(),
        default_value=None,
        allow_none=True,
        help="collapsed module paths; None lets the layout collapse big graphs itself",
    ).tag(sync=True)
    unfolded = traitlets.List(
        traitlets.Unicode(), help="folded loops (NOTE [folding loops]) drawn iteration by iteration"
    ).tag(sync=True)
    pass_index = traitlets.Int(
        0, help="the backward pass the gradients and the replay show (default: the last)"
    ).tag(sync=True)

    def __init__(self, trace: dict[str, Any] | Picture, **kwargs: Any) -> None:
        picture = trace if isinstance(trace, Picture) else None
        if picture is None and (not isinstance(trace, dict) or "tensors" not in trace):
            raise TypeError("GraphWidget needs Trace.to_dict(), a dict with 'tensors', 'ops' and 'autograd'.")
        self._picture = picture or Picture(trace)
        index = self._picture.index
        self._counts = (len(index.tensor_list), len(index.ops), len(index.passes))
        # the last pass by default: its gradients are the ones the layout makes room for, and the
        # leaves' .grad is what it left behind
        kwargs.setdefault("pass_index", max(0, self._counts[2] - 1))
        self._ready = False
        super().__init__(**kwargs)
        self._ready = True
        self._redraw()

    @traitlets.validate("pass_index")
    def _check_pass_index(self, proposal: traitlets.Bunch) -> int:
        index, passes = proposal["value"], self._counts[2]
        if index < 0 or (index >= passes and index != 0):
            raise traitlets.TraitError(
                f"pass_index {index} is out of range: the cell ran {passes} backward pass(es)."
            )
        return index

    @traitlets.observe("collapsed", "pass_index", "unfolded")
    def _on_change(self, change: traitlets.Bunch) -> None:
        if self._ready:
            self._redraw()

    def _redraw(self) -> None:
        collapsed = None if self.collapsed is None else list(self.collapsed)
        passes = self.pass_index if self._counts[2] else None
        self.picture = self._picture.state(passes, collapsed, list(self.unfolded))

    def __repr__(self) -> str:
        tensors, ops, passes = self._counts
        return (
            f"GraphWidget({tensors} tensors, {ops} ops, {passes} backward "
            f"pass{'' if passes == 1 else 'es'}, view={self.view!r})"
        )
