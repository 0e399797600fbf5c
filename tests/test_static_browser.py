"""The first thing a learner sees: a saved notebook, opened as it is (untrusted, nothing run).

NOTE [pictures that survive sanitizers] in src/torchlesson/picture/svg.py: JupyterLab sanitizes
the saved HTML of an untrusted notebook. The graphs must still show as pictures, never as a
run-on jumble of their texts; under them, the tensors' table stays readable.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from _synthetic import seed
from torchlesson.picture.display import WIDGET_MIME, display_bundle

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
MODULE3 = ROOT / "examples" / "03_tensors_and_autograd.ipynb"

# each static picture of the page: loaded (decoded to its size) or not, and the text around it
JS_PICTURES = """() => Array.from(document.querySelectorAll('.jp-Notebook img.torchlesson-picture')).map((img) => ({
  loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth, alt: img.alt,
  visible: img.checkVisibility(),
}))"""


def saved_notebook(path: Path) -> Path:
    """A notebook whose one traced cell was saved as JupyterLab saves it: the static fallback and
    the text, no widget state."""
    bundle = display_bundle(seed(), widget=False)
    bundle.pop(WIDGET_MIME, None)
    cell = nbformat.v4.new_code_cell("%%autograd_trace\nloss.backward()", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_saved_graph_shows_as_a_picture_where_the_notebook_is_not_trusted(
    lab_page, theme, tmp_path
) -> None:
    page = lab_page.open(saved_notebook(tmp_path / "saved.ipynb"), theme=theme, run=False)
    output = page.locator(".jp-OutputArea-output").first
    shown = page.evaluate(JS_PICTURES)
    assert [p["loaded"] for p in shown] == [True, True]
    assert [p["visible"] for p in shown] == [True, False]  # the autograd one waits in a <details>
    assert shown[0]["alt"].startswith("Forward graph: 4 tensors")
    output.locator("summary", has_text="Autograd graph").click()
    assert [p["visible"] for p in page.evaluate(JS_PICTURES)] == [True, True]
    text = output.inner_text()
    assert "∂loss/∂x" not in text and "requires_grad=True ·" not in text  # no jumble of its texts
    output.locator("summary", has_text="Tensors (4)").click()  # the table is there, readable
    assert "x\t[3]\tfloat32" in output.locator("table").inner_text()
    lab_page.screenshot(f"saved-untrusted-{theme}", output)
    assert lab_page.page_errors == []


def test_the_shipped_lesson_opens_with_its_pictures(lab_page) -> None:
    """`make lesson` opens examples/03_tensors_and_autograd.ipynb as saved: every graph shows."""
    page = lab_page.open(MODULE3, run=False)
    shown = page.evaluate(JS_PICTURES)
    forward = [p for p in shown if p["alt"].startswith("Forward graph")]
    traced = [
        c for c in nbformat.read(MODULE3, as_version=4).cells if c.source.startswith("%%autograd_trace")
    ]
    assert len(forward) == len(traced) == 8 and all(p["loaded"] for p in forward), shown  # 4 before issue 14
    lab_page.screenshot("module3-first-open")
    assert lab_page.page_errors == []
