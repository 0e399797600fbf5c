"""The picture: ``Trace.to_dict()`` -> what a learner sees (the graph widget, a static SVG, text).

Data flows one way, and every step renders from plain data, never from torch objects::

    trace dict ─► graph     nodes and edges of one view (forward: tensors and ops; autograd: grad_fns)
               ─► story     building a model, an optimizer call: a box each (NOTE [the story of a cell])
               ─► fold      a loop's iterations drawn once, × N (NOTE [folding loops])
               ─► groups    modules, stories and folded loops as boxes, collapsed to one node each on
                            demand; what the first view collapses (NOTE [the first view])
               ─► layout    ranks and order (layout.py), pixels (placement.py)
               ─► scene     every box, text and number final (scene.py; the panel, table and replay:
                            panel.py; sentences about the whole trace: messages.py; colours: palette.py)
               ─► svg       the static picture (saved notebooks, exports) and Graphviz DOT
               ─► widget    the interactive graph: static/graph.js draws the scene, formats nothing
    trace dict ─► text      the plain-text summary (``--text``, ``text/plain``, ``repr(trace)``)

picture.py keeps one trace's layouts and scenes (NOTE [lay out once]) within a budget of bytes
(NOTE [a budget for what a cell saves]); index.py holds the lookups they all share.

:func:`display_bundle` is what a notebook shows for a trace: each part is made on its own, so that one
that fails leaves the others and says so (NOTE [the display is total]).
"""

from __future__ import annotations

from .display import display_bundle

__all__ = ["display_bundle"]
