"""Fixtures shared by every test file.

- ``ipython``: a real IPython shell with ``%load_ext torchlesson`` done and a fresh namespace;
  ``ipython.run(code)`` returns a :class:`_shell.CellRun` (``result``, ``error``, ``stdout``,
  ``stderr``, ``outputs`` as mime bundles, ``user_ns``).
- ``run_notebook(path, timeout=600)``: executes a notebook top to bottom on a real kernel.
- ``lab`` / ``lab_page``: a real JupyterLab in headless Chromium (see ``tests/_lab.py``).
  ``lab_page.open(notebook, theme=...)`` runs a notebook there and waits for its widgets;
  ``lab_page.screenshot(name)`` writes ``tests/artifacts/<test name>/<name>.png``.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from _lab import CHROMIUM_ARGS, KERNEL_NAME, Lab, LabPage, LabServer, chromium_path
from _shell import Shell

TESTS = Path(__file__).resolve().parent
ARTIFACTS = TESTS / "artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by what they start, so ``-m "not browser"`` works even if a mark was forgotten."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if {"lab", "lab_page", "notebook7", "notebook7_page"} & set(names):
            item.add_marker(pytest.mark.browser)
        if "run_notebook" in names:
            item.add_marker(pytest.mark.notebook)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report  # lab_page saves a picture on failure
    return report


_REPORTS = pytest.StashKey[dict]()


# ---------------------------------------------------------------------------------------------
# IPython


@pytest.fixture(scope="session")
def _ipython_shell(tmp_path_factory: pytest.TempPathFactory) -> Shell:
    return Shell.create(str(tmp_path_factory.mktemp("ipython")))


@pytest.fixture
def ipython(_ipython_shell: Shell) -> Iterator[Shell]:
    """The IPython shell with torchlesson loaded and an empty user namespace."""
    shell = _ipython_shell
    shell.reset()
    loaded = shell.run("%load_ext torchlesson")
    if loaded.error is not None:
        raise loaded.error
    yield shell
    if "torchlesson" in shell.shell.extension_manager.loaded:
        shell.shell.run_line_magic("unload_ext", "torchlesson")
    shell.reset()


# ---------------------------------------------------------------------------------------------
# Notebooks on a real kernel


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., nbformat.NotebookNode]:
    """``run_notebook(path, timeout=600)``: execute a notebook, raising on any unexpected error.

    The kernel runs the interpreter running the tests. A cell tagged ``raises-exception`` must
    raise; its error output is left in the returned notebook for the caller to check.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    base = tmp_path_factory.mktemp("kernel")
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "torchlesson tests",
        "language": "python",
    }
    (base / "kernels" / KERNEL_NAME).mkdir(parents=True)
    (base / "kernels" / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    specs = KernelSpecManager(kernel_dirs=[str(base / "kernels")], ensure_native_kernel=False)
    env = {**os.environ, "IPYTHONDIR": str(base / "ipython"), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}

    def run(path: str | os.PathLike[str], timeout: float = 600) -> nbformat.NotebookNode:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        client = NotebookClient(
            nb, km=km, timeout=timeout, startup_timeout=120, kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(path.parent)}},
        )  # fmt: skip
        try:
            client.execute(env=env)  # raises CellExecutionError on an error in an untagged cell
        finally:
            if km.has_kernel:  # nbclient leaves a kernel manager it was given running
                run_sync(km.shutdown_kernel)(now=True)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            expected = "raises-exception" in cell.metadata.get("tags", [])
            errors = [out for out in cell.outputs if out.output_type == "error"]
            if expected and not errors:
                raise AssertionError(
                    f"{path.name}: cell {index} is tagged raises-exception but raised nothing"
                )
            if errors and not expected:
                raise AssertionError(f"{path.name}: cell {index} has an error output: {errors[0].ename}")
        return nb

    return run


# ---------------------------------------------------------------------------------------------
# JupyterLab in Chromium


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # pytest then still runs the fixtures' teardown


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A JupyterLab server and a headless Chromium, both stopped at the end of the session."""
    chromium = chromium_path()
    if not os.path.exists(chromium):
        reason = f"no Chromium at {chromium} (apt-get install chromium, or set TORCHLESSON_CHROMIUM)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    server = LabServer(tmp_path_factory.mktemp("lab"))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    atexit.register(server.stop)  # a last resort if the session dies before its teardown
    playwright = browser = None
    try:
        server.start()
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield Lab(server, browser)
    finally:
        try:
            if browser is not None:
                browser.close()
            if playwright is not None:
                playwright.stop()
        finally:
            server.stop()
            atexit.unregister(server.stop)
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def notebook7(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A Notebook 7 server (the ``notebook`` package), sharing the JupyterLab tests' browser."""
    server = LabServer(tmp_path_factory.mktemp("notebook7"), app="notebook")
    atexit.register(server.stop)
    try:
        server.start()
        yield Lab(server, lab.browser)
    finally:
        server.stop()
        atexit.unregister(server.stop)


@pytest.fixture
def lab_page(lab: Lab, request: pytest.FixtureRequest) -> Iterator[LabPage]:
    """Opens notebooks in JupyterLab (``open``) and saves pictures of them (``screenshot``)."""
    yield from _pages(lab, request)


@pytest.fixture
def notebook7_page(notebook7: Lab, request: pytest.FixtureRequest) -> Iterator[LabPage]:
    """As ``lab_page``, in Notebook 7 (``/notebooks/...``)."""
    yield from _pages(notebook7, request)


def _pages(lab: Lab, request: pytest.FixtureRequest) -> Iterator[LabPage]:
    name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    shutil.rmtree(ARTIFACTS / name, ignore_errors=True)
    page = LabPage(lab.server, lab.browser, ARTIFACTS / name, folder=name)
    try:
        yield page
        reports = request.node.stash.get(_REPORTS, {})
        if page.page is not None and "call" in reports and reports["call"].failed:
            (ARTIFACTS / name).mkdir(parents=True, exist_ok=True)
            page.page.screenshot(path=ARTIFACTS / name / "failure.png")  # what the page showed
    finally:
        page.close()
