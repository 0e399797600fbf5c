"""The quiz widget (``torchlesson._quiz_widget``): the key stays in the kernel, feedback is for the
answer given, results add up, and outside a live kernel the questions still show, without answers."""

from __future__ import annotations

import csv
import html
import itertools
import json
import re
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import nbformat
import pytest

import torchlesson
from torchlesson._quiz import Question, answer_text, load
from torchlesson._quiz_widget import highlight

BUNDLED = ("autograd", "tensors")


def synced(widget) -> str:
    """Everything the browser receives about the widget, as one string."""
    return json.dumps(widget.get_state(), default=str)


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in keys_of(item)}
    if isinstance(value, list):
        return {k for item in value for k in keys_of(item)}
    return set()


def secrets(question: Question) -> list[str]:
    """Texts the browser must not see before the learner answers this question."""
    found = [question.explanation, *(choice.why for choice in question.choices if choice.why)]
    found += [mistake.why for mistake in question.mistakes]
    if question.kind == "numeric":
        found.append(question.hint)
        if len(answer_text(question)) > 6:  # "[10, 14, 18]" must not appear; a bare "3" would, by chance
            found.append(answer_text(question))
    return found


def key_of(widget, question_id: str) -> Question:
    return next(q for q in widget._quiz.questions if q.id == question_id)


def ids_where(widget, question_id: str, correct: bool) -> list[str]:
    """The browser's ids of the right (or wrong) choices, found by text as a learner would."""
    question = key_of(widget, question_id)
    right = {c.text for c in question.choices if c.correct}
    shown = next(q for q in widget.questions if q["id"] == question_id)
    return [c["id"] for c in shown["choices"] if (c["text"] in right) == correct]


def first_of(widget, kind: str) -> str:
    return next(q["id"] for q in widget.questions if q["type"] == kind)


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("shuffle", [False, True])
def test_the_key_is_not_in_the_synced_state_before_answering(name: str, shuffle: bool) -> None:
    widget = torchlesson.quiz(name, shuffle=shuffle, seed=1 if shuffle else None)
    state = synced(widget)
    for question in load(name).questions:
        assert json.dumps(question.prompt)[1:-1] in state
        for secret in secrets(question):
            assert json.dumps(secret)[1:-1] not in state, (question.id, secret)
    assert not keys_of(widget.get_state()) & {"correct", "why", "explanation", "answer", "answer_ids", "hint"}
    # and nothing else could carry it: the only fields are what the learner reads anyway
    for shown in widget.questions:
        extra = {"choices"} if shown["type"] != "numeric" else {"placeholder"}
        assert set(shown) == {"id", "number", "type", "prompt", "code"} | extra
        assert all(set(choice) == {"id", "text"} for choice in shown.get("choices", []))
        if shown["type"] == "numeric":
            assert answer_text(key_of(widget, shown["id"])) not in shown["placeholder"]
    assert widget.feedback == {}


def test_a_wrong_answer_gets_the_explanation_of_that_choice_only() -> None:
    widget = torchlesson.quiz("autograd")  # reveal_after = 2
    qid = first_of(widget, "single")
    question = key_of(widget, qid)
    wrong_ids = ids_where(widget, qid, correct=False)
    picked = question.choices[int(wrong_ids[0][1:])]

    entry = widget.check(qid, wrong_ids[0])
    assert entry["status"] == "wrong"
    assert entry["notes"] == [[picked.text, picked.why]]
    state = synced(widget)
    assert json.dumps(picked.why)[1:-1] in state
    for secret in secrets(question):
        if secret != picked.why:
            assert json.dumps(secret)[1:-1] not in state
    assert "answer" not in entry
    assert "answer_ids" not in entry


def test_the_answer_is_revealed_after_the_quizs_number_of_tries() -> None:
    widget = torchlesson.quiz("autograd")
    qid = first_of(widget, "single")
    wrong = ids_where(widget, qid, correct=False)
    widget.check(qid, wrong[0])
    second = widget.check(qid, wrong[1])
    assert second["tries"] == 2
    assert second["answer_ids"] == ids_where(widget, qid, correct=True)
    assert second["explanation"] == key_of(widget, qid).explanation
    assert second["answer"] == next(c.text for c in key_of(widget, qid).choices if c.correct)


