"""``python -m torchlesson check``: what a quiz author runs before a class sees the quiz.

:func:`check_quiz` runs every question's ``code`` (with ``torch`` and ``np`` already imported, as in
the lessons), checks that code raises exactly where the question says it does (``raises``), that
every numeric ``answer`` is what its ``check`` expression computes, that no listed mistake is, and
that printing the value gives text the grader reads. It also warns where learners could guess: the
right choice is mostly the longest, or always in the same place.
"""

from __future__ import annotations

import contextlib
import io
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._quiz import Question, Quiz, _format, as_numbers, grade

LEVELS = ("ok", "warn", "FAIL")


@dataclass(frozen=True)
class Finding:
    level: str  # one of LEVELS
    question: str  # a question id, or "" for the whole quiz
    message: str


def check_quiz(quiz: Quiz) -> list[Finding]:
    """One finding per question (its worst), then the quiz-wide warnings."""
    findings = [_check_question(question) for question in quiz.questions]
    return findings + _guessable(quiz)


def _check_question(question: Question) -> Finding:
    namespace, error, where = _run(question.code)
    if question.raises:
        if error is None:
            return Finding("FAIL", question.id, f"code ran without raising {question.raises}, as raises says")
        names = {cls.__name__ for cls in type(error).__mro__}
        names |= {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}
        if question.raises not in names:
            raised = _describe(error, where)
            return Finding("FAIL", question.id, f"code raised {raised}, not {question.raises}")
        return Finding("ok", question.id, f"code raises {type(error).__name__}, as raises says")
    if error is not None:
        hint = f'; if that is the point, add raises = "{type(error).__name__}"' if question.code else ""
        return Finding("FAIL", question.id, f"code raised {_describe(error, where)}{hint}")
    if question.kind != "numeric":
        return Finding("ok", question.id, "code runs" if question.code else "no code to run")
    if not question.check:
        return Finding(
            "warn", question.id, 'answer not checked: add check = "..." (the expression whose value it is)'
        )
    return _check_answer(question, namespace)


def _check_answer(question: Question, namespace: dict[str, Any]) -> Finding:
    try:
        value = eval(question.check, namespace)  # the author's own expression, run on request
        computed = as_numbers(_plain(value))
    except Exception as error:
        return Finding("FAIL", question.id, f"check = {question.check!r} raised {_describe(error, '')}")
    shown = f"{question.check} = {_format(computed)}"
    if np.shape(computed) != np.shape(question.answer) or not np.allclose(
        computed, question.answer, rtol=question.rtol, atol=question.atol
    ):
        return Finding("FAIL", question.id, f"{shown}, but answer = {_format(question.answer)}")
    for mistake in question.mistakes:
        if np.shape(mistake.value) == np.shape(computed) and np.allclose(
            mistake.value, computed, rtol=question.rtol, atol=question.atol
        ):
            listed = _format(mistake.value)
            return Finding("FAIL", question.id, f"{shown}, which the mistake {listed} matches")
    printed = repr(value)
    if not grade(question, printed).correct:
        problem = f"{shown}, but typing what Python prints, {printed!r}, is graded wrong"
        return Finding("warn", question.id, problem)
    return Finding("ok", question.id, f"{shown}, the answer")


def _run(code: str) -> tuple[dict[str, Any], BaseException | None, str]:
    """Run a question's code as a learner's cell would; its output and warnings are not shown."""
    import torch

    namespace: dict[str, Any] = {"torch": torch, "np": np, "numpy": np, "__name__": "__quiz__"}
    if not code:
        return namespace, None, ""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                exec(compile(code, "<code>", "exec"), namespace)  # the author's own code, run on request
            except Exception as error:
                frames = traceback.extract_tb(error.__traceback__)
                lines = [frame.lineno for frame in frames if frame.filename == "<code>"]
                return namespace, error, f" (line {lines[-1]})" if lines else ""
    return namespace, None, ""


def _plain(value: Any) -> Any:
    """A tensor, array, torch.Size or number as nested Python lists of numbers."""
    for method in ("detach", "cpu", "tolist"):
        if hasattr(value, method) and callable(getattr(value, method)):
            value = getattr(value, method)()
    return list(value) if isinstance(value, tuple) else value


def _describe(error: BaseException, where: str) -> str:
    message = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}{where}" + (f": {message[:120]}" if message else "")


def _guessable(quiz: Quiz) -> list[Finding]:
    """Warnings for patterns that let a learner score without knowing: see the test of the banks."""
    singles = [q for q in quiz.questions if q.kind == "single"]
    if len(singles) < 3:
        return []
    findings = []
    longest = sum(1 for q in singles if max(len(c.text) for c in q.choices if not c.correct) < len(_right(q)))
    if longest > len(singles) / 2:
        findings.append(
            Finding(
                "warn", "", f"the right choice is the longest in {longest} of {len(singles)} single-choice "
                "questions: learners can guess it; trim the right ones or lengthen the others"
            )
        )  # fmt: skip
    places = Counter(next(i for i, c in enumerate(q.choices) if c.correct) for q in singles)
    if len(places) == 1:
        place = next(iter(places)) + 1
        findings.append(Finding("warn", "", f"the right choice is always choice {place}: vary its place"))
    return findings


def _right(question: Question) -> str:
    return next(choice.text for choice in question.choices if choice.correct)
