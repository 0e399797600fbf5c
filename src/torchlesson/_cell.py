"""Running a notebook cell traced, through IPython, exactly as IPython runs it: ``%%autograd_trace``'s
engine. The capture itself knows nothing of IPython (``torchlesson.capture``)."""

from __future__ import annotations

from contextlib import contextmanager

from .capture import DEFAULT_MAX_OPS
from .capture._frames import DISPATCH_FILES, TRACER_FILES
from .capture._trace import Trace
from .capture._tracebacks import clean_tracebacks
from .capture._tracer import Tracer


@contextmanager
def _numbered_as(shell, outer):
    """Compile the cell under the number of the cell that holds the magic.

    IPython names a cell's code after an execution count (``Cell In[3]`` in tracebacks, the file
    name warnings show), and IPython 9 counts a cell before running it, so the inner ``run_cell``
    would name the learner's code after the next cell (``In[4]``). Only the name changes: the count
    the learner's code can read stays IPython's.
    """
    number = getattr(outer, "execution_count", None)
    compiler = shell.compile
    if number is None or "cache" in vars(compiler):
        yield
        return
    cache = compiler.cache

    def cache_as_outer(transformed_code, _number=0, *args, **kwargs):
        return cache(transformed_code, number, *args, **kwargs)

    compiler.cache = cache_as_outer
    try:
        yield
    finally:
        del compiler.cache


def run_cell_traced(shell, cell: str, *, max_ops: int = DEFAULT_MAX_OPS) -> Trace:
    """Run a notebook cell through IPython exactly as usual, traced; used by ``%%autograd_trace``.

    The cell's output, display, traceback and success or failure are IPython's own: the cell runs
    with ``shell.run_cell``, and a failure is handed on to the cell that holds the magic so the
    notebook stops there as it would without us.
    """
    outer = shell.displayhook.exec_result
    tracer = Tracer(max_ops=max_ops, namespace=shell.user_ns, source=cell)
    with (
        tracer as result_trace,
        clean_tracebacks(shell, TRACER_FILES, DISPATCH_FILES),
        _numbered_as(shell, outer),
    ):
        result = shell.run_cell(cell, store_history=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            tracer.note_exception(error)
    shell.displayhook.exec_result = outer
    if error is not None and outer is not None:
        outer.error_in_exec = error
    return result_trace
