"""Reading a quiz file's text into a :class:`~torchlesson._quiz_model.Quiz`, or one line saying why not.

Every problem raises a :class:`QuizError` whose message names the file, the question (by id and
number) and the field, and says what to write instead. Whatever the text holds (wrong types, deep
nesting, infinities, a byte-order mark), the outcome is a ``Quiz`` or a ``QuizError``, never another
exception: ``tests/test_quiz.py`` feeds it generated broken files to hold us to that.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import sys
from dataclasses import replace
from typing import Any

import numpy as np

from ._quiz_model import (
    DEFAULT_ATOL,
    DEFAULT_REVEAL_AFTER,
    DEFAULT_RTOL,
    KINDS,
    Choice,
    Mistake,
    Question,
    Quiz,
    QuizError,
    brief,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_QUIZ_KEYS = {"title", "description", "reveal_after", "lock_when_correct", "question"}
_NUMERIC_KEYS = {"answer", "rtol", "atol", "mistake", "placeholder", "check"}  # numeric questions only
_QUESTION_KEYS = {"id", "type", "prompt", "code", "explanation", "choice", "hint", "raises"} | _NUMERIC_KEYS
_CHOICE_KEYS = {"text", "correct", "why"}
_MISTAKE_KEYS = {"value", "why"}
MAX_DIMENSIONS = 8  # of a numeric answer; deeper lists are a typo, not a tensor
# ids name questions in `-q a,b` and `--skip`: no commas or spaces, and never a bare number
_ID = re.compile(r"\w[\w.-]*")
_EXCEPTION_NAME = re.compile(r"[A-Za-z_][\w.]*")


def parse(text: str, *, name: str, source: str) -> Quiz:
    """Validate the TOML text of a quiz; every problem names the file, the question and the field."""
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as error:
        raise QuizError(f"Quiz file {source}: not valid TOML: {error}.") from None
    except RecursionError:
        raise QuizError(f"Quiz file {source}: not valid TOML: arrays or tables nest too deeply.") from None
    check = _Checker(source)
    # the quiz's own fields first, so that their errors never blame a question
    check.keys(data, _QUIZ_KEYS, "the top level")
    title = check.text(data, "title", required=True)
    description = check.text(data, "description")
    reveal = check.setting(data, "reveal_after", reveal_after_value, DEFAULT_REVEAL_AFTER)
    lock = check.setting(data, "lock_when_correct", lock_value, True)
    raw_questions = data.get("question")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise check.error("field 'question': add at least one [[question]] table.")
    questions: list[Question] = []
    numbers: dict[str, int] = {}
    for number, raw in enumerate(raw_questions, start=1):
        question = check.question(raw, number)
        if question.id in numbers:
            check.where = f"question #{number}, "
            raise check.error(
                f"field 'id': {question.id!r} is used twice, here and by question #{numbers[question.id]}; "
                "every question needs its own id."
            )
        numbers[question.id] = number
        questions.append(question)
    return Quiz(
        name=name,
        title=title,
        questions=tuple(questions),
        source=source,
        description=description,
        reveal_after=reveal,
        lock_when_correct=lock,
    )


def reveal_after_value(value: Any) -> int | None:
    """A quiz's ``reveal_after`` (a file's field or ``quiz(reveal_after=...)``): tries before the
    answer is shown, or None for ``"never"``; ``ValueError`` for anything else (``True`` too)."""
    if value == "never":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'use a number of tries (1 or more) or "never", not {value!r}.')
    return value


def lock_value(value: Any) -> bool:
    """A quiz's ``lock_when_correct`` (a file's field or ``quiz(lock_when_correct=...)``)."""
    if not isinstance(value, bool):
        raise ValueError(f"use true or false, not {value!r}.")
    return value


def as_numbers(value: Any, _depth: int = 0) -> Any:
    """A finite number, or a rectangular nested list of them, as floats in nested tuples."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number.")
        return number
    if isinstance(value, (list, tuple)) and value:
        if _depth >= MAX_DIMENSIONS:
            raise ValueError(f"the lists are nested more than {MAX_DIMENSIONS} deep.")
        items = tuple(as_numbers(item, _depth + 1) for item in value)
        if len({np.shape(item) for item in items}) > 1:
            raise ValueError("the nested lists have different lengths; a tensor answer must be rectangular.")
        return items
    shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
    raise ValueError(f"expected a number or a list of numbers, not {shown}.")


