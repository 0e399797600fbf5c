"""Predict mode in a real JupyterLab: the hidden gradient is not in the page, a wrong answer keeps
it hidden, the right one draws the graph again with it, and the replay runs; light and dark."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from torchlesson._predict import HIDDEN

pytestmark = pytest.mark.browser

CELLS = [
    "%load_ext torchlesson",
    "%%autograd_trace --predict x.grad\n"
    "import torch\n"
    "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
    "y = x * 2\n"
    "z = y + 3\n"
    "loss = z.sum()\n"
    "loss.backward()",
]
ANSWER = "2., 2., 2."


def page_source(page) -> str:
    """The whole page, shadow roots included: what a learner could read with the developer tools."""
    return page.evaluate(
        """() => [document.documentElement.outerHTML, ...[...document.querySelectorAll('*')]
                 .filter((e) => e.shadowRoot).map((e) => e.shadowRoot.innerHTML)].join(' ')"""
    )


def stored_chip(page):
    """The chip under x's box that shows x.grad."""
    label = page.locator(".tl-name").filter(has_text=re.compile(r"^x$"))
    return (
        page.locator(".torchlesson-graph .tl-node.kind-tensor").filter(has=label).locator(".chip-stored text")
    )


def replay_to_the_end(page) -> str:
    """Play the backward pass to its last step; the caption then."""
    graph = page.locator(".torchlesson-graph")
    graph.get_by_role("button", name="Play the backward pass").click()
    caption = graph.locator(".tl-caption")
    caption.filter(has_text="Step 4 of 4").wait_for(timeout=15_000)
    return caption.inner_text()


def answer(question, text: str) -> None:
    box = question.get_by_label("Your answer")
    box.fill(text)
    question.get_by_role("button", name="Check").click()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_learner_predicts_x_grad_wrong_then_right_and_sees_it_revealed(lab_page, theme: str) -> None:
    page = lab_page.open(CELLS, theme=theme)
    expect(page.locator(".torchlesson-graph")).to_have_count(1)
    question = page.locator(".torchlesson-quiz .tlq-question")
    expect(question).to_have_count(1)
    expect(question).to_contain_text("What is x.grad after this cell?")
    expect(stored_chip(page)).to_have_text(f"x.grad = {HIDDEN}")
    assert ANSWER not in page_source(page)
    # the replay runs, and its last step does not say it either
    last_step = replay_to_the_end(page)
    assert f"AccumulateGrad added ∂loss/∂x = {HIDDEN} into x.grad" in last_step
    assert ANSWER not in last_step + page_source(page)

    feedback = question.locator(".tlq-feedback")
    answer(question, "[1, 1, 1]")
    expect(feedback).to_contain_text("Not yet")
    expect(feedback).to_contain_text("Follow the graph backward")
    assert ANSWER not in page_source(page)
    expect(stored_chip(page)).to_have_text(f"x.grad = {HIDDEN}")
    lab_page.screenshot(f"wrong-{theme}")

    question.get_by_role("button", name="Try again").click()
    answer(question, "tensor([2., 2., 2.])")
    expect(feedback).to_contain_text("Correct")
    expect(feedback).to_contain_text("Replay backward")
    expect(stored_chip(page)).to_have_text(f"x.grad = [{ANSWER}]")  # the graph, drawn again
    expect(page.locator(".torchlesson-graph")).to_have_count(1)  # in place, not a second graph
    lab_page.screenshot(f"revealed-{theme}")

    # the replay now shows why
    assert f"AccumulateGrad added ∂loss/∂x = [{ANSWER}] into x.grad" in replay_to_the_end(page)
    assert lab_page.page_errors == []
