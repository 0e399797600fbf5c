"""Warnings raised under the tracer point at the learner's line, as they would without it.

Python attributes a warning to a frame counted ``stacklevel`` frames up from where it was raised. While
tracing, the tracer's ``__torch_function__`` frame (and torch's dispatch to it) sit between the learner's
code and the torch function, so a warning that natively names the learner's line would name ours, and
Python's "show once per location" bookkeeping would happen in our module instead of the learner's.

NOTE [relocated warnings]: while a trace runs, a filter that matches only warnings attributed to this
package or to ``torch.overrides`` lets them through to ``warnings._showwarnmsg``, which we replace.
There, the stack is still intact: we find the frame the warning would have named without tracing and
re-issue it with ``warnings.warn_explicit`` at that frame's file, line and registry, so the learner's own
filters, ``catch_warnings(record=True)`` and "once" bookkeeping apply exactly as without us. Everything
else goes on to the ``_showwarnmsg`` that was there before.

Two rules keep this invisible:

* the filter is put into ``warnings.filters`` without ``warnings._filters_mutated()``: that call starts
  Python's "shown once" memory afresh in every module, so a library warning already shown would show
  again. Our filter matches our modules only, so no remembered decision changes.
* the warnings module is one per process while traces can nest, and a with block can close traces in
  any order: one relocator is installed for all traces, by the first to start, and removed by the last
  to end (:func:`relocate`).
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import warnings
from typing import Any

_OUR_MODULES = re.compile(r"^(torchlesson\.capture\.\w+|torch\.overrides)$")

_lock = threading.Lock()
_users = 0
_installed: _Relocator | None = None


class _Relocator:
    """Installed while any trace runs; ``remove()`` restores the warnings module as it was."""

    def __init__(self, dispatch_files: tuple[str, ...]) -> None:
        self.dispatch_files = frozenset(dispatch_files)
        self._previous = warnings._showwarnmsg  # type: ignore[attr-defined]
        self._filter = ("always", None, Warning, _OUR_MODULES, 0)  # as warnings.filterwarnings makes it
        warnings.filters.insert(0, self._filter)  # no _filters_mutated(): see the module docstring
        warnings._showwarnmsg = self.showwarnmsg  # type: ignore[attr-defined]

    def remove(self) -> None:
        if warnings._showwarnmsg == self.showwarnmsg:  # type: ignore[attr-defined]
            warnings._showwarnmsg = self._previous  # type: ignore[attr-defined]
        with contextlib.suppress(ValueError):  # the learner reset the filters meanwhile
            warnings.filters.remove(self._filter)

    def showwarnmsg(self, msg: warnings.WarningMessage) -> None:
        if msg.filename not in self.dispatch_files:
            self._previous(msg)
            return
        frame = self._native_frame()
        if frame is None:
            self._previous(msg)
            return
        module_globals: dict[str, Any] = frame.f_globals
        warnings.warn_explicit(
            msg.message,
            msg.category,
            frame.f_code.co_filename,
            frame.f_lineno,
            module=module_globals.get("__name__", "<string>"),
            registry=module_globals.setdefault("__warningregistry__", {}),
            source=msg.source,
            # no module_globals, as warnings.warn passes none: with them, warn_explicit asks the
            # module's loader for its source, and `python -c` code's loader raises ImportError
        )

    def _native_frame(self):
        """The frame the warning names when no tracer sits on the stack."""
        frame = sys._getframe(2)  # past showwarnmsg: the code that warned, or Python's warnings module
        while frame is not None and frame.f_code.co_filename == warnings.__file__:
            frame = frame.f_back
        inner = None
        while frame is not None and frame.f_code.co_filename not in self.dispatch_files:
            inner, frame = frame, frame.f_back
        while frame is not None and frame.f_code.co_filename in self.dispatch_files:
            frame = frame.f_back
        # a Python function that dispatched to us through handle_torch_function was entered twice
        if frame is not None and inner is not None and frame.f_code is inner.f_code:
            frame = frame.f_back
        return frame


class _Use:
    """One trace's use of the shared relocator; ``remove()`` ends it (once)."""

    def __init__(self) -> None:
        self._active = True

    def remove(self) -> None:
        global _users, _installed
        with _lock:
            if not self._active:
                return
            self._active = False
            _users -= 1
            if _users == 0 and _installed is not None:
                _installed.remove()
                _installed = None


def relocate(dispatch_files: tuple[str, ...]) -> _Use:
    """Warnings attributed to ``dispatch_files`` name the learner's frame until ``remove()``."""
    global _users, _installed
    with _lock:
        if _users == 0:
            _installed = _Relocator(dispatch_files)
        _users += 1
    return _Use()
