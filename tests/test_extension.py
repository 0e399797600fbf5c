"""``%load_ext torchlesson`` in a real IPython shell: the magics come, go, and refuse bad input kindly."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.error import UsageError

MAGICS = (("cell", "autograd_trace"), ("line", "quiz"))


def registered(shell) -> dict[str, bool]:
    table = shell.shell.magics_manager.magics
    return {name: name in table[kind] for kind, name in MAGICS}


def test_load_registers_the_magics(ipython) -> None:
    assert registered(ipython) == {"autograd_trace": True, "quiz": True}
    lsmagic = ipython.run("%lsmagic")
    listing = lsmagic.outputs[-1]["text/plain"]
    assert "%%autograd_trace" in listing
    assert "%quiz" in listing


def test_loading_twice_is_harmless(ipython) -> None:
    again = ipython.run("%load_ext torchlesson")
    assert again.error is None
    assert "Traceback" not in again.stdout + again.stderr
    assert registered(ipython) == {"autograd_trace": True, "quiz": True}
    reloaded = ipython.run("%reload_ext torchlesson")
    assert reloaded.error is None
    assert registered(ipython) == {"autograd_trace": True, "quiz": True}


def test_unload_removes_the_magics_and_keeps_the_namespace(ipython) -> None:
    ipython.run("x = 41 + 1")
    unloaded = ipython.run("%unload_ext torchlesson")
    assert unloaded.error is None
    assert registered(ipython) == {"autograd_trace": False, "quiz": False}
    assert ipython.user_ns["x"] == 42

    gone = ipython.run("%%autograd_trace\ny = 1")
    assert gone.error is not None
    assert "y" not in ipython.user_ns

    loaded = ipython.run("%load_ext torchlesson")
    assert loaded.error is None
    assert registered(ipython) == {"autograd_trace": True, "quiz": True}


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%autograd_trace --max-ops -3\nran = True", "--max-ops"),
        ("%%autograd_trace --max-ops many\nran = True", "--max-ops"),
        ("%%autograd_trace --bogus\nran = True", "--bogus"),
        ("%%autograd_trace -o 1st\nran = True", "-o"),
        ("%quiz --bogus", "--bogus"),
        ("%quiz autograd -q first", "-q"),
    ],
)
def test_bad_options_give_a_one_line_usage_error(ipython, cell: str, message: str) -> None:
    run = ipython.run(cell)
    printed = (run.stdout + run.stderr).strip()
    assert isinstance(run.error, UsageError)
    assert "Traceback" not in printed
    assert len(printed.splitlines()) == 1, printed
    assert printed.startswith("UsageError:")
    assert message in printed
    assert "ran" not in ipython.user_ns, "the cell body must not run when the magic's options are wrong"


def test_loading_the_extension_does_not_import_torch() -> None:
    probe = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'torchlesson')\n"
        "print(shell.find_cell_magic('autograd_trace') is not None, 'torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "False"]
