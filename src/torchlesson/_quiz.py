"""Answering quizzes: grade answers, pick and shuffle questions, and the public functions.

:func:`quiz` draws a widget for a quiz that :mod:`torchlesson._quiz_bank` found and validated;
:func:`grade` checks one answer against the key, which stays in the kernel. The widget
(``_quiz_widget.py``) sends the browser questions and choices only, never ``correct`` flags nor the
explanation of a choice the learner has not picked.
"""

from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

# The data model and QuizError live in _quiz_bank, which builds them and so must not import this
# module (no import cycle); they are re-exported here so the quiz API is importable from one place.
from ._quiz_bank import (
    Choice,
    Question,
    Quiz,
    QuizError,
    as_numbers,
    find_banks,
    load,
    read_bank,
    reveal_after_value,
)

if TYPE_CHECKING:
    from ._quiz_widget import QuizWidget

__all__ = ["Choice", "Grade", "Question", "Quiz", "QuizError", "list_quizzes", "quiz", "quiz_results"]


@dataclass(frozen=True)
class Grade:
    """The verdict on one answer: what the learner sees about *their* answer, nothing more."""

    correct: bool
    # (about, text): the explanation of each choice they picked (about = its text), or why a number
    # is off (about = "")
    notes: tuple[tuple[str, str], ...]
    readable: bool = True  # False: the text was not a number at all, which does not count as a try


# ---------------------------------------------------------------------------------------- grading


def grade(question: Question, answer: Any) -> Grade:
    """Check one answer: choice indices (into ``question.choices``) or, for numeric questions, text."""
    if question.kind == "numeric":
        return _grade_numeric(question, str(answer))
    picked = sorted(set(answer))
    if not picked or any(not 0 <= index < len(question.choices) for index in picked):
        raise QuizError(f"Question {question.id!r}: pick one of choices 0..{len(question.choices) - 1}.")
    if question.kind == "single" and len(picked) > 1:
        raise QuizError(f"Question {question.id!r} takes one choice, not {len(picked)}.")
    chosen = [question.choices[index] for index in picked]
    right = {index for index, choice in enumerate(question.choices) if choice.correct}
    notes = tuple((choice.text, choice.why) for choice in chosen if choice.why)
    if question.kind == "multiple" and set(picked) < right:
        notes += (("", "Everything you picked is right, but not everything right is picked yet."),)
    return Grade(correct=set(picked) == right, notes=notes)


def read_numbers(text: str) -> Any:
    """A learner's number or tensor, as typed or pasted: ``18``, ``[10, 14, 18]``, ``[10. 14. 18.]``,
    ``tensor([10., 14., 18.], grad_fn=<AddBackward0>)``. Read with :func:`ast.literal_eval`, never
    ``eval``."""
    text = re.sub(r"<[^<>]*>", "None", text.strip())  # grad_fn=<AddBackward0> as torch prints it
    for attempt in (text, re.sub(r"(?<=[\d.\]])\s+(?=[-+\d.\[])", ", ", text)):
        try:
            node = ast.parse(attempt, mode="eval").body
        except SyntaxError:
            continue
        # tensor([...]), torch.tensor(...), np.array(...), torch.Size([...]): read the first argument
        if isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"tensor", "array", "Size"}:
                node = node.args[0]
        try:
            return as_numbers(ast.literal_eval(node))
        except (ValueError, TypeError, SyntaxError):
            continue
    raise ValueError(f"not a number or a list of numbers: {text!r}")


def _grade_numeric(question: Question, text: str) -> Grade:
    try:
        given = np.asarray(read_numbers(text), dtype=float)
    except ValueError:
        note = "Type a number or a list of numbers, like 3.5 or [1, 2, 3] (tensor(...) is fine too)."
        return Grade(correct=False, notes=(("", note),), readable=False)
    expected = np.asarray(question.answer, dtype=float)
    if given.shape != expected.shape:
        note = (
            f"Your answer has shape {tuple(given.shape)}, but the answer has shape {tuple(expected.shape)}."
        )
        return Grade(correct=False, notes=(("", note),))
    # NOTE [numeric answers]: never ==. |given - answer| <= atol + rtol * |answer|, elementwise,
    # so 0.1 + 0.2 matches 0.3 and a learner may round to a few digits.
    if np.allclose(given, expected, rtol=question.rtol, atol=question.atol):
        return Grade(correct=True, notes=())
    for mistake in question.mistakes:
        value = np.asarray(mistake.value, dtype=float)
        if value.shape == given.shape and np.allclose(given, value, rtol=question.rtol, atol=question.atol):
            return Grade(correct=False, notes=(("", mistake.why),))
    return Grade(correct=False, notes=(("", question.hint),))


