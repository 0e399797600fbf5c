"""Choosing the questions a quiz asks: ``-q`` numbers, ids and lists, ``--skip``, ``--pick N`` and
``--shuffle``, reproducible with ``--seed`` (``question=``, ``skip=``, ``pick=``, ``shuffle=``,
``seed=`` in :func:`torchlesson.quiz`). Every option is checked: a wrong one is a one-line
:class:`QuizError` that says what to pass.
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ._quiz_model import Quiz, QuizError

QuestionRefs = int | str | Sequence[int | str] | None


def refs(value: QuestionRefs, option: str) -> list[int | str]:
    """Questions named by ``-q``/``--skip`` (``question=``/``skip=``): a number counting from 1, an
    id, or a list of them, also written ``"detach,3"``."""
    if value is None:
        return []
    if isinstance(value, str):
        items: Sequence[Any] = value.split(",")
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise QuizError(f"{option} takes a question number, an id or a list of them, not {value!r}.")
    found: list[int | str] = []
    for item in items:
        if isinstance(item, str) and item.strip():
            item = item.strip()
            found.append(int(item) if re.fullmatch(r"[0-9]+", item) else item)
        elif isinstance(item, int) and not isinstance(item, bool):
            found.append(item)
        else:
            raise QuizError(f"{option} takes question numbers and ids, like 3 or detach, not {item!r}.")
    return found


def _index(quiz: Quiz, ref: int | str, option: str) -> int:
    ids = [question.id for question in quiz.questions]
    if isinstance(ref, int):
        if not 1 <= ref <= len(ids):
            raise QuizError(
                f"{option}: {quiz.name!r} has {len(ids)} questions; "
                f"pick a question number from 1 to {len(ids)}, not {ref}."
            )
        return ref - 1
    if ref not in ids:
        close = difflib.get_close_matches(ref, ids, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise QuizError(f"{option}: {quiz.name!r} has no question {ref!r}.{guess} Its ids: {', '.join(ids)}.")
    return ids.index(ref)


def _whole_number(value: Any, option: str, *, least: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise QuizError(f"{option} takes a whole number{' from 1 on' if least else ''}, not {value!r}.")
    return value


def select(
    quiz: Quiz,
    *,
    question: QuestionRefs = None,
    skip: QuestionRefs = None,
    pick: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
) -> Quiz:
    """The questions to ask, in order: ``question`` (numbers from 1 or ids, in the order given; all
    by default) less ``skip``, then ``pick`` of them at random (file order kept), then ``shuffle``d
    with their choices. ``seed`` makes ``pick`` and ``shuffle`` reproducible."""
    pick = _whole_number(pick, "--pick (pick=)", least=1)
    seed = _whole_number(seed, "--seed (seed=)", least=0)
    if not isinstance(shuffle, bool):
        raise QuizError(f"shuffle takes True or False, not {shuffle!r}.")
    if seed is not None and not shuffle and pick is None:
        raise QuizError(
            "A seed only matters when picking or shuffling: add --pick N or --shuffle "
            "(pick=N or shuffle=True in Python)."
        )
    chosen = [_index(quiz, ref, "-q (question=)") for ref in refs(question, "-q (question=)")]
    chosen = chosen or list(range(len(quiz.questions)))
    twice = next((i for n, i in enumerate(chosen) if i in chosen[:n]), None)
    if twice is not None:
        raise QuizError(f"-q names question {quiz.questions[twice].id!r} twice; name each question once.")
    left_out = {_index(quiz, ref, "--skip (skip=)") for ref in refs(skip, "--skip (skip=)")}
    chosen = [i for i in chosen if i not in left_out]
    if not chosen:
        raise QuizError("--skip leaves no question to ask; skip fewer.")
    rng = random.Random(seed)
    if pick is not None:
        if pick > len(chosen):
            raise QuizError(f"--pick {pick}: only {len(chosen)} questions are left to pick from.")
        kept = set(rng.sample(range(len(chosen)), pick))
        chosen = [i for n, i in enumerate(chosen) if n in kept]
    questions = tuple(quiz.questions[i] for i in chosen)
    if shuffle:
        questions = tuple(rng.sample(questions, len(questions)))
        questions = tuple(replace(q, choices=tuple(rng.sample(q.choices, len(q.choices)))) for q in questions)
    return replace(quiz, questions=questions)