class _Checker:
    """Field-by-field validation that builds messages teachers can act on."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.where = ""  # "question 'leaf' (#2), " while a question is checked

    def error(self, problem: str) -> QuizError:
        return QuizError(f"Quiz file {self.source}, {self.where}{problem}")

    def keys(self, table: dict[str, Any], known: set[str], what: str) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = (
                    f" Did you mean {close[0]!r}?" if close else f" Known fields: {', '.join(sorted(known))}."
                )
                raise self.error(f"field {key!r}: not a field of {what}.{hint}")

    def text(self, table: dict[str, Any], key: str, *, required: bool = False, about: str = "") -> str:
        value = table.get(key, "")
        if not isinstance(value, str):
            raise self.error(f"field {key!r}{about}: must be a string, not {brief(value)}.")
        if required and not value.strip():
            raise self.error(f'field {key!r}{about}: is missing or empty; write {key} = "...".')
        return value.strip()

    def setting(self, data: dict[str, Any], key: str, rule: Any, default: Any) -> Any:
        try:
            return rule(data.get(key, default))
        except ValueError as exc:
            raise self.error(f"field {key!r}: {exc}") from None

    def question(self, raw: Any, number: int) -> Question:
        self.where = ""
        if not isinstance(raw, dict):
            raise self.error(f"field 'question' #{number}: is not a table; write it as [[question]].")
        self.where = f"question #{number}, "
        qid = raw.get("id")
        if not isinstance(qid, str) or not qid.strip():
            raise self.error("field 'id': every question needs a short id, e.g. id = \"leaf-tensors\".")
        qid = qid.strip()
        if not _ID.fullmatch(qid) or qid.isdigit():
            raise self.error(
                f"field 'id': {brief(qid)} is not a usable id; use letters, digits, '-', '_' and '.', "
                "no spaces or commas, and not only digits (-q 2 means the second question)."
            )
        self.where = f"question {qid!r} (#{number}), "
        self.keys(raw, _QUESTION_KEYS, "a question")
        kind = raw.get("type", "single")
        if kind not in KINDS:
            raise self.error(f"field 'type': use one of {', '.join(KINDS)}, not {brief(kind)}.")
        code = self.code(raw)
        common = {
            "id": qid,
            "kind": kind,
            "prompt": self.text(raw, "prompt", required=True),
            "explanation": self.text(raw, "explanation", required=True),
            "code": code,
            "hint": self.text(raw, "hint", required=kind == "numeric"),
            "raises": self.raises(raw, code),
        }
        if kind == "numeric":
            return self.numeric(raw, common)
        return Question(**common, choices=self.choices(raw, kind))

    def code(self, raw: dict[str, Any]) -> str:
        code = raw.get("code", "")
        if not isinstance(code, str):
            raise self.error('field \'code\': must be a string; a multi-line one is written between """s.')
        return code.strip("\n").rstrip()

    def raises(self, raw: dict[str, Any], code: str) -> str:
        name = self.text(raw, "raises")
        if name and not _EXCEPTION_NAME.fullmatch(name):
            raise self.error(
                f"field 'raises': name the exception class, e.g. raises = \"RuntimeError\", not {name!r}."
            )
        if name and not code:
            raise self.error('field \'raises\': there is no code to raise it; add code = """...""".')
        return name

    def choices(self, raw: dict[str, Any], kind: str) -> tuple[Choice, ...]:
        numeric_only = sorted(_NUMERIC_KEYS & raw.keys())
        if numeric_only:
            field = numeric_only[0]
            raise self.error(f"field {field!r}: only numeric questions have it (this one is {kind!r}).")
        items = raw.get("choice")
        if not isinstance(items, list) or len(items) < 2:
            raise self.error("field 'choice': give at least two [[question.choice]] tables.")
        choices = []
        for index, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise self.error(f"field 'choice' #{index}: is not a table; write it as [[question.choice]].")
            self.keys(item, _CHOICE_KEYS, "a choice")
            about = f" of choice #{index}"
            if not isinstance(item.get("text"), str) or not item["text"].strip():
                raise self.error(f"field 'text'{about}: every choice needs text = \"...\".")
            text = item["text"].strip()
            correct = item.get("correct", False)
            if not isinstance(correct, bool):
                raise self.error(f"field 'correct'{about}: use true or false, not {brief(correct)}.")
            why = self.text(item, "why", about=about)
            if not correct and not why:
                raise self.error(
                    f"field 'why'{about} ({text[:40]!r}): every wrong choice needs "
                    'why = "..." saying why it is wrong.'
                )
            choices.append(Choice(text=text, correct=correct, why=why))
        if len({choice.text for choice in choices}) < len(choices):
            raise self.error("field 'choice': two choices have the same text.")
        right = sum(choice.correct for choice in choices)
        if right == 0:
            raise self.error("field 'choice': no choice has correct = true.")
        if kind == "single" and right > 1:
            raise self.error(
                f"field 'choice': {right} choices have correct = true; a single-choice question needs "
                'exactly one (or use type = "multiple").'
            )
        return tuple(choices)

    def numeric(self, raw: dict[str, Any], common: dict[str, Any]) -> Question:
        if "choice" in raw:
            raise self.error("field 'choice': a numeric question has an answer instead of choices.")
        if "answer" not in raw:
            raise self.error("field 'answer': a numeric question needs answer = a number or a list of them.")
        answer = self.number(raw["answer"], "'answer'")
        tolerances = {}
        for key, default in (("rtol", DEFAULT_RTOL), ("atol", DEFAULT_ATOL)):
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise self.error(f"field {key!r}: must be a finite number >= 0, not {brief(value)}.")
            tolerances[key] = float(value)
        check = self.text(raw, "check")
        if check:
            try:
                ast.parse(check, mode="eval")
            except SyntaxError:
                raise self.error(
                    f"field 'check': {check!r} is not a Python expression; write the expression whose "
                    'value is the answer, e.g. check = "x.grad".'
                ) from None
        if check and common["raises"]:
            raise self.error("field 'raises': a numeric question's code must run to compute the answer.")
        question = Question(
            **common,
            answer=answer,
            **tolerances,
            placeholder=self.text(raw, "placeholder"),
            check=check,
        )
        return replace(question, mistakes=self.mistakes(raw, question))

    def mistakes(self, raw: dict[str, Any], question: Question) -> tuple[Mistake, ...]:
        items = raw.get("mistake", [])
        if not isinstance(items, list):
            raise self.error("field 'mistake': write each one as a [[question.mistake]] table.")
        mistakes = []
        for index, item in enumerate(items, start=1):
            about = f" of mistake #{index}"
            if not isinstance(item, dict) or "value" not in item:
                raise self.error(f"field 'mistake' #{index}: needs value = ... and why = \"...\".")
            self.keys(item, _MISTAKE_KEYS, "a mistake")
            value = self.number(item["value"], f"'value'{about}")
            why = self.text(item, "why", required=True, about=about)
            if np.shape(value) != np.shape(question.answer):
                raise self.error(
                    f"field 'value'{about}: has shape {np.shape(value)} but the answer has shape "
                    f"{np.shape(question.answer)}; a learner typing it would read about the shape instead."
                )
            if np.allclose(value, question.answer, rtol=question.rtol, atol=question.atol):
                raise self.error(
                    f"field 'value'{about}: matches the answer within rtol/atol, so it would be graded right."
                )
            mistakes.append(Mistake(value, why))
        return tuple(mistakes)

    def number(self, value: Any, field: str) -> Any:
        try:
            return as_numbers(value)
        except ValueError as error:
            raise self.error(f"field {field}: {error}") from None
