"""One learner's answers to one drawn quiz, and the results a teacher keeps.

:class:`AnswerSheet` is the quiz widget's memory, without any widget: it reads an answer as the
browser (or Python) sends it, grades it with :func:`torchlesson._quiz.grade`, records the try with
its time, and builds the feedback the learner sees (see NOTE [the key stays in the kernel] in
``_quiz_widget.py``). :func:`export_quiz_results` writes results as JSON or CSV.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._quiz import Question, Quiz, QuizError, answer_text, explain_picks, grade
from ._quiz_model import brief

__all__ = ["CSV_COLUMNS", "AnswerSheet", "export_quiz_results", "now"]

_CHOICE_ID = re.compile(r"c(0|[1-9][0-9]{0,3})")  # exactly as _public() writes them
CSV_COLUMNS = (
    "quiz", "title", "question", "attempts", "first_try_correct", "solved",
    "first_attempt_at", "solved_at", "shown_at", "answers",
)  # fmt: skip


def now() -> str:
    """The time of an answer, as ISO 8601 in UTC to the second: ``2025-03-01T09:30:12+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class AnswerSheet:
    """The tries, verdicts and score of one learner on one drawn quiz."""

    def __init__(self, quiz: Quiz) -> None:
        self.quiz = quiz
        self.questions = {question.id: question for question in quiz.questions}
        self.attempts: dict[str, list[dict[str, Any]]] = {question.id: [] for question in quiz.questions}
        self.feedback: dict[str, dict[str, Any]] = {}  # question id -> verdict on the last answer
        self.shown_at: str | None = None
        self._checks = itertools.count(1)

    def question(self, question_id: Any) -> Question:
        question = self.questions.get(question_id) if isinstance(question_id, str) else None
        if question is None:
            known = ", ".join(self.questions)
            raise QuizError(f"This quiz has no question {brief(question_id)}; it has {known}.")
        return question

    def answer(self, question_id: Any, answer: Any, *, time: str | None = None) -> dict[str, Any]:
        """Grade an answer and return the feedback the learner sees (a QuizError if it is malformed).

        ``answer`` is the id (or list of ids) of the picked choices, or the text of a numeric answer.
        """
        question = self.question(question_id)
        shown = self.feedback.get(question.id)
        if shown is not None and shown["locked"]:
            return shown
        picked, indices = _read(question, answer)
        verdict = grade(question, picked if indices is None else indices)
        attempts = self.attempts[question.id]
        if verdict.readable:
            recorded = picked if indices is None else [question.choices[i].text for i in verdict.picked]
            attempts.append({"answer": recorded, "correct": verdict.correct, "time": time or now()})
        tries = len(attempts)
        reveal_after = self.quiz.reveal_after
        revealed = not verdict.correct and reveal_after is not None and tries >= reveal_after
        notes = explain_picks(question, verdict.picked) if revealed and indices is not None else verdict.notes
        entry: dict[str, Any] = {
            "status": "correct" if verdict.correct else ("wrong" if verdict.readable else "unreadable"),
            "notes": [list(note) for note in notes],
            "check": next(self._checks),  # a new value even for a repeated answer, so views update
            "picked": picked,
            "tries": tries,
            "solved": self.solved(question.id),
            "locked": verdict.correct and self.quiz.lock_when_correct,
        }
        if verdict.correct or revealed:
            entry["explanation"] = question.explanation
        if revealed:
            entry["answer"] = answer_text(question)
            entry["answer_ids"] = [f"c{i}" for i, choice in enumerate(question.choices) if choice.correct]
        self.feedback[question.id] = entry
        return entry

    def replay(self, saved: dict[str, list[dict[str, Any]]]) -> int:
        """Answer again, in order, the tries a saved sheet recorded (``{question id: [{answer, time}]}``);
        each is graded anew. Returns how many tries were taken over."""
        taken = 0
        for question in self.quiz.questions:
            for attempt in saved.get(question.id, []) if isinstance(saved, dict) else []:
                if not isinstance(attempt, dict):
                    continue
                given = attempt.get("answer")
                if question.kind != "numeric":  # saved as choice texts: find their ids in this order
                    texts = [c.text for c in question.choices]
                    if not isinstance(given, list) or not all(text in texts for text in given):
                        continue  # the quiz changed since: that try no longer fits
                    given = [f"c{texts.index(text)}" for text in given]
                time = attempt.get("time") if isinstance(attempt.get("time"), str) else None
                try:
                    self.answer(question.id, given, time=time)
                except QuizError:
                    continue
                taken += 1
        return taken

    def solved(self, question_id: str) -> bool:
        return any(attempt["correct"] for attempt in self.attempts[question_id])

    @property
    def score(self) -> tuple[int, int]:
        """(questions answered correctly, questions shown)."""
        return sum(map(self.solved, self.attempts)), len(self.attempts)

    @property
    def results(self) -> dict[str, Any]:
        """The learner's answers and score, as plain data for a teacher collecting results."""
        questions = []
        for question in self.quiz.questions:
            attempts = self.attempts[question.id]
            questions.append({
                "id": question.id,
                "prompt": question.prompt,
                "solved": self.solved(question.id),
                "tries": len(attempts),
                "first_try": bool(attempts) and attempts[0]["correct"],
                "answers": [dict(attempt) for attempt in attempts],
            })  # fmt: skip
        score, total = self.score
        return {
            "quiz": self.quiz.name,
            "title": self.quiz.title,
            "shown_at": self.shown_at,
            "score": score,
            "total": total,
            "questions": questions,
        }


