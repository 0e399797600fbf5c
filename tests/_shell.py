"""A real IPython shell for the tests: run a cell, get back what a notebook user would see.

``Shell.run(code)`` executes ``code`` with ``InteractiveShell.run_cell``, exactly as IPython runs a
cell, and returns a :class:`CellRun` with the printed text and one mime bundle per displayed output.
Displayed outputs are captured as the mime bundles a kernel would send (``display()`` calls and the
cell's result, in order), so widgets show up with their
``application/vnd.jupyter.widget-view+json`` entry: ipywidgets 8 builds them without a kernel.
"""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from traitlets.config import Config

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@dataclass
class CellRun:
    """What one cell did, as a notebook user would see it."""

    result: ExecutionResult
    error: BaseException | None
    stdout: str
    stderr: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    user_ns: dict[str, Any] = field(default_factory=dict)
    # every display message: {"data", "display_id", "update"} (``outputs`` lists updates as new bundles)
    displays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def widgets(self) -> list[dict[str, Any]]:
        """The widget-view entries of the displayed outputs (``model_id`` and friends)."""
        return [bundle[WIDGET_MIME] for bundle in self.outputs if WIDGET_MIME in bundle]


class _BundlePublisher(DisplayPublisher):
    """Collects ``display()`` calls as mime bundles, like a kernel's display_data messages."""

    def __init__(self, sink: list[dict[str, Any]], messages: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sink = sink
        self.messages = messages

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False):
        self.sink.append(dict(data))
        display_id = (transient or {}).get("display_id")
        self.messages.append({"data": dict(data), "display_id": display_id, "update": update})

    def clear_output(self, wait=False):
        self.sink.clear()


class _BundleHook(DisplayHook):
    """IPython's display hook (``_``, ``Out``, ``;`` handling), writing bundles instead of text."""

    def __init__(self, sink: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sink = sink

    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict, md_dict=None) -> None:
        self.sink.append(dict(format_dict))

    def finish_displayhook(self) -> None:
        self._is_active = False


class Shell:
    """An ``InteractiveShell`` plus a ``run`` that captures a cell's outputs."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell

    @classmethod
    def create(cls, ipython_dir: str) -> Shell:
        """The singleton shell, with history in memory, plain-text tracebacks and no user profile."""
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        config.InteractiveShell.colors = "nocolor"
        if InteractiveShell.initialized():
            shell = InteractiveShell.instance()
            shell.colors = "nocolor"
        else:
            shell = InteractiveShell.instance(config=config, ipython_dir=ipython_dir)
        return cls(shell)

    @property
    def user_ns(self) -> dict[str, Any]:
        return self.shell.user_ns

    def run(self, code: str) -> CellRun:
        """Run ``code`` as one cell (``store_history=True``, as a notebook does)."""
        return self.call(lambda: self.shell.run_cell(code, store_history=True))

    def call(self, function: Any) -> CellRun:
        """Call ``function`` (a cell, or what a widget message would do) and capture what it shows."""
        shell = self.shell
        sink: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        out, err = io.StringIO(), io.StringIO()
        saved = shell.display_pub, shell.displayhook, shell.display_trap.hook
        hook = _BundleHook(sink, shell=shell, cache_size=shell.cache_size)
        shell.display_pub = _BundlePublisher(sink, messages, shell=shell)
        shell.displayhook = shell.display_trap.hook = hook
        try:
            with redirect_stdout(out), redirect_stderr(err):
                result = function()
                sys.stdout.flush()
        finally:
            shell.display_pub, shell.displayhook, shell.display_trap.hook = saved
        if not isinstance(result, ExecutionResult):
            result = ExecutionResult(None)
        error = result.error_before_exec or result.error_in_exec
        return CellRun(result, error, out.getvalue(), err.getvalue(), sink, shell.user_ns, messages)

    def reset(self) -> None:
        """A fresh user namespace (and history, output cache and cell count), as after a kernel restart."""
        self.shell.reset(new_session=True)