def answer_text(question: Question) -> str:
    """The right answer, in words, for revealing it: the correct choices' texts, or the number."""
    if question.kind == "numeric":
        return _format(question.answer)
    return "; ".join(choice.text for choice in question.choices if choice.correct)


def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_format(item) for item in value) + "]"
    return f"{value:g}"


# ---------------------------------------------------------------------------------------- public API


def select(
    quiz: Quiz, *, question: int | None = None, shuffle: bool = False, seed: int | None = None
) -> Quiz:
    """One question (counting from 1) and/or shuffled questions and choices; reproducible with seed."""
    questions = quiz.questions
    if question is not None:
        if not 1 <= question <= len(questions):
            raise QuizError(
                f"{quiz.name!r} has {len(questions)} questions; "
                f"pick a question number from 1 to {len(questions)}, not {question}."
            )
        questions = (questions[question - 1],)
    if seed is not None and not shuffle:
        raise QuizError("A seed only matters when shuffling: add --shuffle (shuffle=True in Python).")
    if shuffle:
        rng = random.Random(seed)
        questions = tuple(rng.sample(questions, len(questions)))
        questions = tuple(replace(q, choices=tuple(rng.sample(q.choices, len(q.choices)))) for q in questions)
    return replace(quiz, questions=questions)


def quiz(
    source: str | Path,
    *,
    question: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    reveal_after: int | Literal["never"] | None = None,
    lock_when_correct: bool | None = None,
) -> QuizWidget:
    """A quiz widget: a bundled or registered quiz by name, or your own ``.toml`` file.

    Answers are checked in the kernel; the browser never holds the key. ``reveal_after`` (tries, or
    ``"never"``) and ``lock_when_correct`` override what the quiz file says.

    Examples
    --------
    >>> import torchlesson
    >>> w = torchlesson.quiz("autograd", question=5)
    >>> w.check(w.questions[0]["id"], "tensor([10., 14., 18.])")["status"]
    'correct'
    """
    from ._quiz_widget import QuizWidget

    loaded = select(load(source), question=question, shuffle=shuffle, seed=seed)
    if reveal_after is not None:
        try:
            loaded = replace(loaded, reveal_after=reveal_after_value(reveal_after))
        except ValueError as exc:
            raise QuizError(f"reveal_after: {exc}") from None
    if lock_when_correct is not None:
        loaded = replace(loaded, lock_when_correct=bool(lock_when_correct))
    return QuizWidget(loaded)


@dataclass(frozen=True)
class QuizInfo:
    name: str
    title: str
    questions: int
    origin: str


class QuizList(tuple):
    """The available quizzes; shows as one line each."""

    def __repr__(self) -> str:
        if not self:
            return "No quizzes found."
        width = max(len(info.name) for info in self)
        lines = [
            f"{info.name:<{width}}  {info.title} ({info.questions} questions, {info.origin})" for info in self
        ]
        return "\n".join([*lines, "", "Draw one with %quiz NAME, or %quiz path/to/your_quiz.toml."])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def list_quizzes() -> QuizList:
    """The bundled and registered quizzes, one :class:`QuizInfo` each.

    Examples
    --------
    >>> import torchlesson
    >>> [info.name for info in torchlesson.list_quizzes()][:2]
    ['autograd', 'tensors']
    """
    infos = []
    for name, (item, origin) in find_banks().items():
        try:
            loaded = read_bank(name, item, origin)
            infos.append(QuizInfo(name, loaded.title, len(loaded.questions), origin))
        except QuizError as error:  # list what is there; the broken one says why
            infos.append(QuizInfo(name, f"cannot be loaded: {error}", 0, origin))
    return QuizList(infos)


def quiz_results() -> list[dict[str, Any]]:
    """The answers and score of every quiz drawn in this kernel, in the order they were drawn.

    Each entry is plain data (JSON-ready): ``quiz``, ``title``, ``score``, ``total`` and one dict per
    question with ``id``, ``solved``, ``tries``, ``first_try`` and every ``answers`` tried. One widget's
    results are ``widget.results``.
    """
    from ._quiz_widget import drawn

    return [widget.results for widget in drawn()]
