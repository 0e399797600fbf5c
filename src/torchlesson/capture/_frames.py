"""Where a torch call comes from in the learner's code: one walk up the stack per call.

The tracer needs, for every torch call it records, the line of the traced block that led to it, whether
the block called it directly (``y = x * 2``) or through a function or module (``model(x)``), the
``nn.Module`` that ran it, the custom ``autograd.Function`` whose ``forward`` ran it, the constructor it
ran in (``nn.Linear(20, 3)`` initialising its weight), whether it ran inside ``torch.compile``'d code, and
the optimizer call it is part of (``opt.step()``).
All of it is on the stack: :meth:`Block.site` walks it once, from the call up to the block.

NOTE [tracer frames]: while tracing, our frames sit between the learner's code and each torch call it
makes (the mode's ``__torch_function__``, the backward runner, the node pre-hooks the engine calls), and
so does torch's dispatch to a mode (``torch.overrides``). Tracebacks drop them and warnings look past
them (``_tracebacks.py``, ``_warnings.py``), the walk skips them; all three know them by file: every
module of this package (``TRACER_FILES``) and ``DISPATCH_FILES``.

NOTE [modules from the stack]: which ``nn.Module`` ran an operation is read from the ``Module._call_impl``
frames between the operation and the block, not from global module hooks. A global hook sends every
module call down torch's slow path, which adds an ``inner()`` frame and other line numbers to a learner's
traceback and makes ``torch.compile(module)`` warn; and hooks are global to every thread, so a model
running in a background thread scrambled the attribution. The stack belongs to the thread that runs the
block, and it is walked anyway to find the line.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import torch
import torch.overrides

_HERE = os.path.dirname(os.path.abspath(__file__))
#: every module of this package: none of their frames is the learner's (NOTE [tracer frames])
TRACER_FILES: tuple[str, ...] = tuple(
    sorted(os.path.join(_HERE, name) for name in os.listdir(_HERE) if name.endswith(".py"))
)
#: torch's dispatch to a torch function mode (``handle_torch_function``)
DISPATCH_FILES: tuple[str, ...] = (torch.overrides.__file__,)
_SKIPPED = frozenset((*TRACER_FILES, *DISPATCH_FILES))
_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_DYNAMO_DIR = os.path.join(_TORCH_DIR, "_dynamo") + os.sep
_OPTIM_DIR = os.path.join(_TORCH_DIR, "optim") + os.sep
_CALL_IMPL = torch.nn.Module._call_impl.__code__
_APPLY = torch.autograd.Function.apply.__func__.__code__
# Python 3.10 and 3.11 run comprehensions in a frame of their own; the code in them is the block's
_COMPREHENSIONS = frozenset(("<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"))


class Site(NamedTuple):
    """Where a torch call came from (frames are only read while the call runs, never kept)."""

    line: int  # the block's line that led to the call
    direct: bool  # the block called it itself (not through a function or module of its own)
    frame: Any  # the block's frame (or the comprehension inside it) that led to the call
    scopes: list  # Module._call_impl and Function.apply frames, innermost first
    constructor: Any  # the outermost __init__ frame on the way, or None
    compiled: Any  # the outermost torch._dynamo frame (a torch.compile'd call), or None
    optimizer: Any  # the outermost torch.optim frame (an optimizer's step or zero_grad), or None


class Block:
    """The traced block: the top level of a notebook cell (``namespace``) or a ``with`` block's frame."""

    def __init__(self, namespace: dict | None, root_frame=None) -> None:
        self.namespace = namespace
        self.root_code = root_frame.f_code if root_frame is not None else None
        self.root_frame = root_frame  # the API's block frame, dropped when the block ends
        self.file: str | None = self.root_code.co_filename if self.root_code is not None else None

    def is_block(self, frame) -> bool:
        """Is ``frame`` the traced block itself: the ``with`` block's frame, or the cell's top level?"""
        if self.root_code is not None:
            return frame.f_code is self.root_code
        # IPython 7.32-7.34 and 8.1-8.4 name a cell's top-level code "<cell line: N>"; a function's
        # code cannot have a name that starts with "<" (lambdas and comprehensions are "<lambda>"...)
        name = frame.f_code.co_name
        return frame.f_globals is self.namespace and (name == "<module>" or name.startswith("<cell line:"))

    def variables(self) -> dict:
        """The block's variables: the notebook's namespace, or the ``with`` block's locals."""
        if self.namespace is not None:
            return self.namespace
        return self.root_frame.f_locals if self.root_frame is not None else {}

    def site(self, frame) -> Site | None:
        """Walk up from ``frame`` (the caller of our handler) to the block; None if it is not on the
        stack (a call from outside the block, e.g. IPython's display machinery)."""
        depth = 0
        scopes: list = []
        constructor = compiled = optimizer = inner = None
        dispatched = False  # the frame below was torch's dispatch to a mode
        root_code, namespace = self.root_code, self.namespace
        while frame is not None:
            code = frame.f_code
            if root_code is not None:
                if code is root_code:
                    break
            elif frame.f_globals is namespace:
                name = code.co_name
                if name == "<module>" or name.startswith("<cell line:"):
                    break
            if code is _CALL_IMPL or code is _APPLY:
                scopes.append(frame)
                depth += 1
            else:
                file = code.co_filename
                if file in _SKIPPED:
                    dispatched = file == DISPATCH_FILES[0]
                    frame = frame.f_back
                    continue
                if file.startswith(_DYNAMO_DIR):
                    if _runs_compiled(frame):
                        compiled = frame
                    depth += 1
                elif file.startswith(_OPTIM_DIR):
                    optimizer = frame
                    depth += 1
                elif code.co_name in _COMPREHENSIONS and (
                    frame.f_globals is namespace or (self.file is not None and file == self.file)
                ):
                    if inner is None and depth == 0:
                        inner = frame  # the block's own code, one frame in
                else:
                    if code.co_name == "__init__":
                        constructor = frame
                    # a torch function in Python that dispatched to the mode is the call itself
                    if not (dispatched and file.startswith(_TORCH_DIR)):
                        depth += 1
                dispatched = False
            frame = frame.f_back
        else:
            return None
        if self.file is None:
            self.file = frame.f_code.co_filename  # the cell's code, as IPython named it
        at = inner if inner is not None else frame
        return Site(at.f_lineno, depth == 0, at, scopes, constructor, compiled, optimizer)

    def error_line(self, exc: BaseException) -> int | None:
        """The block's line in the traceback (the innermost, if the block appears more than once)."""
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if self.is_block(tb.tb_frame):
                line = tb.tb_lineno
            tb = tb.tb_next
        return line

    def release(self) -> None:
        self.root_frame = None


def _runs_compiled(frame) -> bool:
    """Is this torch._dynamo frame the wrapper that runs (or compiles) a torch.compile'd callable?

    ``compile_wrapper`` in torch 2.6+; ``_fn`` before, a name that ``torch._dynamo.disable`` wrappers
    (the optimizer's ``zero_grad`` has one) also use, told apart by their context object."""
    name = frame.f_code.co_name
    if name == "compile_wrapper":
        return True
    return name == "_fn" and type(local(frame, "self")).__name__ not in ("DisableContext", "NoneType")


def local(frame, name: str) -> Any:
    """A local variable of a frame on the stack (``self`` of a module call, ``cls`` of a Function)."""
    return frame.f_locals.get(name)
