"""``%quiz`` in a real IPython shell, side by side with the Python API it calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from _shell import WIDGET_MIME
from torchlesson._quiz import QuizError
from torchlesson._quiz_widget import drawn


def drawn_questions(run) -> list[str]:
    """The question ids of the one quiz a cell drew, from the widget the kernel registered."""
    (view,) = run.widgets
    (widget,) = [w for w in drawn() if w.model_id == view["model_id"]]
    return [q["id"] for q in widget.questions]


def test_bare_quiz_lists_the_bundled_quizzes(ipython) -> None:
    run = ipython.run("%quiz")
    assert run.error is None
    (bundle,) = run.outputs
    lines = bundle["text/plain"].splitlines()
    assert lines[0].startswith("autograd ")
    assert lines[1].startswith("tensors ")
    assert "questions" in lines[0]
    assert "%quiz NAME" in lines[-1]

    python = ipython.run("import torchlesson\ntorchlesson.list_quizzes()")
    assert python.outputs[-1]["text/plain"] == bundle["text/plain"]


@pytest.mark.parametrize(
    "cell",
    ["%quiz autograd", "import torchlesson\ntorchlesson.quiz('autograd')"],
    ids=["magic", "python"],
)
def test_a_quiz_is_drawn_as_a_widget_with_a_static_fallback(ipython, cell: str) -> None:
    run = ipython.run(cell)
    assert run.error is None
    (bundle,) = run.outputs
    assert set(bundle) >= {WIDGET_MIME, "text/html", "text/plain"}
    assert "Autograd" in bundle["text/plain"]
    assert len(drawn_questions(run)) >= 12


@pytest.mark.parametrize(
    ("magic", "python"),
    [
        ("%quiz tensors -q 2", "torchlesson.quiz('tensors', question=2)"),
        ("%quiz autograd --shuffle --seed 5", "torchlesson.quiz('autograd', shuffle=True, seed=5)"),
        (
            "%quiz autograd -q seed-gradient,detach",
            "torchlesson.quiz('autograd', question=['seed-gradient', 'detach'])",
        ),
        ("%quiz autograd -q 3,detach", "torchlesson.quiz('autograd', question=[3, 'detach'])"),
        ("%quiz autograd --skip 1,seed-gradient", "torchlesson.quiz('autograd', skip=[1, 'seed-gradient'])"),
        ("%quiz autograd --pick 4 --seed 9", "torchlesson.quiz('autograd', pick=4, seed=9)"),
        (
            "%quiz tensors --pick 3 --seed 2 --shuffle",
            "torchlesson.quiz('tensors', pick=3, seed=2, shuffle=True)",
        ),
    ],
)
def test_the_magic_and_the_function_draw_the_same_quiz(ipython, magic: str, python: str) -> None:
    by_magic = ipython.run(magic)
    by_python = ipython.run(f"import torchlesson\n{python}")
    assert by_magic.error is None
    assert drawn_questions(by_magic) == drawn_questions(by_python)


def test_q_draws_one_question(ipython) -> None:
    run = ipython.run("%quiz tensors -q 2")
    assert drawn_questions(run) == ["from-numpy-shares"]


@pytest.mark.parametrize(
    ("line", "fragments"),
    [
        ("%quiz autgrad", ["No quiz named 'autgrad'", "Did you mean 'autograd'?", "autograd, tensors"]),
        ("%quiz autograd -q 40", ["pick a question number from 1 to"]),
        ("%quiz autograd --seed 3", ["--shuffle"]),
        ("%quiz nowhere/quiz.toml", ["No quiz file at 'nowhere/quiz.toml'"]),
        ("%quiz autograd -q detatch", ["no question 'detatch'", "Did you mean 'detach'?"]),
        ("%quiz autograd --pick 0", ["--pick"]),
        ("%quiz autograd --pick 3 --seed x", ["--seed", "'x'"]),
        ("%quiz autograd --skip nothing", ["no question 'nothing'"]),
        # issue 10, item 14: an option without a quiz listed the quizzes and ignored the option
        ("%quiz -q 1", ["-q needs a quiz", "%quiz autograd -q 1"]),
        ("%quiz --skip detach", ["--skip needs a quiz"]),
        ("%quiz --pick 3 --seed 1", ["--pick, --seed needs a quiz"]),
        ("%quiz --shuffle", ["--shuffle needs a quiz"]),
        ("%quiz --save", ["--save needs a quiz"]),
    ],
)
def test_bad_input_is_a_usage_error_without_a_traceback(ipython, line: str, fragments: list[str]) -> None:
    run = ipython.run(line)
    assert isinstance(run.error, UsageError)
    for fragment in fragments:
        assert fragment in str(run.error)
    assert run.outputs == []  # nothing half-drawn
    assert "Traceback" not in run.stdout + run.stderr


BAD_FILE = """
title = "Mine"

[[question]]
id = "first"
prompt = "Which?"
explanation = "This one."

[[question.choice]]
text = "this"
why = "It is not marked right."

[[question.choice]]
text = "that"
why = "Neither is this."
"""


def test_a_bad_quiz_file_names_file_question_and_field(ipython, tmp_path: Path) -> None:
    path = tmp_path / "my quiz.toml"
    path.write_text(BAD_FILE, encoding="utf-8")
    ipython.user_ns["path"] = str(path)

    run = ipython.run('%quiz "{path}"')
    assert isinstance(run.error, UsageError)
    message = str(run.error)
    assert str(path) in message
    assert "question 'first'" in message
    assert "field 'choice'" in message
    assert "correct = true" in message
    assert run.outputs == []
    assert "Traceback" not in run.stdout + run.stderr

    python = ipython.run("import torchlesson\ntorchlesson.quiz(path)")
    assert isinstance(python.error, QuizError)
    assert str(python.error) == message


def test_a_teachers_own_file_is_drawn(ipython, tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(BAD_FILE.replace('text = "this"', 'text = "this"\ncorrect = true'), encoding="utf-8")
    run = ipython.run(f"%quiz {path}")
    assert run.error is None
    assert drawn_questions(run) == ["first"]


def test_save_shows_a_line_that_keeps_the_answers_under_the_quiz(ipython) -> None:
    run = ipython.run("%quiz tensors -q dtype-from-list --save")
    assert run.error is None
    widget, kept = run.outputs
    assert WIDGET_MIME in widget
    assert "Your answers are kept in this notebook when you save it (0 of 1 answered)" in kept["text/plain"]
    assert WIDGET_MIME not in kept
