"""The Trace: plain facts about what a block of code did to its tensors (schema in docs/trace-schema.md).

Everything that shows a trace (text, static SVG, the graph widget) renders from ``Trace.to_dict()``
and never touches torch objects.
"""

from __future__ import annotations

import copy
import json
from typing import Any

SCHEMA = "torchlesson.trace/1"


class Trace:
    """What a traced block did: tensors, operations, the autograd graph and every backward pass.

    Filled when the ``with torchlesson.trace()`` block (or the ``%%autograd_trace`` cell) ends.
    """

    def __init__(self, data: dict | None = None) -> None:
        self._data: dict[str, Any] | None = data
        self._pending: list = []
        self._deferred: list = []

    def _load(self, data: dict, pending: list | None = None, deferred: list | None = None) -> None:
        self._data = data
        self._pending = pending or []
        self._deferred = deferred or []

    @property
    def _d(self) -> dict:
        if self._data is None:
            raise RuntimeError("the trace is filled when its `with torchlesson.trace()` block ends")
        if self._pending or self._deferred:
            self._summarize_pending()
        return self._data

    def _summarize_pending(self) -> None:
        """Finish the summaries the tracer left for later, the first time anyone reads the trace.

        The statistics of small tensors are computed from the values copied during the block.

        NOTE [lazy summaries]: the statistics of large tensors (parameters, activations) cost as much
        as the operations that made them, so the tracer keeps only a weak reference and the tensor's
        version counter. If the tensor was freed or changed in place since the block ended, the
        summary says so instead of showing numbers the block never saw.
        """
        from ._recording import own_reads

        with own_reads():  # NOTE [our reads are not the learner's calls] in _recording.py
            self._read_pending()

    def _read_pending(self) -> None:
        from ._facts import complete, placeholder, shape_of, summarize, version_of

        deferred, self._deferred = self._deferred, []
        for summary in deferred:
            complete(summary)
        pending, self._pending = self._pending, []
        done: dict[int, dict] = {}  # a leaf's .grad can be both its stored and its flowed gradient
        for container, key, ref, version, shape, dtype in pending:
            tensor = ref()
            if tensor is None:
                container[key] = placeholder(shape, dtype, "freed")
            elif version_of(tensor) != version:
                container[key] = placeholder(shape_of(tensor), dtype, "changed after the trace")
            elif id(tensor) in done:
                container[key] = dict(done[id(tensor)])
            else:
                try:
                    container[key] = done[id(tensor)] = summarize(tensor)
                except Exception as exc:  # reading a trace never fails on one tensor's numbers
                    container[key] = placeholder(shape, dtype, f"unreadable ({type(exc).__name__})")

    # ------------------------------------------------------------------ data
    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the trace as plain JSON-safe data (``schema: "torchlesson.trace/1"``)."""
        return copy.deepcopy(self._d)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self._d, **kwargs)

    @property
    def tensors(self) -> list[dict]:
        return self._d["tensors"]

    @property
    def ops(self) -> list[dict]:
        return self._d["ops"]

    @property
    def backward(self) -> list[dict]:
        return self._d["backward"]

    @property
    def error(self) -> dict | None:
        return self._d["error"]

    @property
    def truncated(self) -> bool:
        return self._d["truncated"]

    def tensor(self, name: str) -> dict:
        """The last tensor named ``name`` (a variable, or a parameter path such as ``model.0.weight``)."""
        found = [t for t in self._d["tensors"] if t["name"] == name]
        if not found:
            names = sorted({t["name"] for t in self._d["tensors"] if t["name"]})
            raise KeyError(f"no tensor named {name!r} in this trace; named tensors: {', '.join(names)}")
        return found[-1]

    def flowing_grad(self, name: str, pass_index: int = -1) -> dict | None:
        """The gradient that flowed into tensor ``name`` in a backward pass (the last by default)."""
        if not self._d["backward"]:
            return None
        return self._d["backward"][pass_index]["grads"].get(self.tensor(name)["id"])

    # ------------------------------------------------------------------ renderings
    def text_view(self) -> TextView:
        """A plain-text summary (what ``%%autograd_trace --text`` shows)."""
        from torchlesson.picture.text import render_text

        return TextView(render_text(self._d))

    def to_svg(self, view: str = "forward") -> str:
        """A standalone SVG drawing of the graph (``view``: ``"forward"`` or ``"autograd"``)."""
        from torchlesson.picture.svg import to_svg

        return to_svg(self._picture(), view=view)

    def to_dot(self, view: str = "forward") -> str:
        """Graphviz DOT source of the graph, for people who use torchviz and Graphviz."""
        from torchlesson.picture.svg import to_dot

        return to_dot(self._d, view=view)

    def to_html(self) -> str:
        """An HTML fragment with the graph as inline SVG (for places without a widget manager)."""
        from torchlesson.picture.svg import to_html

        return to_html(self._picture())

    def widget(self):
        """The interactive graph widget for this trace."""
        from torchlesson.picture.widget import GraphWidget

        return GraphWidget(self._picture())

    def _picture(self):
        """The picture of this trace, made once: each view is laid out once however often it is
        shown (NOTE [lay out once] in picture/picture.py)."""
        from torchlesson.picture.picture import Picture

        if self.__dict__.get("_drawn") is None:
            self.__dict__["_drawn"] = Picture(self._d)
        return self.__dict__["_drawn"]

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        from torchlesson.picture import display_bundle  # NOTE [the display is total] in picture/failures.py

        try:
            picture = self._picture()
        except Exception:  # the bundle says, part by part, what could not be drawn
            picture = None
        return display_bundle(self._d, picture=picture)

    def __repr__(self) -> str:
        if self._data is None:
            return "<Trace (still recording)>"
        from torchlesson.picture.text import render_text

        return render_text(self._d)


class TextView:
    """Plain text that displays as itself (no quotes) in IPython and notebooks."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(self.text)
