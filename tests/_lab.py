"""A real JupyterLab in headless Chromium, for the browser tests.

``LabServer`` serves JupyterLab on 127.0.0.1 with a random port and token, from throw-away config,
data, runtime, settings and workspace folders, with a kernel that runs the interpreter running the
tests. ``LabPage.open`` opens a notebook in a fresh browser context, runs all its cells, and waits
until every widget view has rendered; it fails with a readable message when something went wrong.

Things learnt the hard way, kept here so nobody learns them again:

- ``window.jupyterapp`` exists only with ``--LabApp.expose_app_in_browser=True``.
- Each page gets its own workspace (and ``?reset``), or JupyterLab restores the previous tabs and
  "Run All" may run in another notebook.
- Windowing mode ``none`` keeps every cell in the DOM; JupyterLab scrolls inside its own panel, so a
  full-page screenshot grows the viewport until the last cell fits.
- Widget outputs have no mime-type attribute in the DOM: they are found in the notebook model and
  matched to the output area's children by position.
- ``page.evaluate`` has no timeout: JupyterLab promises are turned into flags and polled.
- Notebook 7 (``LabServer(app="notebook")``, ``/notebooks/<path>``) shares most of this: it raises
  one error of its own on every page load (``_NOTEBOOK7_ON_LOAD``, ignored there).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import psutil

KERNEL_NAME = "torchlesson-test"
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "torchlesson tests", "language": "python"}
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
MAX_SHOT_HEIGHT = 15000
# Notebook 7.6.5 raises this in its shortcuts settings on every page load, an empty notebook's too
_NOTEBOOK7_ON_LOAD = "Cannot read properties of undefined (reading 'schema')"  # Chromium cannot capture much more than 16384 px at once
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def chromium_path() -> str:
    return os.environ.get("TORCHLESSON_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


class LabServer:
    """One JupyterLab server (or, with ``app="notebook"``, a Notebook 7 server) in its own temporary
    world. Stop it with :meth:`stop`."""

    def __init__(self, base: Path, app: str = "lab") -> None:
        if app not in ("lab", "notebook"):
            raise ValueError(f"app must be 'lab' or 'notebook', not {app!r}")
        self.app = app
        self.base = base
        self.root = base / "root"
        self.token = secrets.token_hex(24)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "server.log"
        # never send loopback requests through a proxy
        self._http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_TOKEN", "JUPYTER_PATH")}
        env.update(
            JUPYTER_CONFIG_DIR=str(self.base / "config"),
            JUPYTER_DATA_DIR=str(self.base / "data"),
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(self.base / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.base / "workspaces"),
            IPYTHONDIR=str(self.base / "ipython"),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _prepare(self) -> None:
        for name in ("root", "config", "runtime", "workspaces", "ipython"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        # the kernel runs the interpreter running the tests (not resolved: a venv python is a link)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec = {"argv": argv, "display_name": KERNELSPEC["display_name"], "language": "python"}
        _write_json(self.base / "data" / "kernels" / KERNEL_NAME / "kernel.json", spec)
        settings = self.base / "settings" / "@jupyterlab"
        no_news = {"fetchNews": "false", "checkForUpdates": False}
        _write_json(settings / "apputils-extension" / "notification.jupyterlab-settings", no_news)
        # every cell stays in the DOM: counts are exact and screenshots complete
        windowing = {"windowingMode": "none"}
        _write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings", windowing)

    def start(self, timeout: float = 90) -> None:
        self._prepare()
        self.port = _free_port()
        cmd = [
            sys.executable, "-m", "jupyterlab" if self.app == "lab" else "notebook", "--no-browser",
            f"--port={self.port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
            "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
            f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
            "--KernelSpecManager.ensure_native_kernel=False",
        ]  # fmt: skip
        if self.app == "lab":
            cmd += [
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, env=self.env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, method: str, path: str, timeout: float = 10) -> Any:
        """Call the server's REST API; returns the decoded JSON (or None)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, data=b"" if method != "GET" else None
        )
        request.add_header("Authorization", f"token {self.token}")
        with self._http.open(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def lab_url(self, notebook: str, workspace: str) -> str:
        path = urllib.parse.quote(notebook)
        if self.app == "notebook":  # Notebook 7 opens one notebook per page, no workspaces
            return f"{self.url}/notebooks/{path}?token={self.token}"
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        """The same notebook in Notebook 7, which the same server serves (the `notebook` package)."""
        return f"{self.url}/notebooks/{urllib.parse.quote(notebook)}?token={self.token}"

    def log_tail(self, chars: int = 3000, since: int = 0) -> str:
        """The end of the server's log (from byte ``since`` on), token hidden."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return text[-chars:].replace(self.token, "<token>")

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def shutdown_sessions(self, notebook_path: str) -> None:
        """Shut down the kernels of one notebook, so that finished pages do not keep CPUs busy."""
        for session in self.api("GET", "/api/sessions"):
            if session.get("path") == notebook_path:
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        """POST /api/shutdown, then SIGTERM/SIGKILL by PID; kernels left over are killed too."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:  # psutil remembers each process's start time, so a reused PID is never hit
            server = psutil.Process(proc.pid)
            processes = [server, *server.children(recursive=True)]  # the kernels, while still ours
        except psutil.Error:
            processes = []
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                self.api("POST", "/api/shutdown", timeout=5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for signal_them in ("terminate", "kill"):
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    getattr(process, signal_them)()
            _, processes = psutil.wait_procs(processes, timeout=5)
        proc.poll()  # reap the server


@dataclass
class Lab:
    """What the ``lab`` fixture gives: the server and the (playwright) browser."""

    server: LabServer
    browser: Any


# ---------------------------------------------------------------------------------------------
# In-page JavaScript (JupyterLab 4 internals through window.jupyterapp)

JS_FIND_PANEL = """(path) => {
  const app = window.jupyterapp;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.sessionContext) {
      window.__tl.panel = w;
      app.shell.activateById(w.id);
      return true;
    }
  }
  return false;
}"""

JS_KERNEL = """() => {
  const s = window.__tl.panel.sessionContext, k = s.session && s.session.kernel;
  return {ready: !!(window.__tl.panel.context.isReady && s.isReady), status: k ? k.status : null};
}"""

# run(command, args) without awaiting in evaluate: the outcome lands in window.__tl.done[key]
JS_COMMAND = """([key, command, args]) => {
  const tl = window.__tl;
  tl.done = tl.done || {};
  tl.done[key] = null;
  window.jupyterapp.commands.execute(command, args)
    .then((r) => { tl.done[key] = {result: String(r)}; })
    .catch((e) => { tl.done[key] = {error: String(e)}; });
}"""

JS_OBSERVE = """() => {
  const tl = window.__tl;
  tl.lastMutation = performance.now();
  new MutationObserver(() => { tl.lastMutation = performance.now(); })
    .observe(tl.panel.node, {subtree: true, childList: true, attributes: true, characterData: true});
}"""

JS_STATE = """(WM) => {
  const tl = window.__tl, p = tl.panel;
  const k = p.sessionContext.session && p.sessionContext.session.kernel;
  let running = 0, unexecuted = 0;
  const errors = [], widgets = [];
  p.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    if ((prompt && prompt.textContent.includes('*')) || cell.model.executionState === 'running') running++;
    if (cell.model.executionCount === null && cell.model.sharedModel.getSource().trim()) unexecuted++;
    const tags = cell.model.getMetadata('tags') || [];
    const kids = Array.from(cell.outputArea.node.children)
      .filter((n) => n.classList.contains('jp-OutputArea-child'));
    cell.model.outputs.toJSON().forEach((out, j) => {
      if (out.output_type === 'error') {
        const traceback = (out.traceback || []).join('\\n');
        errors.push({cell: i, ename: out.ename, evalue: out.evalue, traceback,
                     expected: tags.includes('raises-exception')});
      }
      if (!out.data || !out.data[WM]) return;
      const node = kids[j] && (kids[j].querySelector('.jp-OutputArea-output') || kids[j]);
      let state = 'pending', text = '';
      if (node) {
        text = (node.innerText || node.textContent || '').trim();
        const shown = !!text || Array.from(node.querySelectorAll('*')).some((e) => {
          const b = e.getBoundingClientRect();
          const leaf = e.childElementCount === 0 || /^(svg|canvas|img)$/i.test(e.tagName);
          return b.width > 0 && b.height > 0 && leaf;
        });
        const failed = node.querySelector('.jupyter-widgets-error-widget');
        if (failed || text.startsWith('Error displaying widget')) {
          state = 'error';
        } else if (shown && text !== 'Loading widget...') {
          state = 'rendered';
        }
      }
      widgets.push({cell: i, state, text: text.slice(0, 300)});
    });
  });
  return {kernel: k ? k.status : null, running, unexecuted, errors, widgets,
          quietMs: performance.now() - tl.lastMutation, runAll: (tl.done || {}).runAll || null};
}"""

JS_EXTRA_HEIGHT = """() => {
  // px the viewport lacks to show the whole notebook, measured to the bottom of the last cell
  // (scrollHeight includes the "scroll past end" padding, which grows with the viewport)
  const content = window.__tl.panel.content.node;
  const outer = content.querySelector('.jp-WindowedPanel-outer') || content;
  outer.scrollTop = 0;
  const cells = content.querySelectorAll('.jp-Cell');
  if (!cells.length) return 0;
  const bottom = cells[cells.length - 1].getBoundingClientRect().bottom - outer.getBoundingClientRect().top;
  return Math.max(0, Math.ceil(bottom + 30 - outer.clientHeight));
}"""


class LabPage:
    """Opens notebooks in JupyterLab pages; see :meth:`open`. Close with :meth:`close`."""

    def __init__(self, server: LabServer, browser: Any, artifacts: Path, folder: str) -> None:
        self.server, self.browser, self.artifacts, self.folder = server, browser, artifacts, folder
        self.page: Any = None
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        # Notebook 7 (7.6) throws "Cannot read properties of undefined (reading 'schema')" from its
        # own start-up code with these settings, before any cell runs: kept apart, not counted
        self.startup_errors: list[str] = []
        self._contexts: list[Any] = []
        self._notebooks: list[str] = []
        self._log_start = 0

    # -- opening and running ------------------------------------------------------------------
    def open(
        self,
        notebook: str | os.PathLike[str] | list[str],
        theme: str = "light",
        timeout: float = 240,
        run: bool = True,
        ui: str = "lab",
    ) -> Any:
        """Open ``notebook`` (a path, or a list of code cell sources), run all cells, wait for widgets.

        With ``run=False`` the notebook is opened as saved (its outputs kept, untrusted, as a
        learner's first open shows it) and nothing runs. ``ui="notebook7"`` opens it in Notebook 7
        (served by the same JupyterLab server) instead of JupyterLab.
        """
        if theme not in THEMES:
            raise ValueError(f"theme must be one of {sorted(THEMES)}, not {theme!r}")
        rel = self._copy(notebook, keep_outputs=not run)
        context = self.browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
        self._contexts.append(context)
        context.set_default_timeout(30_000)
        page = self.page = context.new_page()
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(self._scrub(m.text)))
        page.on("pageerror", self._page_error)

        deadline, self._log_start = time.monotonic() + timeout, self.server.log_size()
        if ui not in ("lab", "notebook7"):
            raise ValueError(f"ui must be 'lab' or 'notebook7', not {ui!r}")
        url = (
            self.server.lab_url(rel, f"t{secrets.token_hex(6)}")
            if ui == "lab"
            else self.server.notebook7_url(rel)
        )
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_function("() => !!window.jupyterapp", timeout=90_000)
        page.evaluate(
            "() => { window.__tl = {}; Promise.all([window.jupyterapp.started, window.jupyterapp.restored])"
            ".then(() => { window.__tl.restored = true; }); }"
        )
        page.wait_for_function("() => window.__tl.restored", timeout=90_000)
        self._poll(lambda: page.evaluate(JS_FIND_PANEL, rel), deadline, f"the notebook {rel} never opened")
        self._poll(lambda: self._kernel_idle(), deadline, "the kernel never became idle")
        page.evaluate("() => { const s = window.jupyterapp.shell; s.collapseLeft?.(); s.collapseRight?.(); }")
        self._command("theme", "apputils:change-theme", {"theme": THEMES[theme]}, deadline)
        page.wait_for_function(f"() => document.body.dataset.jpThemeName === {json.dumps(THEMES[theme])}")

        if ui == "notebook7":
            self.startup_errors, self.page_errors[:] = list(self.page_errors), []
        page.evaluate(JS_OBSERVE)
        if not run:
            page.wait_for_function("() => performance.now() - window.__tl.lastMutation > 500")
            return page
        page.evaluate(JS_COMMAND, ["runAll", "notebook:run-all-cells", {}])
        state = self._poll(self._finished, deadline, "Run All did not finish")
        self._check_errors(state)
        widget_deadline = min(deadline, time.monotonic() + 60)
        state = self._poll(self._rendered, widget_deadline, "widget views did not render")
        self._check_errors(state)
        return page

    def _page_error(self, error: Any) -> None:
        text = self._scrub(f"{error}\n{error.stack or ''}")
        if self.server.app == "notebook" and _NOTEBOOK7_ON_LOAD in text:
            return  # Notebook 7's own, on every page load, before any cell runs (see the module's notes)
        self.page_errors.append(text)

    def _scrub(self, text: str) -> str:
        return text.replace(self.server.token, "<token>")

    def _copy(self, notebook: str | os.PathLike[str] | list[str], keep_outputs: bool = False) -> str:
        if isinstance(notebook, list):
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in notebook])
            name = "cells.ipynb"
        else:
            nb = nbformat.read(os.fspath(notebook), as_version=4)
            name = Path(notebook).name
        for cell in nb.cells:
            if cell.cell_type == "code" and not keep_outputs:
                cell.outputs, cell.execution_count = [], None
        nb.metadata.pop("widgets", None)
        nb.metadata["kernelspec"] = dict(KERNELSPEC)
        rel = f"{self.folder}/{len(self._notebooks)}/{name}"
        (self.server.root / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, self.server.root / rel)
        self._notebooks.append(rel)
        return rel

    def _poll(self, check: Any, deadline: float, what: str) -> Any:
        last = None
        while time.monotonic() < deadline:
            self._dismiss_dialogs()
            last = check()
            if last:
                return last
            self.page.wait_for_timeout(200)
        raise AssertionError(
            f"{what} in time; last state: {last!r}\nserver log:\n{self.server.log_tail(1500)}"
        )

    def _dismiss_dialogs(self) -> None:
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count():
            accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
            if accept.count():
                accept.first.click()
            else:
                self.page.keyboard.press("Escape")

    def _kernel_idle(self) -> bool:
        info = self.page.evaluate(JS_KERNEL)
        log = self.server.log_tail(since=self._log_start)
        if info["status"] == "dead" or "died, removing from map" in log or "restart failed" in log:
            raise AssertionError(f"the kernel failed to start; server log:\n{log}")
        return info["ready"] and info["status"] == "idle"

    def _command(self, key: str, command: str, args: dict[str, Any], deadline: float) -> None:
        self.page.evaluate(JS_COMMAND, [key, command, args])
        done = self._poll(
            lambda: self.page.evaluate(f"() => window.__tl.done[{json.dumps(key)}]"), deadline, command
        )
        if "error" in done:
            raise AssertionError(f"{command} failed: {done['error']}")

    def _state(self) -> dict[str, Any]:
        return self.page.evaluate(JS_STATE, "application/vnd.jupyter.widget-view+json")

    def _finished(self) -> dict[str, Any] | None:
        state = self._state()
        done = state["runAll"] and state["kernel"] == "idle" and state["running"] == 0
        return state if done and state["quietMs"] > 300 else None

    def _rendered(self) -> dict[str, Any] | None:
        state = self._state()
        failed = [w for w in state["widgets"] if w["state"] == "error"]
        if failed or self.page_errors:
            return state  # no point waiting: _check_errors reports it
        pending = any(w["state"] == "pending" for w in state["widgets"])
        return state if not pending and state["quietMs"] > 1000 else None

    def _check_errors(self, state: dict[str, Any]) -> None:
        problems = [
            f"cell {e['cell']} raised {e['ename']}: {e['evalue']}\n{_ANSI.sub('', e['traceback'])}"
            for e in state["errors"]
            if not e["expected"]
        ]
        problems += [f"widget in cell {w['cell']} shows an error: {w['text']}" for w in state["widgets"]
                     if w["state"] == "error"]  # fmt: skip
        problems += [f"uncaught error in the page: {e}" for e in self.page_errors]
        if not problems and state["unexecuted"] and not state["errors"]:
            problems.append(f"{state['unexecuted']} code cell(s) never ran")
        if problems:
            raise AssertionError("the notebook did not run cleanly in JupyterLab:\n" + "\n".join(problems))

    # -- looking ----------------------------------------------------------------------------
    def screenshot(self, name: str, locator: Any = None) -> Path:
        """Save ``<artifacts>/<name>.png``: the whole notebook, or only ``locator``."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{name}.png"
        if locator is not None:
            locator.screenshot(path=path)
            return path
        size = self.page.viewport_size
        # cells below the fold may only get their real height once on screen: repeat until it fits
        for _ in range(8):
            extra = self.page.evaluate(JS_EXTRA_HEIGHT)
            height = min(self.page.viewport_size["height"] + extra, MAX_SHOT_HEIGHT)
            if extra <= 0 or height <= self.page.viewport_size["height"]:
                break
            self.page.set_viewport_size({"width": size["width"], "height": height})
            self.page.wait_for_timeout(300)
        self.page.wait_for_function("() => performance.now() - window.__tl.lastMutation > 300")
        self.page.evaluate(JS_EXTRA_HEIGHT)  # scrolls the panel back to the top
        self.page.screenshot(path=path, full_page=True)
        self.page.set_viewport_size(size)
        return path

    def close(self) -> None:
        for context in self._contexts:
            # the browser may already be gone; the kernels must be shut down all the same
            with contextlib.suppress(Exception):
                context.close()
        for rel in self._notebooks:
            with contextlib.suppress(OSError):
                self.server.shutdown_sessions(rel)
