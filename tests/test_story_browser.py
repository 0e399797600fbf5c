"""Four real cells in a real JupyterLab, as a learner writes them (NOTE [the story of a cell] in
src/torchlesson/picture/story.py): a CNN training step built in the cell, a TransformerEncoderLayer
forward and backward, an ``nn.Linear`` shape error, and a 100-step SGD loop. Their first view is
short, shows no initialiser, names the optimizer's parameters, and opens, box by box, onto every
operation.

With ``TORCHLESSON_UPDATE_SCREENSHOTS=1`` the pictures are copied to ``docs/story-<cell>-<theme>.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from test_lessons_browser import save_for_docs
from test_story import CELLS, FIRST_VIEW_BOXES, SETUP
from torchlesson.picture.layout import layout

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[1] / "docs"
SHAPE_ERROR = "head = nn.Linear(20, 3)\nfeatures = torch.randn(4, 10)\nscores = head(features)"
SHOWN = [  # (name, code, raises)
    ("cnn-step", CELLS["cnn step"], False),
    ("transformer", CELLS["transformer"], False),
    ("shape-error", SHAPE_ERROR, True),
    ("sgd-loop", CELLS["sgd loop"], False),
]


def notebook(path: Path) -> Path:
    cells = [nbformat.v4.new_code_cell("%load_ext torchlesson\n" + SETUP)]
    for _, code, raises in SHOWN:
        cell = nbformat.v4.new_code_cell("%%autograd_trace\ntorch.manual_seed(0)\n" + code)
        if raises:
            cell.metadata["tags"] = ["raises-exception"]
        cells.append(cell)
    target = path / "story.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), target)
    return target


def every_op_count(ipython, code: str) -> int:
    """The ops of the forward view with nothing collapsed, from the same code traced in-process."""
    assert ipython.run(SETUP).error is None
    ipython.run("%%autograd_trace -o _trace\ntorch.manual_seed(0)\n" + code)
    return sum(n["kind"] == "op" for n in layout(ipython.user_ns["_trace"].to_dict(), collapsed=[])["nodes"])


def drawn_text(widget) -> str:
    return " ".join(widget.locator(".tl-svg .tl-node text").all_text_contents())


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_four_real_cells_tell_their_story(lab_page, ipython, tmp_path, theme: str) -> None:
    page = lab_page.open(notebook(tmp_path), theme=theme)
    widgets = page.locator(".jp-Notebook .torchlesson-graph")
    assert widgets.count() == len(SHOWN)
    for k, (name, _, _) in enumerate(SHOWN):
        widget = widgets.nth(k)
        widget.scroll_into_view_if_needed()
        page.mouse.move(1, 1)  # the first view as it opens: no Fit, no hover
        boxes = widget.locator(".tl-svg .tl-node")
        assert 3 <= boxes.count() <= FIRST_VIEW_BOXES, (name, boxes.count())
        text = drawn_text(widget)
        assert "kaiming_uniform_" not in text and "NonDynamicallyQuantizableLinear" not in text, name
        shot = lab_page.screenshot(f"story-{name}-{theme}", widget)
        if os.environ.get("TORCHLESSON_UPDATE_SCREENSHOTS", "").lower() not in ("", "0", "false"):
            save_for_docs(page, shot, DOCS / f"story-{name}-{theme}.png")

    cnn, transformer, shape_error, loop = (widgets.nth(k) for k in range(4))
    assert "self_attn · MultiheadAttention" in drawn_text(transformer)
    assert "head = nn.Linear(20, 3)" in drawn_text(shape_error)
    assert "× 100" in " ".join(loop.locator(".tl-group").all_text_contents())

    # the optimizer's box names the parameters it updated
    cnn.get_by_role("button", name="Fit the whole graph in the view").click()
    cnn.locator(".tl-node.kind-group").filter(has_text="opt.step() · SGD").click()
    panel = cnn.locator(".tl-panel")
    assert "optimizer step" in panel.locator("h3").inner_text()
    listed = panel.locator("dt").all_text_contents()
    assert {f"net.{k}.{p}" for k in (0, 1, 5) for p in ("weight", "bias")} <= set(listed)
    assert "norm" in panel.locator("dd").nth(2).inner_text() and "→" in panel.inner_text()
    panel.get_by_role("button", name="Open it").click()  # the button in its details opens it
    cnn.locator(".tl-svg .tl-node.kind-op.inplace").first.wait_for()
    assert cnn.locator(".tl-svg .tl-node.kind-op.inplace").count() == 6

    # opening every box, one click at a time, restores every operation
    expected = every_op_count(ipython, CELLS["cnn step"])
    for _ in range(40):
        closed = cnn.locator(".tl-svg .tl-node.kind-group")
        if closed.count() == 0:
            break
        before = closed.count()
        # Enter on the box opens it (a click shows its details); sent to the box itself, wherever
        # it sits in the panned picture
        closed.first.dispatch_event("keydown", {"key": "Enter", "bubbles": True})
        page.wait_for_function(
            "([el, n]) => el.querySelectorAll('.tl-svg .tl-node.kind-group').length !== n",
            arg=[cnn.element_handle(), before],
        )
    assert cnn.locator(".tl-svg .tl-node.kind-group").count() == 0
    assert cnn.locator(".tl-svg .tl-node.kind-op").count() == expected
    assert "kaiming_uniform_" in drawn_text(cnn)
    lab_page.screenshot(f"story-cnn-step-expanded-{theme}", cnn)
    assert lab_page.page_errors == []
