"""Capture: what a block of code does to tensors and gradients, recorded as a :class:`Trace`.

``trace()`` returns a :class:`Tracer`; ``with`` it around the code, and the :class:`Trace` it hands out
is filled with plain facts when the block ends. The parts, each owning one thing:

* ``_tracer``: set-up and tear-down of the observers, the torch function mode;
* ``_recording``: the table of tensor records, the guard (the tracer never breaks the cell);
* ``_frames``: where a call comes from (block line, module, Function, constructor, compiled code);
* ``_forward``: operations, in-place versions, cuts, compiled calls;
* ``_backward``: backward passes, node pre-hooks; ``_leaf_gradients``: leaf gradients read late;
* ``_names`` and ``_expressions``: variables that held each tensor, labels from the source text;
* ``_finish``: the facts at the block's end and the trace's data; ``_trace``: the Trace itself;
* ``_facts``, ``_calls``, ``_autograd_graph``: tensors, torch calls and autograd nodes as plain facts;
* ``_tracebacks`` and ``_warnings``: tracebacks and warnings read as without tracing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: how many operations a trace records unless told otherwise
DEFAULT_MAX_OPS = 5000

__all__ = ["DEFAULT_MAX_OPS", "SCHEMA", "Trace", "Tracer", "trace"]

# imported on first use, so that the magics can read DEFAULT_MAX_OPS without importing torch
_LAZY = {"SCHEMA": "_trace", "Trace": "_trace", "Tracer": "_tracer", "trace": "_tracer"}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._trace import SCHEMA, Trace
    from ._tracer import Tracer, trace


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchlesson.capture' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
