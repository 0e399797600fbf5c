"""Tracebacks from a traced block read exactly as without tracing.

While a trace runs, the tracer's frames (and torch's dispatch to them) sit between the learner's code
and the torch call that failed. ``strip_dispatch_frames`` unlinks them from a traceback; the tracer
says which files are its own (NOTE [tracer frames] in ``_frames.py``). ``clean_tracebacks`` has
IPython show a traced cell's tracebacks that way.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator
from contextlib import contextmanager


@contextmanager
def clean_tracebacks(shell, tracer_files: Collection[str], torch_files: Collection[str]) -> Iterator[None]:
    """While the traced cell runs, show its tracebacks without the tracer's own frames."""
    if shell.custom_exceptions:  # someone else handles exceptions already: leave them be
        yield
        return

    def handler(self, etype, value, tb, tb_offset=None):
        if issubclass(etype, SyntaxError):
            self.showsyntaxerror()
        else:
            strip_dispatch_frames(tb, tracer_files, torch_files)
            self.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return []

    shell.set_custom_exc((Exception,), handler)
    try:
        yield
    finally:
        shell.set_custom_exc((), None)


def strip_dispatch_frames(tb, tracer_files: Collection[str], torch_files: Collection[str]) -> None:
    """Unlink the tracer's frames (and torch's dispatch to it) from a traceback, in place.

    ``torch_files`` are torch's dispatch to a mode (``torch.overrides``): a run of frames from them
    and ``tracer_files`` goes only when one of its frames is the tracer's, so torch dispatching to
    someone else's ``__torch_function__`` stays. A call that reached us through ``handle_torch_function``
    re-enters the same function after our frame, so the frame that dispatched is dropped as well: the
    traceback then reads exactly as it would without tracing.
    """
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    dispatch_files = (*tracer_files, *torch_files)
    files = [e.tb_frame.f_code.co_filename for e in entries]
    keep = [True] * len(entries)
    i = 0
    while i < len(entries):
        if files[i] in dispatch_files:
            start = i
            while i < len(entries) and files[i] in dispatch_files:
                i += 1
            if any(f in tracer_files for f in files[start:i]):
                for k in range(start, i):
                    keep[k] = False
                before, after = start - 1, i
                if (before > 0 and after < len(entries)
                        and entries[before].tb_frame.f_code is entries[after].tb_frame.f_code):  # fmt: skip
                    keep[before] = False
        else:
            i += 1
    kept = [e for e, k in zip(entries, keep, strict=False) if k]
    for first, second in itertools.pairwise(kept):
        first.tb_next = second
    if kept:
        kept[-1].tb_next = None
