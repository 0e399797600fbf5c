"""One picture: the widget and the static SVG a saved notebook shows draw the same texts, and a
folded loop reads as a handful of boxes in both (the README's pictures in docs/ come from here).

With ``TORCHLESSON_UPDATE_SCREENSHOTS=1`` the folded loop's pictures are copied to
``docs/graph-folded-loop-<theme>.png`` and ``docs/graph-folded-loop-static.png``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from test_graph_browser import TRAINING_STEP

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[1] / "docs"
LOOP = (
    "%%autograd_trace\nx = torch.ones(3, requires_grad=True)\ng = x\nfor _ in range(2000):\n"
    "    g = g * 1.0001\nloss = g.sum()\nloss.backward()"
)
CELLS = [
    ("setup", TRAINING_STEP[0], False),
    ("seed", "%%autograd_trace\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ny = x * 2\n"
     "z = y + 3\nloss = z.sum()\nloss.backward()", False),
    ("training step", TRAINING_STEP[1], False),
    ("in-place", "%%autograd_trace\nx = torch.tensor([1.0, 2.0], requires_grad=True)\ny = x.sigmoid()\n"
     "y.mul_(2)\nloss = y.sum()\nloss.backward()", True),
    ("error", "%%autograd_trace\nx = torch.randn(4, 3, requires_grad=True)\nW = torch.randn(4, 2)\nout = x @ W", True),
    ("folded loop", LOOP, False),
]  # fmt: skip

# per graph output: the texts its widget draws in the graph, and those of the static SVG the same
# output carries (its text/html, the pictures decoded), grouped by what they belong to
JS_BOTH = """() => {
  const panel = window.__tl.panel, out = [];
  const texts = (root) => {
    const of = (sel) => [...root.querySelectorAll(sel)].map((g) => [...g.querySelectorAll('text')]
      .map((t) => t.textContent).join(' | '));
    return {nodes: of('.tl-node'), frames: of('.tl-group'), edges: of('.tl-edge')};
  };
  panel.content.widgets.forEach((cell) => {
    if (cell.model.type !== 'code') return;
    const widget = cell.node.querySelector('.torchlesson-graph');
    const html = cell.model.outputs.toJSON().map((o) => (o.data || {})['text/html']).find(Boolean);
    if (!widget || !html) return;
    const svgs = [...html.matchAll(/src="data:image\\/svg\\+xml;base64,([^"]+)"/g)].map((m) =>
      new DOMParser().parseFromString(new TextDecoder().decode(Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0))),
                                      'image/svg+xml'));
    const forward = svgs.find((d) => d.documentElement.dataset.view === 'forward');
    out.push({widget: texts(widget.querySelector('.tl-svg')), static: texts(forward)});
  });
  return out;
}"""


def notebook(path: Path) -> Path:
    cells = [
        nbformat.v4.new_code_cell(source, metadata={"tags": ["raises-exception"]} if fails else {})
        for _, source, fails in CELLS
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_widget_and_the_static_svg_draw_the_same_texts(lab_page, theme: str, tmp_path) -> None:
    page = lab_page.open(notebook(tmp_path / "five.ipynb"), theme=theme)
    both = page.evaluate(JS_BOTH)
    assert len(both) == 5
    for (name, _, _), drawn in zip(CELLS[1:], both, strict=True):
        for part in ("nodes", "frames", "edges"):
            widget, static = Counter(drawn["widget"][part]), Counter(drawn["static"][part])
            assert widget == static, (name, part, widget - static, static - widget)
        assert drawn["widget"]["nodes"], name
    # the folded loop: a handful of boxes, in the widget and in the static picture alike
    loop = both[-1]
    assert len(loop["widget"]["nodes"]) == 5
    assert any(t.startswith("▾ × 2000 · for") for t in loop["static"]["frames"]), loop["static"]["frames"]
    widgets = page.locator(".torchlesson-graph")
    folded = widgets.nth(4)
    page.mouse.move(1, 1)
    shot = lab_page.screenshot(f"folded-loop-{theme}", folded)
    # its iterations, one by one: Python lays the graph out again with the loop unfolded (the first
    # three, the middle folded, the last two: 6 multiplications, and the sum)
    folded.locator(".tl-node.kind-tensor").filter(
        has=page.locator(".tl-name", has_text=re.compile("^g$"))
    ).click()
    panel = folded.locator(".tl-panel")
    assert "× 2000: this box is iteration 2000, the last." in panel.inner_text()
    panel.get_by_role("button", name="Show its iterations").click()
    page.wait_for_function(
        "el => el.querySelectorAll('.tl-node.kind-op').length === 7",
        arg=folded.element_handle(),
        timeout=15_000,
    )
    header = folded.locator(".tl-group.fold .tl-group-header").first.text_content()
    assert header.startswith("▾ × 1995 · for"), header
    lab_page.screenshot(f"folded-loop-unfolded-{theme}", folded)
    if theme == "light":  # the same cell's static HTML, as an export or a first open shows it
        output = folded.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-child')][1]")
        html = page.evaluate(
            "(el) => { const cells = window.__tl.panel.content.widgets; const cell = cells[cells.length - 1];"
            " return cell.model.outputs.toJSON().map((o) => (o.data || {})['text/html']).find(Boolean); }",
            output.element_handle(),
        )
        static = page.context.new_page()
        static.set_content(f"<!doctype html><meta charset=utf-8><body style='margin:12px'>{html}</body>")
        static.locator("details summary").first.click()
        static_shot = lab_page.artifacts / "folded-loop-static.png"
        static.screenshot(path=static_shot, full_page=True)
        static.close()
    if os.environ.get("TORCHLESSON_UPDATE_SCREENSHOTS", "").lower() not in ("", "0", "false"):
        shutil.copyfile(shot, DOCS / f"graph-folded-loop-{theme}.png")
        if theme == "light":
            shutil.copyfile(static_shot, DOCS / "graph-folded-loop-static.png")
    assert lab_page.page_errors == []