def _read(question: Question, answer: Any) -> tuple[Any, list[int] | None]:
    """The answer as recorded (text, or choice ids) and, for choice questions, the choice indices.

    Anything the browser could send is either read or refused with a QuizError, never another error.
    """
    if question.kind == "numeric":
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise QuizError(f"Question {question.id!r} takes a typed answer (text), not {_kind(answer)}.")
        return str(answer), None
    ids = [answer] if isinstance(answer, str) else answer
    if not isinstance(ids, list) or not all(isinstance(choice_id, str) for choice_id in ids):
        raise QuizError(f"Question {question.id!r} takes choice ids such as ['c0'], not {_kind(answer)}.")
    indices = []
    for choice_id in ids:
        found = _CHOICE_ID.fullmatch(choice_id)
        if found is None or int(found[1]) >= len(question.choices):
            raise QuizError(
                f"Unknown choice id {brief(choice_id)}; the choices are c0..c{len(question.choices) - 1}."
            )
        indices.append(int(found[1]))
    return list(ids), indices


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------- export


def csv_rows(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per question of every quiz in ``results`` (as :func:`torchlesson.quiz_results` gives)."""
    rows = []
    for entry in results:
        for question in entry["questions"]:
            answers = question["answers"]
            solved_at = next((a.get("time") for a in answers if a["correct"]), None)
            rows.append({
                **{key: entry.get(key) for key in ("notebook",) if key in entry},
                "quiz": entry["quiz"],
                "title": entry["title"],
                "question": question["id"],
                "attempts": question["tries"],
                "first_try_correct": question["first_try"],
                "solved": question["solved"],
                "first_attempt_at": answers[0].get("time") if answers else None,
                "solved_at": solved_at,
                "shown_at": entry.get("shown_at"),
                "answers": json.dumps([a["answer"] for a in answers], ensure_ascii=False),
            })  # fmt: skip
    return rows


def export_quiz_results(path: str | Path, results: list[dict[str, Any]] | None = None) -> Path:
    """Write quiz results to ``path``: ``.json`` (everything) or ``.csv`` (one row per question:
    quiz, question id, attempts, first-try correct, solved, times). Returns the path written.

    ``results`` defaults to :func:`torchlesson.quiz_results`, every quiz shown in this kernel.

    Examples
    --------
    >>> import torchlesson
    >>> torchlesson.export_quiz_results("my_results.csv")  # doctest: +SKIP
    PosixPath('my_results.csv')
    """
    if results is None:
        from ._quiz import quiz_results

        results = quiz_results()
    target = Path(path)
    kind = target.suffix.lower()
    if kind not in (".json", ".csv"):
        raise QuizError(f"Export to a .json or a .csv file, not {str(path)!r}.")
    if kind == ".json":
        target.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return target
    rows = csv_rows(results)
    columns = (["notebook"] if any("notebook" in row for row in rows) else []) + list(CSV_COLUMNS)
    with target.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return target