@pytest.mark.parametrize(("reveal_after", "tries_before_reveal"), [(1, 0), (3, 2), ("never", 6)])
def test_a_teacher_chooses_when_the_answer_is_revealed(reveal_after: Any, tries_before_reveal: int) -> None:
    widget = torchlesson.quiz("autograd", reveal_after=reveal_after)
    qid = first_of(widget, "numeric")
    for _ in range(tries_before_reveal):
        assert "answer" not in widget.check(qid, "[0, 0, 0]")
    assert key_of(widget, qid).explanation not in synced(widget)
    if reveal_after != "never":
        revealed = widget.check(qid, "[0, 0, 0]")
        assert revealed["answer"] == answer_text(key_of(widget, qid))
        assert revealed["status"] == "wrong"


@pytest.mark.parametrize("reveal_after", [0, True, 2.5, "later"])
def test_a_reveal_after_that_a_quiz_file_would_refuse_is_refused_here_too(reveal_after: Any) -> None:
    from torchlesson._quiz_bank import QuizError, parse

    with pytest.raises(QuizError, match="reveal_after"):
        torchlesson.quiz("autograd", reveal_after=reveal_after)
    file_value = {True: "true", "later": '"later"'}.get(reveal_after, str(reveal_after))
    bank = (resources.files("torchlesson") / "quizzes" / "tensors.toml").read_text(encoding="utf-8")
    with pytest.raises(QuizError, match="reveal_after"):
        parse(bank.replace("reveal_after = 2", f"reveal_after = {file_value}"), name="t", source="t.toml")


def test_an_answer_locks_once_correct_unless_the_quiz_says_otherwise() -> None:
    locked = torchlesson.quiz("tensors")
    qid = first_of(locked, "single")
    right, wrong = ids_where(locked, qid, True)[0], ids_where(locked, qid, False)[0]
    assert locked.check(qid, right)["locked"]
    assert locked.check(qid, wrong)["status"] == "correct"  # ignored: the question is locked
    assert locked.results["questions"][0]["tries"] == 1

    free = torchlesson.quiz("tensors", lock_when_correct=False)
    assert not free.check(qid, right)["locked"]
    again = free.check(qid, wrong)
    assert again["status"] == "wrong"
    assert again["solved"]  # it was answered correctly once; the score keeps it
    assert free.score == (1, len(free.questions))


def test_an_unreadable_number_is_not_counted_as_a_try() -> None:
    widget = torchlesson.quiz("autograd", question=5)
    qid = widget.questions[0]["id"]
    entry = widget.check(qid, "ten, fourteen, eighteen")
    assert entry["status"] == "unreadable"
    assert entry["tries"] == 0
    assert widget.check(qid, "[10, 14, 18]")["status"] == "correct"
    assert widget.results["questions"][0]["first_try"]


def test_the_browser_message_is_graded_in_the_kernel() -> None:
    widget = torchlesson.quiz("autograd")
    qid = first_of(widget, "multiple")
    right = ids_where(widget, qid, True)
    # exactly what static/quiz.js sends with model.send(...)
    widget._handle_custom_msg({"type": "check", "question": qid, "answer": right}, [])
    assert widget.feedback[qid]["status"] == "correct"
    assert widget.feedback[qid]["picked"] == right
    # a stale or tampered message changes nothing and raises nothing in the kernel
    before = dict(widget.feedback)
    widget._handle_custom_msg({"type": "check", "question": "no-such-question", "answer": ["c0"]}, [])
    widget._handle_custom_msg({"type": "check", "question": qid, "answer": ["c99"]}, [])
    widget._handle_custom_msg({"type": "check", "question": qid, "answer": [7, None]}, [])
    widget._handle_custom_msg({"type": "something else"}, [])
    assert widget.feedback == before


def test_every_check_gives_a_new_feedback_value_so_views_update() -> None:
    widget = torchlesson.quiz("autograd", question=5)
    qid = widget.questions[0]["id"]
    changes = []
    widget.observe(lambda change: changes.append(change), names="feedback")
    widget.check(qid, "abc")
    widget.check(qid, "abc")  # the same unreadable answer twice: the learner still needs an answer
    assert len(changes) == 2


