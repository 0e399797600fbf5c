"""The quiz widget in a real JupyterLab: a learner answers wrong, reads why, answers right, and the
score changes; the key is not in the page before that; everything works by keyboard."""

from __future__ import annotations

import html
import re

import pytest
from playwright.sync_api import expect

from torchlesson._quiz import Question, load

pytestmark = pytest.mark.browser


def plain(text: str) -> str:
    """Quiz text as the page shows it: `code` marks become <code> elements."""
    return text.replace("`", "")


def secrets(question: Question) -> list[str]:
    return [
        question.explanation,
        question.hint,
        *(c.why for c in question.choices),
        *(m.why for m in question.mistakes),
    ]


def luminance(css_color: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def test_a_learner_answers_wrong_then_right_and_the_score_changes(lab_page) -> None:
    quiz = load("autograd")
    page = lab_page.open(["%load_ext torchlesson", "%quiz autograd"], theme="light")
    root = page.locator(".torchlesson-quiz")
    expect(root).to_have_count(1)
    score = root.locator(".tlq-score")
    expect(score).to_have_text(f"0 of {len(quiz.questions)} correct")

    # Before any answer, neither the page source nor the visible text holds an explanation.
    source = page.evaluate("() => document.documentElement.outerHTML")
    visible = root.inner_text()
    for question in quiz.questions:
        assert plain(question.prompt) in visible.replace("\n", " ") or question.code
        for secret in filter(None, secrets(question)):
            longest = max(secret.split("`"), key=len)
            assert html.escape(longest, quote=False) not in source, (question.id, secret)
            assert plain(secret) not in visible, (question.id, secret)

    key = quiz.questions[0]
    wrong = next(c for c in key.choices if not c.correct)
    right = next(c for c in key.choices if c.correct)
    question = root.locator(".tlq-question").first
    feedback = question.locator(".tlq-feedback")

    question.get_by_label(plain(wrong.text)).check()
    question.get_by_role("button", name="Check").click()
    expect(feedback).to_contain_text("Not yet")
    expect(feedback).to_contain_text(plain(wrong.why))
    assert plain(key.explanation) not in feedback.inner_text()
    for other in key.choices:
        if other is not wrong:
            assert plain(other.why) not in root.inner_text()
    expect(question.locator(".tlq-wrong")).to_contain_text("✗ your pick")  # a word, not only a colour
    expect(score).to_have_text(f"0 of {len(quiz.questions)} correct")
    assert feedback.evaluate("e => getComputedStyle(e).animationName") == "tlq-appear"
    lab_page.screenshot("wrong", question)

    question.get_by_role("button", name="Try again").click()
    expect(feedback).to_be_empty()
    question.get_by_label(plain(right.text)).check()
    question.get_by_role("button", name="Check").click()
    expect(feedback).to_contain_text("Correct")
    expect(feedback).to_contain_text(plain(key.explanation))
    expect(score).to_have_text(f"1 of {len(quiz.questions)} correct")
    expect(question.locator("input").first).to_be_disabled()  # locked once correct
    lab_page.screenshot("right", root.locator(".tlq-question").nth(0))
    assert lab_page.page_errors == []


def test_the_quiz_works_by_keyboard_alone_in_the_dark_theme(lab_page) -> None:
    seed = next(q for q in load("autograd").questions if q.id == "seed-gradient")
    dtype = load("tensors").questions[0]
    cells = ["%load_ext torchlesson", "%quiz autograd -q 5", "%quiz tensors -q 1", "%quiz tensors -q 4"]
    page = lab_page.open(cells, theme="dark")
    page.emulate_media(reduced_motion="reduce")
    numeric, single = page.locator(".tlq-question").nth(0), page.locator(".tlq-question").nth(1)

    # Every input has its own label, in its own question, also with several quizzes on the page;
    # every verdict goes to a polite live region.
    assert page.evaluate(
        """() => [...document.querySelectorAll('.torchlesson-quiz input')].every(i =>
             i.labels.length === 1 && i.labels[0].closest('.tlq-question') === i.closest('.tlq-question'))"""
    )
    expect(page.locator(".torchlesson-quiz [role=status][aria-live=polite]")).to_have_count(3)

    # Numeric answer: Tab into the box (from the cell, a few presses at most), type, Enter.
    page.locator(".tlq-title").first.click()
    answer_box = numeric.get_by_label("Your answer")
    for _ in range(5):
        page.keyboard.press("Tab")
        if answer_box.evaluate("e => e === document.activeElement"):
            break
    expect(answer_box).to_be_focused()
    page.keyboard.type("[5, 7, 9]")
    page.keyboard.press("Enter")
    expect(numeric.locator(".tlq-feedback")).to_contain_text(plain(seed.mistakes[0].why))
    retry = numeric.get_by_role("button", name="Try again")
    expect(retry).to_be_focused()
    assert numeric.locator(".tlq-feedback").evaluate("e => getComputedStyle(e).animationName") == "none"
    page.keyboard.press("Enter")
    expect(answer_box).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("tensor([10., 14., 18.])")
    page.keyboard.press("Enter")
    expect(numeric.locator(".tlq-feedback")).to_contain_text("Correct")
    expect(numeric.locator(".tlq-feedback")).to_be_focused()
    expect(page.locator(".tlq-score").first).to_have_text("1 of 1 correct")

    # Single choice: arrow keys move between radio buttons, Enter checks.
    radios = single.locator("input[type=radio]")
    radios.first.focus()
    page.keyboard.press("Space")
    right = next(c.text for c in dtype.choices if c.correct)
    for _ in range(len(dtype.choices)):
        checked = single.locator("input:checked + label").inner_text()
        if checked.startswith(plain(right)):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(single.locator(".tlq-feedback")).to_contain_text("Correct")
    expect(page.locator(".tlq-score").nth(1)).to_have_text("1 of 1 correct")

    # Readable in the dark theme: light text on a dark ground.
    prompt = single.locator(".tlq-prompt")
    assert luminance(prompt.evaluate("e => getComputedStyle(e).color")) > 0.6
    panel = numeric.locator(".tlq-feedback").evaluate("e => getComputedStyle(e).backgroundColor")
    assert luminance(panel) < 0.3
    lab_page.screenshot("dark", page.locator(".torchlesson-quiz").first)
    assert lab_page.page_errors == []
