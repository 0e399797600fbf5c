"""The lesson notebooks in a real JupyterLab: every graph and every quiz they draw renders.

The module-3 notebook is also photographed whole, in the light and the dark theme
(``tests/artifacts/<test>/module3.png``), and so is its first graph cell (``module3-graph.png``).
With ``TORCHLESSON_UPDATE_SCREENSHOTS=1`` the pictures are copied, scaled down where they would
pass 1 MB, to ``docs/lesson-module3-<theme>.png`` and ``docs/lesson-module3-graph-<theme>.png``,
the screenshots the README shows.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODULE3 = EXAMPLES / "03_tensors_and_autograd.ipynb"
LESSONS = [MODULE3, EXAMPLES / "training_step.ipynb", EXAMPLES / "gradient_pitfalls.ipynb"]
MAX_DOCS_PNG = 1_000_000  # bytes; bigger pictures bloat the repository and the README
DOCS_SCALES = (0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3)  # the first that fits MAX_DOCS_PNG is used

# scale a PNG in the browser (no imaging library needed): data URL in, base64 PNG out
JS_SCALE_PNG = """async ([data, scale]) => {
  const image = new Image();
  image.src = 'data:image/png;base64,' + data;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(image.width * scale);
  canvas.height = Math.round(image.height * scale);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL('image/png').split(',')[1];
}"""


def expected_widgets(path: Path) -> tuple[int, int]:
    """(graphs, quizzes) the notebook's code draws: one per traced cell and one per %quiz cell."""
    cells = [c.source.lstrip() for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    graphs = sum(
        1 for src in cells if src.startswith("%%autograd_trace") and "--text" not in src.split("\n")[0]
    )
    quizzes = sum(1 for src in cells if src.startswith("%quiz "))
    quizzes += sum(
        1 for src in cells if src.startswith("%%autograd_trace") and "--predict" in src.split("\n")[0]
    )
    return graphs, quizzes


# per graph view: how many nodes it drew, and the nodes' labels
JS_GRAPHS = """() => Array.from(document.querySelectorAll('.jp-Notebook .torchlesson-graph')).map((root) => {
  const nodes = Array.from(root.querySelectorAll('svg.tl-svg .tl-node'));
  const box = root.getBoundingClientRect();
  return {nodes: nodes.length, text: nodes.map((n) => n.textContent).join(' '), height: box.height,
          buttons: Array.from(root.querySelectorAll('.tl-toolbar button')).map((b) => b.textContent)};
})"""


def check_widgets(page, path: Path) -> None:
    graphs, quizzes = expected_widgets(path)
    assert graphs and quizzes, f"{path.name} should draw graphs and quizzes"
    views = page.evaluate(JS_GRAPHS)
    assert len(views) == graphs, f"{path.name}: {len(views)} graph views for {graphs} traced cells"
    for number, view in enumerate(views, 1):
        assert view["nodes"] >= 2, f"{path.name}: graph {number} drew {view['nodes']} node(s)"
        assert view["height"] > 100, f"{path.name}: graph {number} is {view['height']} px high"
        assert {"Forward", "Autograd", "Fit"} <= set(view["buttons"]), view["buttons"]
    quiz_views = page.locator(".jp-Notebook .torchlesson-quiz")
    expect(quiz_views).to_have_count(quizzes)
    for number in range(quizzes):
        quiz = quiz_views.nth(number)
        expect(quiz.locator(".tlq-question").first).to_be_visible()
        expect(quiz.get_by_role("button", name="Check").first).to_be_visible()


@pytest.mark.parametrize("path", LESSONS[1:], ids=[p.stem for p in LESSONS[1:]])
def test_every_graph_and_quiz_of_the_lesson_renders(lab_page, path: Path) -> None:
    page = lab_page.open(path, theme="light")
    check_widgets(page, path)
    lab_page.screenshot(path.stem)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_module3_renders_and_is_photographed(lab_page, theme: str) -> None:
    page = lab_page.open(MODULE3, theme=theme)
    check_widgets(page, MODULE3)
    labels = " ".join(view["text"] for view in page.evaluate(JS_GRAPHS))
    for name in ("tensor_from_list", "random_tensor", "loss", "out", "y_const", "x_scaled"):
        assert name in labels, f"no graph shows {name}"
    shot = lab_page.screenshot("module3")
    graphs = page.locator(".jp-Notebook .torchlesson-graph")
    seed_cell = graphs.nth(2).locator("xpath=ancestor::div[contains(@class, 'jp-CodeCell')][1]")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 2000})  # the whole cell on screen
    seed_cell.scroll_into_view_if_needed()
    page.mouse.move(1, 1)  # no hover effects in the picture
    page.wait_for_timeout(300)
    seed_shot = lab_page.screenshot("module3-graph", seed_cell)
    page.set_viewport_size(size)

    # what the text tells the learner to look for (after the pictures, which show the defaults)
    second = graphs.nth(3)  # the module's second example: y needs no gradient, so no node is y's
    second.get_by_role("button", name="Autograd view").click()
    functions = second.locator(".tl-node.kind-grad_fn .tl-fn").all_text_contents()
    assert sorted(functions) == ["AccumulateGrad", "AddBackward0", "MulBackward0"]
    cuts = " ".join(graphs.nth(4).locator(".tl-edge.kind-cut").all_text_contents())
    assert "detach" in cuts and "no_grad" in cuts
    if os.environ.get("TORCHLESSON_UPDATE_SCREENSHOTS", "").lower() not in ("", "0", "false"):
        save_for_docs(page, shot, ROOT / "docs" / f"lesson-module3-{theme}.png")
        save_for_docs(page, seed_shot, ROOT / "docs" / f"lesson-module3-graph-{theme}.png")


def save_for_docs(page, shot: Path, target: Path) -> None:
    """Write ``shot`` to ``target``, scaled down if needed until it is small enough for the repository."""
    if shot.stat().st_size < MAX_DOCS_PNG:
        target.write_bytes(shot.read_bytes())
        return
    scratch = page.context.new_page()
    try:
        data = base64.b64encode(shot.read_bytes()).decode("ascii")
        for scale in DOCS_SCALES:
            png = base64.b64decode(scratch.evaluate(JS_SCALE_PNG, [data, scale]))
            if len(png) < MAX_DOCS_PNG:
                target.write_bytes(png)
                return
    finally:
        scratch.close()
    raise AssertionError(f"{shot.name} stays over {MAX_DOCS_PNG} bytes even at {DOCS_SCALES[-1]:.0%}")
