"""Answering quizzes: grade answers, choose and shuffle questions, and the public functions.

:func:`quiz` draws a widget for a quiz that :mod:`torchlesson._quiz_bank` found and validated;
:func:`grade` checks one answer against the key, which stays in the kernel. The widget
(``_quiz_widget.py``) sends the browser questions and choices only, never ``correct`` flags nor the
explanation of a choice the learner has not picked.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

# The data model and QuizError live in _quiz_model, which the bank and the schema build on and so
# must not import this module (no import cycle); they are re-exported here so the quiz API is
# importable from one place.
from ._quiz_bank import (
    Choice,
    Question,
    Quiz,
    QuizError,
    as_numbers,
    find_banks,
    load,
    lock_value,
    read_bank,
    reveal_after_value,
)

# choosing questions lives in its own module; `select` is re-exported for the quiz API
from ._quiz_choose import QuestionRefs, select

if TYPE_CHECKING:
    from ._quiz_widget import QuizWidget

__all__ = ["Choice", "Grade", "Question", "Quiz", "QuizError", "list_quizzes", "quiz", "quiz_results"]

MAX_ANSWER_CHARS = 2000  # a typed answer longer than this is a paste accident, not a tensor to read

# NOTE [multiple-choice feedback]: a wrong multiple-choice answer gets no per-choice feedback. The
# `why` of each pick would say which picks are right ("Yes: ..."), so ticking every box would reveal
# the whole key in one try; even "everything you picked is right" gives the picks away. The whys
# arrive once the answer is right or the quiz's reveal_after tries are used up.
MULTIPLE_NOT_YET = "At least one pick is wrong or missing: look at each choice again."


@dataclass(frozen=True)
class Grade:
    """The verdict on one answer: what the learner sees about *their* answer, nothing more."""

    correct: bool
    # (about, text): the explanation of each choice they picked (about = its text), or why a number
    # is off (about = "")
    notes: tuple[tuple[str, str], ...]
    readable: bool = True  # False: the text was not a number at all, which does not count as a try
    picked: tuple[int, ...] = ()  # choice questions: the indices picked, sorted


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
    right = {index for index, choice in enumerate(question.choices) if choice.correct}
    correct = set(picked) == right
    if question.kind == "multiple" and not correct:  # NOTE [multiple-choice feedback]
        notes: tuple[tuple[str, str], ...] = (("", MULTIPLE_NOT_YET),)
    else:
        notes = explain_picks(question, picked)
    if not correct and question.hint:
        notes += (("", question.hint),)
    return Grade(correct=correct, notes=notes, picked=tuple(picked))


def explain_picks(question: Question, picked: Sequence[int]) -> tuple[tuple[str, str], ...]:
    """The ``why`` of each picked choice: for a right answer, or once the answer is revealed."""
    chosen = (question.choices[index] for index in picked)
    return tuple((choice.text, choice.why) for choice in chosen if choice.why)


def read_numbers(text: str) -> Any:
    """A learner's number or tensor, as typed or pasted: ``18``, ``[10, 14, 18]``, ``[10. 14. 18.]``,
    ``tensor([10., 14., 18.], grad_fn=<AddBackward0>)``. Read with :func:`ast.literal_eval`, never
    ``eval``."""
    if len(text) > MAX_ANSWER_CHARS:
        raise ValueError(f"not a number or a list of numbers: {len(text)} characters is too long")
    text = re.sub(r"<[^<>]*>", "None", text.strip())  # grad_fn=<AddBackward0> as torch prints it
    for attempt in (text, re.sub(r"(?<=[\d.\]])\s+(?=[-+\d.\[])", ", ", text)):
        try:
            node = ast.parse(attempt, mode="eval").body
        except (SyntaxError, RecursionError, MemoryError):
            continue
        # tensor([...]), torch.tensor(...), np.array(...), torch.Size([...]): read the first argument
        if isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"tensor", "array", "Size"}:
                node = node.args[0]
        try:
            return as_numbers(ast.literal_eval(node))
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
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


def quiz(
    source: str | Path,
    *,
    question: QuestionRefs = None,
    skip: QuestionRefs = None,
    pick: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    reveal_after: int | Literal["never"] | None = None,
    lock_when_correct: bool | None = None,
    save: bool = False,
) -> QuizWidget:
    """A quiz widget: a bundled or registered quiz by name, or your own ``.toml`` file.

    Answers are checked in the kernel; the browser never holds the key. ``question`` chooses
    questions by number (from 1) or id, or a list of them (``"seed-gradient,detach"``); ``skip``
    leaves some out; ``pick`` draws that many at random, reproducibly with ``seed``. ``reveal_after``
    (tries, or ``"never"``) and ``lock_when_correct`` override what the quiz file says. ``save=True``
    keeps the learner's answers in the notebook file (see ``docs/quiz-format.md``).

    Examples
    --------
    >>> import torchlesson
    >>> w = torchlesson.quiz("autograd", question="seed-gradient")
    >>> w.check("seed-gradient", "tensor([10., 14., 18.])")["status"]
    'correct'
    """
    from ._quiz_widget import QuizWidget

    loaded = select(load(source), question=question, skip=skip, pick=pick, shuffle=shuffle, seed=seed)
    overrides = {}
    for name, value, rule in (
        ("reveal_after", reveal_after, reveal_after_value),
        ("lock_when_correct", lock_when_correct, lock_value),
    ):
        if value is not None:
            try:
                overrides[name] = rule(value)
            except ValueError as exc:
                raise QuizError(f"{name}: {exc}") from None
    if not isinstance(save, bool):
        raise QuizError(f"save takes True or False, not {save!r}.")
    return QuizWidget(replace(loaded, **overrides), save=save)


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
    """The answers and score of every quiz shown in this kernel, in the order they were shown.

    Each entry is plain data (JSON-ready): ``quiz``, ``title``, ``shown_at``, ``score``, ``total``
    and one dict per question with ``id``, ``solved``, ``tries``, ``first_try`` and every
    ``answers`` tried, each with its ``time``. One widget's results are ``widget.results``; a quiz
    that was built but never displayed is not listed. To keep them in a file, see
    :func:`torchlesson.export_quiz_results`.
    """
    from ._quiz_widget import drawn

    return [widget.results for widget in drawn()]
