"""Warnings raised under the tracer point at the learner's line, as they would without it.

Python attributes a warning to a frame counted ``stacklevel`` frames up from where it was raised. While
tracing, the tracer's ``__torch_function__`` frame (and torch's dispatch to it) sit between the learner's
code and the torch function, so a warning that natively names the learner's line would name ours, and
Python's "show once per location" bookkeeping would happen in our module instead of the learner's.

NOTE [relocated warnings]: while a trace runs, a filter that matches only warnings attributed to this
package's capture module or to ``torch.overrides`` lets them through unfiltered to our ``showwarning``.
There, the stack is still intact: we find the frame the warning would have named without tracing and
re-issue it with ``warnings.warn_explicit`` at that frame's file, line and registry, so the learner's own
filters and "once" bookkeeping apply exactly as without us. Everything else is handed to the
``showwarning`` that was there before.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

_OUR_MODULES = r"^(torchlesson\._capture|torch\.overrides)$"


class WarningRelocator:
    """Installed for the duration of a trace; ``remove()`` restores the warnings module as it was."""

    def __init__(self, dispatch_files: tuple[str, ...]) -> None:
        self.dispatch_files = dispatch_files
        self._previous = warnings.showwarning
        warnings.filterwarnings("always", module=_OUR_MODULES)
        self._filter = warnings.filters[0]
        warnings.showwarning = self.showwarning

    def remove(self) -> None:
        if warnings.showwarning == self.showwarning:
            warnings.showwarning = self._previous
        try:
            warnings.filters.remove(self._filter)
        except ValueError:  # the learner reset the filters meanwhile
            pass
        else:
            warnings._filters_mutated()  # type: ignore[attr-defined]

    def showwarning(self, message, category, filename, lineno, file=None, line=None) -> None:
        if filename not in self.dispatch_files:
            self._previous(message, category, filename, lineno, file, line)
            return
        frame = self._native_frame()
        if frame is None:
            self._previous(message, category, filename, lineno, file, line)
            return
        module_globals: dict[str, Any] = frame.f_globals
        warnings.warn_explicit(
            message,
            category,
            frame.f_code.co_filename,
            frame.f_lineno,
            module=module_globals.get("__name__", "<string>"),
            registry=module_globals.setdefault("__warningregistry__", {}),
            # no module_globals, as warnings.warn passes none: with them, warn_explicit asks the
            # module's loader for its source, and `python -c` code's loader raises ImportError
        )

    def _native_frame(self):
        """The frame the warning names when no tracer sits on the stack."""
        frame = sys._getframe(1)
        inner = None
        while frame is not None and frame.f_code.co_filename not in self.dispatch_files:
            inner, frame = frame, frame.f_back
        while frame is not None and frame.f_code.co_filename in self.dispatch_files:
            frame = frame.f_back
        # a Python function that dispatched to us through handle_torch_function was entered twice
        if frame is not None and inner is not None and frame.f_code is inner.f_code:
            frame = frame.f_back
        return frame
