"""The picture: ``Trace.to_dict()`` -> what a learner sees (the graph widget, a static SVG, text).

Data flows one way, and every step renders from plain data, never from torch objects::

    trace dict ──► graph    the nodes and edges of one view (forward: tensors and ops; autograd: grad_fns)
               ──► layout   ranks, order and pixels (placement), modules collapsed
               ──► svg      a standalone SVG, an HTML fragment and Graphviz DOT (saved notebooks, exports)
               ──► widget   the interactive graph (``static/graph.js`` draws, Python decides what it says)
               ──► text     the plain-text summary (``--text``, ``text/plain``, ``repr(trace)``)

:func:`display_bundle` is what a notebook shows for a trace: each part is made on its own, so that one
that fails leaves the others and says so (NOTE [the display is total]).
"""

from __future__ import annotations

from .display import display_bundle

__all__ = ["display_bundle"]