def test_results_give_answers_and_score_for_a_teacher() -> None:
    widget = torchlesson.quiz("tensors", shuffle=True, seed=3)
    qid = first_of(widget, "single")
    wrong, right = ids_where(widget, qid, False)[0], ids_where(widget, qid, True)[0]
    widget.check(qid, wrong)
    widget.check(qid, right)
    results = widget.results
    assert results["quiz"] == "tensors"
    assert (results["score"], results["total"]) == (1, len(widget.questions))
    answered = next(q for q in results["questions"] if q["id"] == qid)
    shown = {
        c["id"]: c["text"]
        for c in widget.questions[[q["id"] for q in widget.questions].index(qid)]["choices"]
    }
    # each try now carries its time as well (issue 14: results with times a teacher can keep)
    assert [{k: v for k, v in a.items() if k != "time"} for a in answered["answers"]] == [
        {"answer": [shown[wrong]], "correct": False},
        {"answer": [shown[right]], "correct": True},
    ]
    assert all(datetime.fromisoformat(a["time"]).tzinfo is not None for a in answered["answers"])
    assert (answered["solved"], answered["tries"], answered["first_try"]) == (True, 2, False)
    assert json.loads(json.dumps(results)) == results  # plain data
    assert repr(widget) == f"QuizWidget('tensors', 1 of {len(widget.questions)} correct)"

    widget._repr_mimebundle_()  # shown (issue 10: a quiz built but never shown is not in the results)
    assert torchlesson.quiz_results()[-1] == widget.results
    widget.close()
    assert all(entry != results for entry in torchlesson.quiz_results())


def test_quiz_results_lists_every_drawn_quiz_in_order() -> None:
    first = torchlesson.quiz("autograd", question=1)
    second = torchlesson.quiz("tensors", question=2)
    for widget in (first, second):
        widget._repr_mimebundle_()  # shown, as IPython does
    names = [entry["quiz"] for entry in torchlesson.quiz_results()]
    assert names[-2:] == ["autograd", "tensors"]
    first.close()
    second.close()


def multiple_choice_questions() -> list[tuple[str, str]]:
    return [(name, q.id) for name in BUNDLED for q in load(name).questions if q.kind == "multiple"]


@pytest.mark.parametrize(("name", "qid"), multiple_choice_questions())
@pytest.mark.parametrize("reveal_after", ["never", 3])
def test_no_wrong_multiple_choice_answer_tells_which_choices_are_right(
    name: str, qid: str, reveal_after: Any
) -> None:
    """Issue 10, item 12: ticking every box revealed the key (the reply carried every pick's `why`,
    the right ones reading "Yes: ..."). For every wrong set of picks, the learner reads the same
    words, which name no choice, until the reveal policy allows."""
    question = next(q for q in load(name).questions if q.id == qid)
    ids = [f"c{i}" for i in range(len(question.choices))]
    right = {f"c{i}" for i, c in enumerate(question.choices) if c.correct}
    seen = set()
    for size in range(1, len(ids) + 1):
        for picks in itertools.combinations(ids, size):
            if set(picks) == right:
                continue
            widget = torchlesson.quiz(name, question=qid, reveal_after=reveal_after)
            entry = widget.check(qid, list(picks))
            assert entry["status"] == "wrong"
            state = synced(widget)
            for secret in secrets(question):
                assert json.dumps(secret)[1:-1] not in state, (picks, secret)
            assert not {"answer", "answer_ids", "explanation"} & set(entry)
            seen.add(json.dumps(entry["notes"]))
    assert len(seen) == 1  # one message for every wrong answer: it cannot tell them apart


def test_the_whys_of_multiple_choice_picks_arrive_with_the_reveal() -> None:
    widget = torchlesson.quiz("autograd", question="leaf-tensors", reveal_after=2)
    question = key_of(widget, "leaf-tensors")
    everything = [f"c{i}" for i in range(len(question.choices))]
    assert widget.check("leaf-tensors", everything)["notes"][0][0] == ""
    revealed = widget.check("leaf-tensors", everything)
    assert revealed["answer_ids"] == ids_where(widget, "leaf-tensors", True)
    assert revealed["notes"] == [[c.text, c.why] for c in question.choices]


