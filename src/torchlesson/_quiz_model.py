"""What a quiz is: the frozen data model every other quiz module builds on, and ``QuizError``.

``_quiz_schema.py`` builds these objects from a quiz file's text, ``_quiz_bank.py`` finds the files,
``_quiz.py`` grades answers against them. Nothing here reads files or imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

KINDS = ("single", "multiple", "numeric")
DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-6
DEFAULT_REVEAL_AFTER = 2


class QuizError(Exception):
    """A quiz that cannot be drawn: unknown name, unreadable or malformed file, bad options.

    The message is one line that says what to fix; ``%quiz`` shows it without a traceback.
    """


def brief(value: Any) -> str:
    """A value for a one-line message: its repr, cut short."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 60 else f"{text[:57]}..."


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
    # feedback for a wrong answer that no choice's `why` (or listed mistake) explains better;
    # required on numeric questions, optional on choice questions
    hint: str = ""
    mistakes: tuple[Mistake, ...] = ()
    placeholder: str = ""
    # for authors (`python -m torchlesson check`), never sent to the browser: the expression whose
    # value, after `code` ran, is the numeric answer; the exception `code` raises on purpose
    check: str = ""
    raises: str = ""


@dataclass(frozen=True)
class Quiz:
    name: str
    title: str
    questions: tuple[Question, ...]
    source: str  # how messages name the file: a path as given, or "autograd.toml (bundled)"
    description: str = ""
    reveal_after: int | None = DEFAULT_REVEAL_AFTER  # wrong tries before the answer shows; None: never
    lock_when_correct: bool = True
