"""Quiz banks: what a quiz is (the frozen data model), where quiz files come from, and reading one.

A quiz is a TOML file (the format is documented in ``docs/quiz-format.md``). Bundled quizzes live in
``torchlesson/quizzes/*.toml``; other packages add theirs through the ``torchlesson.quizzes``
entry-point group; teachers give a path to their own file. :func:`load` finds a quiz by name or path
and :func:`parse` turns its text into a frozen :class:`Quiz`, or raises a one-line :class:`QuizError`
that names the file, the question and the field to fix. Grading lives in :mod:`torchlesson._quiz`.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ENTRY_POINT_GROUP = "torchlesson.quizzes"
KINDS = ("single", "multiple", "numeric")
DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-6
DEFAULT_REVEAL_AFTER = 2

_QUIZ_KEYS = {"title", "description", "reveal_after", "lock_when_correct", "question"}
_NUMERIC_KEYS = {"answer", "rtol", "atol", "hint", "mistake", "placeholder"}  # numeric questions only
_QUESTION_KEYS = {"id", "type", "prompt", "code", "explanation", "choice"} | _NUMERIC_KEYS
_CHOICE_KEYS = {"text", "correct", "why"}
_MISTAKE_KEYS = {"value", "why"}


class QuizError(Exception):
    """A quiz that cannot be drawn: unknown name, unreadable or malformed file, bad options."""


@dataclass(frozen=True)
class Choice:
    text: str
    correct: bool
    why: str  # why this choice is right or wrong; shown only once the learner picks it


@dataclass(frozen=True)
class Mistake:
    value: Any  # a number or nested tuple of numbers, like Question.answer
    why: str


@dataclass(frozen=True)
class Question:
    id: str
    kind: Literal["single", "multiple", "numeric"]
    prompt: str
    explanation: str
    code: str = ""
    choices: tuple[Choice, ...] = ()
    answer: Any = None  # numeric questions: a float or nested tuple of floats
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    hint: str = ""  # numeric questions: feedback for a wrong number that matches no listed mistake
    mistakes: tuple[Mistake, ...] = ()
    placeholder: str = ""


@dataclass(frozen=True)
class Quiz:
    name: str
    title: str
    questions: tuple[Question, ...]
    source: str  # how messages name the file: a path as given, or "autograd.toml (bundled)"
    description: str = ""
    reveal_after: int | None = DEFAULT_REVEAL_AFTER  # wrong tries before the answer shows; None: never
    lock_when_correct: bool = True


# ---------------------------------------------------------------------------------------- finding


def _bundled() -> Traversable:
    return resources.files("torchlesson") / "quizzes"


def find_banks() -> dict[str, tuple[Traversable, str]]:
    """Quiz name -> (file, where it comes from: "bundled", "from PACKAGE"); bundled quizzes first,
    then entry points."""
    found: dict[str, tuple[Traversable, str]] = {}
    folders: list[tuple[Traversable, str]] = [(_bundled(), "bundled")]
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        package = entry.dist.name if entry.dist is not None else entry.value
        try:
            folders.append((_as_folder(entry.load()), f"from {package}"))
        except Exception as error:  # a broken plugin must not break the bundled quizzes
            warnings.warn(
                f"torchlesson: quiz bank {entry.name!r} ({entry.value}) could not be loaded: {error}",
                stacklevel=3,
            )
    for folder, origin in folders:
        for item in sorted(folder.iterdir(), key=lambda item: item.name):
            name = item.name.removesuffix(".toml")
            if not item.name.endswith(".toml") or not item.is_file():
                continue
            if name in found:
                first = _label(*found[name])
                warnings.warn(f"torchlesson: two quizzes are named {name!r}; {first} wins over {origin}.",
                              stacklevel=3)  # fmt: skip
                continue
            found[name] = (item, origin)
    return found


def _as_folder(target: Any) -> Traversable:
    """An entry point names a package (its folder holds the .toml files), a folder or a Traversable."""
    if hasattr(target, "__spec__") and hasattr(target, "__name__"):
        return resources.files(target)
    if isinstance(target, (str, Path)):
        return Path(target)
    if hasattr(target, "iterdir"):
        return target
    raise TypeError(f"expected a package, a folder path or a Traversable, got {type(target).__name__}")


# ---------------------------------------------------------------------------------------- loading


def load(source: str | Path) -> Quiz:
    """A bundled or registered quiz by name, or a quiz file by path, validated."""
    text_source = str(source)
    if text_source.endswith(".toml") or isinstance(source, Path) or "/" in text_source or "\\" in text_source:
        path = Path(source)
        if not path.is_file():
            raise QuizError(f"No quiz file at {text_source!r}. Check the path (relative to the notebook).")
        return parse(path.read_text(encoding="utf-8"), name=path.stem, source=text_source)
    banks = find_banks()
    if text_source not in banks:
        close = difflib.get_close_matches(text_source, banks, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise QuizError(
            f"No quiz named {text_source!r}.{guess} Available: {', '.join(banks)}. "
            "Or give the path of your own .toml quiz file."
        )
    return read_bank(text_source, *banks[text_source])


def read_bank(name: str, item: Traversable, origin: str) -> Quiz:
    """Parse a quiz ``find_banks`` found; messages name it ``autograd.toml (bundled)``."""
    return parse(item.read_text(encoding="utf-8"), name=name, source=_label(item, origin))


def _label(item: Traversable, origin: str) -> str:
    return f"{item.name} ({origin})"


def parse(text: str, *, name: str, source: str) -> Quiz:
    """Validate the TOML text of a quiz; every problem names the file, the question and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise QuizError(f"Quiz file {source}: not valid TOML: {error}.") from None
    check = _Checker(source)
    check.keys(data, _QUIZ_KEYS, "the top level")
    title = check.text(data, "title", required=True)
    raw_questions = data.get("question")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise check.error("field 'question': add at least one [[question]] table.")
    questions = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_questions, start=1):
        question = check.question(raw, number)
        if question.id in seen:
            raise check.error(f"question {question.id!r} (#{number}), field 'id': this id is used twice.")
        seen.add(question.id)
        questions.append(question)
    try:
        reveal = reveal_after_value(data.get("reveal_after", DEFAULT_REVEAL_AFTER))
    except ValueError as exc:
        raise check.error(f"field 'reveal_after': {exc}") from None
    lock = data.get("lock_when_correct", True)
    if not isinstance(lock, bool):
        raise check.error(f"field 'lock_when_correct': use true or false, not {lock!r}.")
    return Quiz(
        name=name,
        title=title,
        questions=tuple(questions),
        source=source,
        description=check.text(data, "description"),
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


class _Checker:
    """Field-by-field validation that builds messages teachers can act on."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.where = ""

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

    def text(self, table: dict[str, Any], key: str, *, required: bool = False) -> str:
        value = table.get(key, "")
        if not isinstance(value, str):
            raise self.error(f"field {key!r}: must be a string, not {value!r}.")
        if required and not value.strip():
            raise self.error(f'field {key!r}: is missing or empty; write {key} = "...".')
        return value.strip()

    def question(self, raw: Any, number: int) -> Question:
        self.where = f"question #{number}, "
        if not isinstance(raw, dict):
            raise self.error("is not a table; write it as [[question]].")
        qid = raw.get("id")
        if not isinstance(qid, str) or not qid.strip():
            raise self.error(
                "field 'id': every question needs a short id string, e.g. id = \"leaf-tensors\"."
            )
        self.where = f"question {qid!r} (#{number}), "
        self.keys(raw, _QUESTION_KEYS, "a question")
        kind = raw.get("type", "single")
        if kind not in KINDS:
            raise self.error(f"field 'type': use one of {', '.join(KINDS)}, not {kind!r}.")
        common = {
            "id": qid.strip(),
            "kind": kind,
            "prompt": self.text(raw, "prompt", required=True),
            "explanation": self.text(raw, "explanation", required=True),
            "code": self.code(raw),
        }
        if kind == "numeric":
            return self.numeric(raw, common)
        return Question(**common, choices=self.choices(raw, kind))

    def code(self, raw: dict[str, Any]) -> str:
        code = raw.get("code", "")
        if not isinstance(code, str):
            raise self.error('field \'code\': must be a string; a multi-line one is written between """s.')
        return code.strip("\n").rstrip()

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
            if not isinstance(item.get("text"), str) or not item["text"].strip():
                raise self.error(f"field 'text' of choice #{index}: every choice needs text = \"...\".")
            text = item["text"].strip()
            correct = item.get("correct", False)
            if not isinstance(correct, bool):
                raise self.error(f"field 'correct' of choice #{index}: use true or false, not {correct!r}.")
            why = item.get("why", "")
            if not isinstance(why, str) or (not correct and not why.strip()):
                raise self.error(
                    f"field 'why' of choice #{index} ({text[:40]!r}): every wrong choice needs "
                    'why = "..." saying why it is wrong.'
                )
            choices.append(Choice(text=text, correct=correct, why=why.strip()))
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
            raise self.error(
                "field 'answer': a numeric question needs answer = a number or a list of numbers."
            )
        answer = self.number(raw["answer"], "answer")
        tolerances = {}
        for key, default in (("rtol", DEFAULT_RTOL), ("atol", DEFAULT_ATOL)):
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise self.error(f"field {key!r}: must be a number >= 0, not {value!r}.")
            tolerances[key] = float(value)
        mistakes = []
        for index, item in enumerate(raw.get("mistake", []), start=1):
            if not isinstance(item, dict) or "value" not in item or not isinstance(item.get("why"), str):
                raise self.error(f"field 'mistake' #{index}: needs value = ... and why = \"...\".")
            self.keys(item, _MISTAKE_KEYS, "a mistake")
            mistakes.append(
                Mistake(self.number(item["value"], f"value of mistake #{index}"), item["why"].strip())
            )
        return Question(
            **common,
            answer=answer,
            **tolerances,
            hint=self.text(raw, "hint", required=True),
            mistakes=tuple(mistakes),
            placeholder=self.text(raw, "placeholder"),
        )

    def number(self, value: Any, field: str) -> Any:
        try:
            return as_numbers(value)
        except ValueError as error:
            raise self.error(f"field {field!r}: {error}") from None


def as_numbers(value: Any) -> Any:
    """A finite number, or a rectangular nested list of them, as floats in nested tuples."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not np.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number.")
        return float(value)
    if isinstance(value, (list, tuple)) and value:
        items = tuple(as_numbers(item) for item in value)
        if len({np.shape(item) for item in items}) > 1:
            raise ValueError("the nested lists have different lengths; a tensor answer must be rectangular.")
        return items
    raise ValueError(f"expected a number or a list of numbers, not {value!r}.")
