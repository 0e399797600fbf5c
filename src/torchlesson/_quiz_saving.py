"""Keeping a learner's answers in the notebook file, and collecting them from notebooks.

Opt-in, with ``%quiz NAME --save`` or ``torchlesson.quiz(NAME, save=True)``.

NOTE [answers saved in the notebook]
A kernel cannot write the notebook file: the front-end owns it and would overwrite any change on its
next save. What the front-end does save is every output, with its metadata. So a saving quiz shows,
under the widget, a one-line output ("Your answers are kept in this notebook...") whose metadata
holds the learner's tries (``torchlesson.quiz_answers``), and updates that output (by its display id)
after every answer. Saving the notebook saves the answers, in JupyterLab, Notebook 7, VS Code and
Colab alike, and a teacher collects them from the ``.ipynb`` files (``python -m torchlesson results``).
The record holds the learner's own answers, verdicts and times, never the key: nothing in it is new to
the page. When the kernel can find the notebook file (JupyterLab and Notebook 7 tell it the path in
``JPY_SESSION_NAME``, VS Code in ``__vsc_ipynb_file__``), a quiz drawn again, after a kernel restart
too, takes over the tries saved for the same quiz in the same cell and grades them anew.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._quiz import QuizError, load, lock_value, reveal_after_value, select
from ._quiz_sheet import AnswerSheet

RECORD_KEY = "quiz_answers"  # under the output metadata's "torchlesson" key
RECORD_VERSION = 1

# Per kernel: the latest record of each (notebook, cell) drawn with save=True, newer than the file
# until the notebook is saved; and the saved records already taken over, so that two cells drawing
# the same quiz each get their own.
_LIVE: dict[tuple[str, str], dict[str, Any]] = {}
_TAKEN: set[tuple[str, int, int]] = set()


def record(sheet: AnswerSheet) -> dict[str, Any]:
    """What a saving quiz keeps in the notebook: the learner's tries, never the key."""
    quiz = sheet.quiz
    return {
        "version": RECORD_VERSION,
        "quiz": quiz.name,
        "source": quiz.source,
        "title": quiz.title,
        "questions": [question.id for question in quiz.questions],
        "reveal_after": quiz.reveal_after,
        "lock_when_correct": quiz.lock_when_correct,
        "shown_at": sheet.shown_at,
        "answers": {qid: [dict(a) for a in attempts] for qid, attempts in sheet.attempts.items() if attempts},
    }


def saved_output(sheet: AnswerSheet, taken_over: int) -> tuple[dict[str, str], dict[str, Any]]:
    """The one-line output under a saving quiz: its text, and the record in its metadata."""
    answered = sum(1 for attempts in sheet.attempts.values() if attempts)
    total = len(sheet.attempts)
    text = f"Your answers are kept in this notebook when you save it ({answered} of {total} answered"
    tries = "try" if taken_over == 1 else "tries"
    text += f"; {taken_over} earlier {tries} taken over)." if taken_over else ")."
    return {"text/plain": text, "text/markdown": f"*{text}*"}, {"torchlesson": {RECORD_KEY: record(sheet)}}


class Place:
    """Where a saving quiz sits: the notebook file and the cell, as far as the kernel can tell."""

    def __init__(self, shell: Any) -> None:
        self.notebook = _notebook_path(shell)
        self.cell_id = _cell_id(shell)

    @property
    def key(self) -> tuple[str, str] | None:
        return (str(self.notebook), self.cell_id) if self.notebook and self.cell_id else None

    def remember(self, sheet: AnswerSheet) -> None:
        if self.key is not None:
            _LIVE[self.key] = record(sheet)

    def saved_tries(self, sheet: AnswerSheet) -> dict[str, list[dict[str, Any]]]:
        """The tries saved for this quiz in this cell (or, without a cell id, the first unclaimed
        record of the same quiz): this kernel's latest, else the notebook file's."""
        wanted = {question.id for question in sheet.quiz.questions}
        fits = lambda saved: (  # noqa: E731
            isinstance(saved, dict) and saved.get("quiz") == sheet.quiz.name
            and isinstance(saved.get("questions"), list) and set(map(str, saved["questions"])) == wanted
        )  # fmt: skip
        live = _LIVE.get(self.key) if self.key else None
        if live is not None and fits(live):
            return live["answers"]
        if self.notebook is None:
            return {}
        found = [(where, cell, saved) for where, cell, saved in _records(self.notebook) if fits(saved)]
        mine = [item for item in found if self.cell_id and item[1] == self.cell_id]
        free = [item for item in found if (str(self.notebook), *item[0]) not in _TAKEN]
        for where, _cell, saved in mine or free[:1]:
            _TAKEN.add((str(self.notebook), *where))
            return saved.get("answers") if isinstance(saved.get("answers"), dict) else {}
        return {}