ODD_IDS = [None, 5, "", "nope", ["x"], {"id": 1}, "x" * 10_000]
ODD_ANSWERS = [
    1, 0, -1, 1.5, None, True, False, "", "c0", "c1", "c99", "c-1", "c01", "c 1", "C1", "0", "1",
    [], ["c0"], ["c0", "c1"], ["c0", "c0"], [1], [None], [True], [["c0"]], {"c0": True}, {}, "[10, 14, 18]",
    "x" * 100_000, "[" * 50_000, "9" * 5000, "1e999", "tensor([nan, 1., 2.])", "c" + "9" * 50,
]  # fmt: skip


def test_any_message_a_view_sends_gets_a_verdict_or_an_error_reply_never_a_kernel_error() -> None:
    """Issue 10, item 14: answers of 1, None or True raised in the kernel and no reply came back,
    so the view waited forever on "Checking...". Property-style over odd ids x odd answers, for
    every kind of question: the handler never raises, and answers exactly once."""
    chosen = "requires-grad-effect,leaf-tensors,seed-gradient"
    widget = torchlesson.quiz("autograd", question=chosen, lock_when_correct=False)
    replies: list[dict] = []
    widget.send = replies.append
    question_ids = [*[q["id"] for q in widget.questions], *ODD_IDS]
    for qid in question_ids:
        for answer in ODD_ANSWERS:
            before, sent = json.dumps(widget.feedback), len(replies)
            widget._on_message(widget, {"type": "check", "question": qid, "answer": answer}, [])
            changed = json.dumps(widget.feedback) != before
            assert changed != (len(replies) == sent + 1), (qid, answer)  # a verdict xor an error reply
            if not changed:
                reply = replies[-1]
                assert reply["type"] == "error" and "\n" not in reply["message"], (qid, answer, reply)
                assert len(reply["message"]) < 300
    # and well-formed answers are graded, not refused
    widget._on_message(
        widget, {"type": "check", "question": "leaf-tensors", "answer": ["c0", "c1", "c3"]}, []
    )
    assert widget.feedback["leaf-tensors"]["status"] == "correct"


def test_only_quizzes_that_were_shown_are_in_the_results(ipython) -> None:
    """Issue 10, item 14: quiz_results() listed quizzes that were built but never shown."""
    run = ipython.run(
        "import torchlesson\n"
        "kept = torchlesson.quiz('tensors', question='sum-shape')\n"  # assigned, not shown
        "def build():\n    torchlesson.quiz('tensors', question='rand')\nbuild()\n"
    )
    assert run.error is None and run.outputs == []
    assert ipython.run("torchlesson.quiz('tensors', question='devices');").outputs == []  # ; hides it
    ipython.run("%quiz tensors -q int-division")
    ipython.run("torchlesson.quiz('tensors', question='broadcast-shape')")
    ipython.run(
        "from IPython.display import display\ndisplay(torchlesson.quiz('tensors', question='view-index'))"
    )
    answered = ipython.run("other = torchlesson.quiz('tensors', question='numpy-float-dtype')").result.result
    ipython.run("other.close()")  # closed: dropped again
    listed = [entry["questions"][0]["id"] for entry in torchlesson.quiz_results()]
    assert listed[-3:] == ["int-division", "broadcast-shape", "view-index"]
    assert not {"sum-shape", "rand", "devices", "numpy-float-dtype"} & set(listed)
    # a view that answers was shown, even where IPython did not show it (marimo wraps widgets itself)
    kept = ipython.user_ns["kept"]
    kept._on_message(kept, {"type": "check", "question": "sum-shape", "answer": "c1"}, [])
    assert [entry["questions"][0]["id"] for entry in torchlesson.quiz_results()][-1] == "sum-shape"
    assert answered is None


