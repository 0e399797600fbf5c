"""Every lesson notebook in examples/ runs top to bottom on a real kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.ipynb"))


def test_there_are_lesson_notebooks() -> None:
    assert EXAMPLES, "examples/ has no notebook"


@pytest.mark.notebook
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_notebook_runs(run_notebook, path: Path) -> None:
    nb = run_notebook(path)
    code = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]
    assert code, f"{path.name} has no code to run"
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: cells did not all run, in order: {counts}"
