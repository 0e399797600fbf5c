"""``python -m torchlesson``: ``check`` for quiz authors, ``results`` for teachers collecting notebooks."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from torchlesson._cli import main
from torchlesson._quiz import load

ROOT = Path(__file__).resolve().parents[1]

QUIZ = '''
title = "Authoring"

[[question]]
id = "grad"
type = "numeric"
prompt = "What is `x.grad`?"
code = """
x = torch.tensor([1.0, 2.0], requires_grad=True)
(x * x).sum().backward()
"""
answer = [2.0, 4.0]
check = "x.grad"
explanation = "d(x²)/dx = 2x."
hint = "Differentiate x * x."

[[question]]
id = "twice"
prompt = "What happens?"
code = """
x = torch.tensor(1.0, requires_grad=True)
y = x.exp()
y.backward()
y.backward()
"""
raises = "RuntimeError"
explanation = "The first backward freed what exp saved."

[[question.choice]]
text = "An error"
correct = true

[[question.choice]]
text = "Nothing"
why = "The saved output is gone."
'''


def check(text: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    status = main(["check", str(path), *extra], out=out)
    return status, out.getvalue()


def line_of(output: str, question: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:2] == [question])


@pytest.mark.parametrize("name", ["autograd", "tensors"])
def test_the_bundled_quizzes_pass_the_authors_check(name: str) -> None:
    """Issue 14: `python -m torchlesson check` runs each question's code and checks every numeric
    answer against what the code computes; the bundled banks pass it, warnings included."""
    run = subprocess.run(
        [sys.executable, "-m", "torchlesson", "check", name, "--strict"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    quiz = load(name)
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{quiz.source}: {quiz.title!r}, {len(quiz.questions)} questions")
    for question in quiz.questions:
        assert line_of(run.stdout, question.id).split()[0] == "ok"
        if question.kind == "numeric":  # the value the code computes is printed next to the id
            assert f"{question.check} = " in line_of(run.stdout, question.id)
    assert lines[-1].strip() == f"{len(quiz.questions)} ok, 0 warnings, 0 failed"
    assert run.stderr == ""


def test_a_good_quiz_passes_and_says_what_it_checked(tmp_path: Path) -> None:
    status, output = check(QUIZ, tmp_path)
    assert status == 0, output
    assert "x.grad = [2, 4], the answer" in line_of(output, "grad")
    assert "code raises RuntimeError, as raises says" in line_of(output, "twice")


@pytest.mark.parametrize(
    ("change", "question", "fragment"),
    [
        (("answer = [2.0, 4.0]", "answer = [2.0, 5.0]"), "grad", "x.grad = [2, 4], but answer = [2, 5]"),
        (('check = "x.grad"', 'check = "x.grad * 2"'), "grad", "x.grad * 2 = [4, 8], but answer = [2, 4]"),
        (('check = "x.grad"', 'check = "y.grad"'), "grad", "check = 'y.grad' raised NameError"),
        (("(x * x).sum()", "(x * z).sum()"), "grad", "code raised NameError (line 2): name 'z' is not defined"),
        (("y.backward()\ny.backward()", "y.backward()"), "twice", "code ran without raising RuntimeError"),
        (('raises = "RuntimeError"', 'raises = "ValueError"'), "twice", "code raised RuntimeError (line 4)"),
        (('hint = "Differentiate x * x."', 'hint = "Differentiate x * x."\n\n[[question.mistake]]\nvalue = [2.0, 4.0001]\nwhy = "no"'), "", "matches the answer"),
    ],
)  # fmt: skip
def test_a_wrong_answer_or_code_fails_the_check(
    change: tuple[str, str], question: str, fragment: str, tmp_path: Path
) -> None:
    status, output = check(QUIZ.replace(*change), tmp_path)
    assert status == 1
    if question:
        line = line_of(output, question)
        assert line.split()[0] == "FAIL" and fragment in line, output
        assert output.splitlines()[-1].strip().endswith("1 failed")
    else:  # refused before any code runs: the same one line as %quiz
        assert output.count("\n") == 1 and fragment in output and output.startswith("Quiz file")
    assert "Traceback" not in output


def test_a_numeric_answer_without_check_and_guessable_choices_are_warnings(tmp_path: Path) -> None:
    singles = "".join(
        f'\n[[question]]\nid = "s{n}"\nprompt = "p"\nexplanation = "e"\n'
        f'[[question.choice]]\ntext = "the right one, and much longer"\ncorrect = true\n'
        f'[[question.choice]]\ntext = "short"\nwhy = "w"\n'
        for n in range(3)
    )
    status, output = check(QUIZ.replace('check = "x.grad"\n', "") + singles, tmp_path)
    assert status == 0
    assert line_of(output, "grad").startswith("  warn") and 'add check = "..."' in output
    assert "the right choice is the longest in 4 of 4 single-choice questions" in output
    assert "the right choice is always choice 1" in output
    assert check(QUIZ.replace('check = "x.grad"\n', ""), tmp_path, "--strict")[0] == 1


def test_results_collects_the_answers_saved_in_notebooks(tmp_path: Path) -> None:
    """Issue 14: answers saved in notebooks (--save) can be collected by a teacher; tries are graded
    anew, so a verdict edited in the file does not count."""
    quiz = load("tensors")
    dtype = quiz.questions[0]
    wrong = next(c.text for c in dtype.choices if not c.correct)
    right = next(c.text for c in dtype.choices if c.correct)
    record = {
        "version": 1, "quiz": "tensors", "source": quiz.source, "title": quiz.title,
        "questions": [dtype.id, "view-index"], "shown_at": "2025-03-01T09:00:00+00:00",
        "answers": {
            dtype.id: [
                {"answer": [wrong], "correct": True, "time": "2025-03-01T09:01:00+00:00"},  # edited by hand
                {"answer": [right], "correct": True, "time": "2025-03-01T09:02:00+00:00"},
            ],
        },
    }  # fmt: skip
    notebooks = []
    for learner in ("ada", "ben"):
        output = nbformat.v4.new_output(
            "display_data", data={"text/plain": "kept"}, metadata={"torchlesson": {"quiz_answers": record}}
        )
        cell = nbformat.v4.new_code_cell(
            "%quiz tensors -q dtype-from-list,view-index --save", outputs=[output]
        )
        path = tmp_path / f"{learner}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
        notebooks.append(str(path))
    (tmp_path / "empty.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()), encoding="utf-8")

    out = io.StringIO()
    assert (
        main(
            ["results", *notebooks, str(tmp_path / "empty.ipynb"), "-o", str(tmp_path / "class.csv")], out=out
        )
        == 0
    )
    assert out.getvalue().splitlines()[:2] == [f"{path}  tensors  1 of 2 correct" for path in notebooks]
    with (tmp_path / "class.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [
        (r["notebook"], r["question"], r["attempts"], r["first_try_correct"], r["solved"]) for r in rows
    ] == [
        (path, question, attempts, "False", solved)
        for path in notebooks
        for question, attempts, solved in ((dtype.id, "2", "True"), ("view-index", "0", "False"))
    ]
    assert rows[0]["first_attempt_at"] == "2025-03-01T09:01:00+00:00"
    assert rows[0]["solved_at"] == "2025-03-01T09:02:00+00:00"

    assert main(["results", str(tmp_path / "nobody.ipynb")], out=io.StringIO()) == 1
    saved_json = tmp_path / "class.json"
    main(["results", notebooks[0], "-o", str(saved_json)], out=io.StringIO())
    assert json.loads(saved_json.read_text(encoding="utf-8"))[0]["notebook"] == notebooks[0]
