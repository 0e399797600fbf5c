"""The tracer: installs the observers when a block starts, removes every one when it ends, and hands
each torch call to the part that records it.

How it observes (and why nothing is left behind):

* a ``TorchFunctionMode`` sees every torch call made by the thread running the block (``mul``,
  ``linear``, ``Tensor.backward``...), calls it unchanged and has it recorded (``_forward.py``,
  ``_backward.py``); where each call came from is read off the stack (``_frames.py``);
* during each backward pass only, a pre-hook on every autograd node of that pass sees the gradient
  arriving at the node (NOTE [intermediate gradients] in _backward.py).

The mode is taken off torch's mode stack, and only the mode, however the block ends and wherever a
mode the learner left open sits above it; every hook is removed in ``finally`` blocks. The tracer
keeps weak references to tensors only and identifies autograd nodes by ``(id, sequence number)``
without holding them, so a learner's tensors and graphs are freed exactly as without tracing.
"""

from __future__ import annotations

import sys
from contextlib import suppress
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from . import DEFAULT_MAX_OPS
from ._backward import Backward
from ._calls import BACKWARD, ESCAPE, GRAD, OP, SET_REQUIRES_GRAD, SKIP, classify
from ._finish import finish
from ._forward import _IN_COMPILED, Forward
from ._frames import DISPATCH_FILES, TRACER_FILES, Block
from ._leaf_gradients import LeafGradients
from ._names import Bindings
from ._recording import Recording, own_reads
from ._trace import SCHEMA, Trace
from ._tracebacks import strip_dispatch_frames
from ._warnings import relocate

# NOTE [compiled calls] in _forward.py: dynamo must see a mode that does nothing while it compiles
_COUNTED = frozenset((OP, BACKWARD, GRAD))  # what counts as an operation past --max-ops
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None) or torch._utils.is_compiling