def test_results_export_to_json_and_csv(tmp_path: Path) -> None:
    widget = torchlesson.quiz("tensors", question="dtype-from-list,view-index")
    widget._repr_mimebundle_()
    wrong, right = (
        ids_where(widget, "dtype-from-list", False)[0],
        ids_where(widget, "dtype-from-list", True)[0],
    )
    widget.check("dtype-from-list", wrong)
    widget.check("dtype-from-list", right)
    widget.check("view-index", "3")

    written = torchlesson.export_quiz_results(tmp_path / "results.json", [widget.results])
    assert json.loads(written.read_text(encoding="utf-8")) == [widget.results]
    table = torchlesson.export_quiz_results(tmp_path / "out.csv", [widget.results])
    with table.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["question"], r["attempts"], r["first_try_correct"], r["solved"]) for r in rows] == [
        ("dtype-from-list", "2", "False", "True"),
        ("view-index", "1", "True", "True"),
    ]
    first = rows[0]
    assert first["quiz"] == "tensors"
    assert datetime.fromisoformat(first["solved_at"]) >= datetime.fromisoformat(first["first_attempt_at"])
    texts = {c["id"]: c["text"] for c in widget.questions[0]["choices"]}
    assert json.loads(first["answers"]) == [[texts[wrong]], [texts[right]]]
    assert datetime.fromisoformat(first["shown_at"]).tzinfo is not None
    # the default is every quiz shown in this kernel
    everything = torchlesson.export_quiz_results(tmp_path / "all.json")
    assert json.loads(everything.read_text(encoding="utf-8"))[-1]["questions"][0]["id"] == "dtype-from-list"
    with pytest.raises(torchlesson.QuizError, match=r"\.json or a \.csv"):
        torchlesson.export_quiz_results(tmp_path / "results.txt")
    widget.close()


# ------------------------------------------------------------------------------ outside a live kernel


@pytest.mark.parametrize("name", BUNDLED)
def test_static_html_shows_questions_and_choices_without_answers(name: str) -> None:
    widget = torchlesson.quiz(name)
    data, _ = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    page = data["text/html"]
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for question in load(name).questions:
        assert question.prompt.replace("`", "") in text
        for choice in question.choices:
            assert choice.text.replace("`", "") in text
        for secret in secrets(question):
            assert secret.replace("`", "") not in text, (question.id, secret)


def test_plain_text_is_a_readable_summary() -> None:
    widget = torchlesson.quiz("autograd", question=6)
    data, _ = widget._repr_mimebundle_()
    lines = data["text/plain"].splitlines()
    assert lines[0].startswith("Quiz: Autograd")
    assert lines[1].startswith("1. Which of these tensors are leaf tensors")
    assert "   [ ] `a`" in lines
    assert "       c = a * b" in lines
    assert not any("is_leaf is `True`" in line and "correct" in line for line in lines)


SCRIPTED = """
title = "<b>Escapes</b>"

[[question]]
id = "xss"
prompt = "Is <script>alert('prompt')</script> shown as text?"
code = "print('<script>')"
explanation = "Yes & it stays <i>text</i>."

[[question.choice]]
text = "<img src=x onerror=alert('choice')>"
correct = true
why = "<b>right</b>"

[[question.choice]]
text = "no"
why = "It is escaped."
"""


def test_quiz_text_is_always_escaped_in_html(tmp_path: Path) -> None:
    path = tmp_path / "scripted.toml"
    path.write_text(SCRIPTED, encoding="utf-8")
    widget = torchlesson.quiz(str(path))
    page = widget._repr_mimebundle_()[0]["text/html"]
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(&#x27;prompt&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;Escapes&lt;/b&gt;" in page
    assert widget.questions[0]["prompt"] == "Is <script>alert('prompt')</script> shown as text?"


def test_code_is_highlighted_as_runs_of_text() -> None:
    code = "for i in range(3):\n    x = torch.ones(2)  # one\n    print('hi', 1.5)"
    runs = highlight(code)
    assert "".join(text for _, text in runs) == code
    kinds = {text.strip(): css for css, text in runs if text.strip()}
    assert kinds["for"] == "kw"
    assert kinds["range"] == "bi"
    assert kinds["# one"] == "com"
    assert kinds["'hi'"] == "str"
    assert kinds["1.5"] == "num"


def test_exported_html_shows_the_questions_but_not_the_answers(run_notebook, tmp_path: Path) -> None:
    from nbconvert import HTMLExporter

    notebook = tmp_path / "quiz.ipynb"
    cells = ["import torchlesson", "torchlesson.quiz('autograd')"]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), notebook)
    executed = run_notebook(notebook)
    quiz = load("autograd")

    # saved with the widget state (as nbclient does): the page embeds the widget, never the key
    with_state, _ = HTMLExporter().from_notebook_node(executed)
    assert "application/vnd.jupyter.widget-state+json" in with_state
    # saved without it (JupyterLab's default): the static HTML stands in for the widget
    del executed.metadata["widgets"]
    without_state, _ = HTMLExporter().from_notebook_node(executed)
    assert "torchlesson-quiz-static" in without_state
    shown = html.unescape(re.sub(r"<[^>]+>", "", without_state))
    for question in quiz.questions:
        assert question.prompt.replace("`", "") in shown
        for secret in secrets(question):
            assert secret.replace("`", "") not in shown, (question.id, secret)
            assert json.dumps(max(secret.split("`"), key=len))[1:-1] not in with_state, (question.id, secret)