def _notebook_path(shell: Any) -> Path | None:
    vscode = getattr(shell, "user_ns", {}).get("__vsc_ipynb_file__")
    for candidate in (vscode, os.environ.get("JPY_SESSION_NAME")):
        if isinstance(candidate, str) and candidate.endswith(".ipynb") and os.path.isfile(candidate):
            return Path(candidate)
    return None


def _cell_id(shell: Any) -> str | None:
    """The id of the cell being run: JupyterLab and Notebook 7 send it with the request."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else {}
    except Exception:  # an older or foreign kernel: no cell ids, then
        return None
    cell_id = (parent or {}).get("metadata", {}).get("cellId")
    return cell_id if isinstance(cell_id, str) else None


def _records(path: Path) -> list[tuple[tuple[int, int], str | None, dict[str, Any]]]:
    """((cell index, output index), cell id, record) of every saved quiz record in a notebook file."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable or half-written: nothing to take over
        return []
    found = []
    cells = notebook.get("cells", []) if isinstance(notebook, dict) else []
    for index, cell in enumerate(cells if isinstance(cells, list) else []):
        if not isinstance(cell, dict):
            continue
        outputs = cell.get("outputs")
        for number, output in enumerate(outputs if isinstance(outputs, list) else []):
            saved = _table(_table(_table(output).get("metadata")).get("torchlesson")).get(RECORD_KEY)
            if isinstance(saved, dict):
                found.append(((index, number), cell.get("id"), saved))
    return found


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------------------------------- collecting


def collect_quiz_results(notebooks: list[str | Path]) -> list[dict[str, Any]]:
    """The answers saved in notebooks (by quizzes drawn with ``save=True``), as
    :func:`torchlesson.quiz_results` entries plus a ``notebook`` field.

    Tries are graded anew where the quiz can be loaded (a bundled or registered name, or the file it
    came from); otherwise the saved verdicts are reported as they are. Write them to a file with
    :func:`torchlesson.export_quiz_results`, or use ``python -m torchlesson results``.

    Examples
    --------
    >>> import torchlesson
    >>> results = torchlesson.collect_quiz_results(["alice.ipynb", "bob.ipynb"])  # doctest: +SKIP
    >>> torchlesson.export_quiz_results("class.csv", results)  # doctest: +SKIP
    """
    results = []
    for notebook in map(Path, notebooks):
        if not notebook.is_file():
            raise QuizError(f"No notebook at {str(notebook)!r}.")
        for _where, _cell, saved in _records(notebook):
            entry = _regraded(saved, notebook) or _as_saved(saved)
            results.append({"notebook": str(notebook), **entry})
    return results


def _regraded(saved: dict[str, Any], notebook: Path) -> dict[str, Any] | None:
    source = saved.get("source") if isinstance(saved.get("source"), str) else ""
    files = [source, notebook.parent / source] if source.endswith(".toml") else []
    candidates = [saved.get("quiz"), *files]
    for candidate in candidates:
        try:
            quiz = select(load(candidate), question=list(saved.get("questions", [])))
        except (QuizError, TypeError):
            continue
        settings = {}
        for key, rule in (("reveal_after", reveal_after_value), ("lock_when_correct", lock_value)):
            if key in saved:
                with contextlib.suppress(ValueError):  # a tampered setting: the quiz's own stays
                    settings[key] = rule("never" if saved[key] is None else saved[key])
        sheet = AnswerSheet(replace(quiz, **settings))
        sheet.shown_at = saved.get("shown_at")
        sheet.replay(saved.get("answers") or {})
        return sheet.results
    return None


def _as_saved(saved: dict[str, Any]) -> dict[str, Any]:
    answers = saved.get("answers") if isinstance(saved.get("answers"), dict) else {}
    questions = []
    for qid in saved.get("questions") or []:
        tries = [a for a in answers.get(qid, []) if isinstance(a, dict)]
        questions.append({
            "id": qid, "prompt": "", "solved": any(a.get("correct") is True for a in tries),
            "tries": len(tries), "first_try": bool(tries) and tries[0].get("correct") is True,
            "answers": tries,
        })  # fmt: skip
    return {
        "quiz": saved.get("quiz"),
        "title": saved.get("title"),
        "shown_at": saved.get("shown_at"),
        "score": sum(q["solved"] for q in questions),
        "total": len(questions),
        "questions": questions,
    }