class _Recorder(TorchFunctionMode):
    """The torch function mode; all state lives on the tracer it reports to.

    Its ``__enter__`` and ``__exit__`` stay torch's own: dynamo traces through a mode only when they are.
    """

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.rec = tracer.rec
        self.forward = tracer.forward
        self.backward = tracer.backward
        self.leaf_grads = tracer.leaf_grads
        self.kinds: dict[Any, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        __tracebackhide__ = True
        if _is_compiling():  # NOTE [compiled calls] in _forward.py
            return func(*args, **(kwargs or {}))
        if kwargs is None:
            kwargs = {}
        try:
            kind = self.kinds[func]
        except (KeyError, TypeError):
            kind = classify(func)
            with suppress(TypeError):  # an unhashable callable is classified every time
                self.kinds[func] = kind
        rec = self.rec
        if rec.truncated:  # past --max-ops operations are only counted
            if kind in _COUNTED:
                rec.op_count += 1
            return func(*args, **kwargs)
        if kind == SKIP or rec.stopped is not None:
            return func(*args, **kwargs)
        if kind == ESCAPE:
            if self.leaf_grads and args:
                rec.guarded(self.leaf_grads.flush_touching, [args[0]])
            return func(*args, **kwargs)
        if kind in (BACKWARD, GRAD):
            return self.backward.run(func, kind, args, kwargs, sys._getframe(1))
        forward = self.forward
        try:
            with own_reads():
                call = forward.before_call(func, kind, args, kwargs, sys._getframe(1))
        except Exception as exc:  # NOTE [the tracer never breaks the cell] in _recording.py
            rec.stop(exc)
            return func(*args, **kwargs)
        if call is None or call is _IN_COMPILED:  # an attribute set (x.grad = None), or compiled code
            return func(*args, **kwargs)
        try:
            out = func(*args, **kwargs)
        except BaseException as exc:
            rec.guarded(forward.op_failed, func, args, kwargs, call, exc)
            raise
        if kind == SET_REQUIRES_GRAD:
            rec.guarded(forward.requires_grad_set, args, call)
        else:
            rec.guarded(forward.record_op, func, args, kwargs, out, call)
        return out


class Tracer:
    """Records what a block of code does to tensors and gradients (see :func:`trace`).

    Use it as a context manager; ``__enter__`` returns the :class:`Trace`, filled when the block ends.
    """

    SCHEMA = SCHEMA

    def __init__(
        self, *, max_ops: int = DEFAULT_MAX_OPS, namespace: dict | None = None, source: str | None = None
    ) -> None:
        if isinstance(max_ops, bool) or not isinstance(max_ops, int) or max_ops < 1:
            raise ValueError(f"max_ops must be a positive whole number of operations, not {max_ops!r}")
        self.max_ops = max_ops
        self.namespace = namespace
        self.source = source
        self.trace = Trace()
        self.error: dict | None = None
        self._active = False

    def __enter__(self) -> Trace:
        if self._active:
            raise RuntimeError("this trace is already running")
        self._active = True
        # the Python API: the block's own frame is "the cell"; its variables name the tensors
        self.block = Block(self.namespace, sys._getframe(1) if self.namespace is None else None)
        tensors = [v for v in list(self.block.variables().values()) if isinstance(v, torch.Tensor)]
        self.rec = Recording(self.max_ops, tensors)
        self.leaf_grads = LeafGradients(self.rec.deferred)  # NOTE [late leaf gradients]
        self.bindings = Bindings(self.rec, self.block)
        self.forward = Forward(self.rec, self.block, self.leaf_grads, self.bindings)
        self.backward = Backward(self.rec, self.block, self.forward, self.leaf_grads)
        self._mode = _Recorder(self)
        self._relocator = relocate((*TRACER_FILES, *DISPATCH_FILES))
        try:
            torch._C._push_on_torch_function_stack(self._mode)
        except BaseException:
            self._relocator.remove()
            raise
        return self.trace

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            _remove_mode(self._mode)
        finally:
            self._relocator.remove()
        if exc is not None:
            strip_dispatch_frames(tb, TRACER_FILES, DISPATCH_FILES)
            self.note_exception(exc)
        data, pending = finish(self)
        self.trace._load(data, pending, self.rec.deferred)
        self._active = False

    def note_exception(self, exc: BaseException) -> None:
        """The block raised ``exc``: describe it, with the failing operation when we saw it."""
        message = str(exc).strip()
        error = {"type": type(exc).__name__, "message": message, "line": self.block.error_line(exc),
                 "op": None, "op_name": None, "inputs": []}  # fmt: skip
        op_error = self.forward.op_error
        if op_error is not None and op_error["exc"] == id(exc):
            error.update({k: v for k, v in op_error.items() if k != "exc"})
            if op_error["line"] is not None:
                error["line"] = op_error["line"]
        self.error = error


def _remove_mode(mode: TorchFunctionMode) -> None:
    """Take ``mode`` off torch's function-mode stack, wherever it is, keeping every other mode in place
    (a learner's mode entered in the block and never exited sits above ours)."""
    above = []
    with own_reads():
        while torch._C._len_torch_function_stack():
            top = torch._C._pop_torch_function_stack()
            if top is mode:
                break
            above.append(top)
        for other in reversed(above):
            torch._C._push_on_torch_function_stack(other)


def trace(max_ops: int = DEFAULT_MAX_OPS) -> Tracer:
    """Record what the code in a ``with`` block does to tensors and gradients.

    The block runs exactly as without tracing; afterwards the returned :class:`Trace` holds plain
    facts (``to_dict()``), draws itself in a notebook, and keeps no tensor alive.

    >>> import torch, torchlesson
    >>> with torchlesson.trace() as t:
    ...     x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ...     (x * 2).sum().backward()
    >>> t.tensor("x")["grad"]["values"]
    [2.0, 2.0, 2.0]
    """
    return Tracer(max_ops=max_ops)