def test_text_summary_counts_one_question_in_the_singular():
    import torchlesson

    widget = torchlesson.quiz("autograd", question=1)
    bundle, _metadata = widget._repr_mimebundle_()
    text = bundle["text/plain"]
    assert "(1 question;" in text


# ------------------------------------------------------------------------------ answers kept in the notebook

SAVING_CELLS = [
    "import torchlesson\nfrom IPython.display import display\n"
    "w = torchlesson.quiz('tensors', question='dtype-from-list,view-index', save=True)\ndisplay(w)",
    "ids = {c['text']: c['id'] for c in w.questions[0]['choices']}\n"
    "w.check('dtype-from-list', ids['`torch.int32`'])\nw.check('dtype-from-list', ids['`torch.int64`'])\n"
    "w.check('view-index', '4');",
]


def saved_record(cell) -> dict:
    (kept,) = [o for o in cell.outputs if "torchlesson" in o.get("metadata", {})]
    return kept.metadata["torchlesson"]["quiz_answers"], kept.data["text/plain"]


def test_saved_answers_are_in_the_notebook_and_come_back_after_a_restart(
    run_notebook, tmp_path: Path
) -> None:
    """Issue 14: opt-in saving of a learner's answers in the notebook, so that they survive a kernel
    restart and can be collected with the notebook; the key never reaches the page."""
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in SAVING_CELLS]), path)
    first = run_notebook(path)
    record, line = saved_record(first.cells[0])
    assert "(2 of 2 answered)" in line  # updated after every answer, as the front-end saves it
    assert [a["correct"] for a in record["answers"]["dtype-from-list"]] == [False, True]
    assert [a["answer"] for a in record["answers"]["view-index"]] == ["4"]
    quiz = load("tensors")
    for question in quiz.questions:  # the learner's own tries and verdicts, never the key
        for secret in secrets(question):
            assert json.dumps(secret)[1:-1] not in json.dumps(record), secret
    nbformat.write(first, path)  # the learner saves the notebook

    # the kernel restarts and the notebook runs again (JupyterLab tells the kernel where the file is)
    again = nbformat.read(path, as_version=4)
    again.cells = [
        nbformat.v4.new_code_cell(f"import os\nos.environ['JPY_SESSION_NAME'] = {str(path)!r}"),
        again.cells[0],
        nbformat.v4.new_code_cell(
            "print(w.results['questions'][0]['tries'], w.feedback['dtype-from-list']['status'],"
            " w.results['questions'][1]['tries'], w.feedback['view-index']['status'])"
        ),
    ]
    restored = run_notebook_copy(run_notebook, again, tmp_path / "copy" / "lesson.ipynb")
    assert restored.cells[2].outputs[0].text.split() == ["2", "correct", "1", "wrong"]
    record_again, line_again = saved_record(restored.cells[1])
    assert "3 earlier tries taken over" in line_again
    assert record_again["answers"] == record["answers"]  # regraded, times kept

    # a teacher collects the saved answers from the learners' notebooks
    collected = torchlesson.collect_quiz_results([path])
    assert [(e["notebook"], e["quiz"], e["score"], e["total"]) for e in collected] == [
        (str(path), "tensors", 1, 2)
    ]
    assert collected[0]["questions"][0]["answers"] == record["answers"]["dtype-from-list"]


def run_notebook_copy(run_notebook, nb, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return run_notebook(path)
