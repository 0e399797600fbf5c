"""The graph and the quiz in Notebook 7 (the ``notebook`` package, ``/notebooks/...``), as the README
promises: a traced cell and a quiz run and render there as they do in JupyterLab."""

from __future__ import annotations

import pytest

from test_graph_browser import SEED, svg_texts, tensor_node

pytestmark = pytest.mark.browser


def test_a_traced_cell_and_a_quiz_work_in_notebook_7(notebook7_page) -> None:
    page = notebook7_page.open([*SEED, "%quiz autograd -q 1"])
    assert "/notebooks/" in page.url
    widget = page.locator(".torchlesson-graph")
    assert widget.count() == 1
    assert sorted(svg_texts(widget.locator(".tl-node.kind-tensor .tl-name"))) == ["loss", "x", "y", "z"]
    assert svg_texts(tensor_node(widget, "x").locator(".chip-stored text")) == ["x.grad = [2., 2., 2.]"]
    tensor_node(widget, "y").click()
    assert widget.locator(".tl-panel h3").inner_text().startswith("y")
    widget.get_by_role("button", name="Autograd view").click()
    assert "MulBackward0" in svg_texts(widget.locator(".tl-node.kind-grad_fn .tl-fn"))
    quiz = page.locator(".torchlesson-quiz")
    assert quiz.count() == 1
    assert quiz.get_by_role("button", name="Check").first.is_visible()
    page.mouse.move(1, 1)
    notebook7_page.screenshot("notebook7")
    assert notebook7_page.page_errors == []
