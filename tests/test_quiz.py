"""Quiz banks and grading (``torchlesson._quiz``): the bundled key is valid and true, grading is fair,
and a bad quiz file says what to fix."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import torchlesson
from torchlesson._quiz import (
    MULTIPLE_NOT_YET,
    Choice,
    Question,
    QuizError,
    grade,
    list_quizzes,
    load,
    read_numbers,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

BUNDLED = {"autograd": 12, "tensors": 8}  # name -> at least this many questions


def strip_ticks(text: str) -> str:
    return text.replace("`", "")


def right_texts(question: Question) -> set[str]:
    return {choice.text for choice in question.choices if choice.correct}


def index_of(question: Question, text: str) -> int:
    return next(i for i, choice in enumerate(question.choices) if choice.text == text)


def run_code(code: str) -> tuple[dict, BaseException | None, str]:
    """Run a question's code block as a learner would; return its namespace, error and output."""
    namespace = {"torch": torch, "np": np}
    out = io.StringIO()
    error = None
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore")
        try:
            exec(code, namespace)
        except Exception as raised:
            error = raised
    return namespace, error, out.getvalue()


# ------------------------------------------------------------------------------ the bundled banks


def test_list_shows_every_bundled_quiz_on_one_line_each() -> None:
    listing = list_quizzes()
    by_name = {info.name: info for info in listing}
    assert set(BUNDLED) <= set(by_name)
    for name, at_least in BUNDLED.items():
        assert by_name[name].questions >= at_least
        assert by_name[name].origin == "bundled"
    lines = repr(listing).splitlines()
    assert [line.split()[0] for line in lines[: len(listing)]] == [info.name for info in listing]


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_quiz_is_valid_and_explains_every_choice(name: str) -> None:
    quiz = load(name)
    assert len(quiz.questions) >= BUNDLED[name]
    assert len({q.id for q in quiz.questions}) == len(quiz.questions)
    for question in quiz.questions:
        assert len(question.explanation) > 40, question.id
        if question.kind == "numeric":
            assert question.hint, question.id
            assert question.rtol < 0.01, question.id  # a tolerance, not a free pass
            continue
        wrong = [choice for choice in question.choices if not choice.correct]
        assert wrong, question.id
        assert all(len(choice.why) > 20 for choice in wrong), question.id
        if question.kind == "single":
            assert len(right_texts(question)) == 1, question.id


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_the_right_choice_is_not_always_in_the_same_place(name: str) -> None:
    positions = {index_of(q, next(iter(right_texts(q)))) for q in load(name).questions if q.kind == "single"}
    assert len(positions) >= 3


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_the_right_choice_is_not_systematically_the_longest(name: str) -> None:
    """Issue 14: the right choice was the longest in all 10 single-choice autograd questions, so a
    learner could score without knowing anything. With four choices, chance makes it the longest
    in about a quarter of the questions; allow a third, and no more length on average."""
    singles = [q for q in load(name).questions if q.kind == "single"]
    longest, ratios = 0, []
    for question in singles:
        right = len(next(iter(right_texts(question))))
        wrong = [len(c.text) for c in question.choices if not c.correct]
        longest += right > max(wrong)
        ratios.append(right / (sum(wrong) / len(wrong)))
    assert longest <= len(singles) / 3, f"the right choice is the longest in {longest} of {len(singles)}"
    assert sum(ratios) / len(ratios) <= 1.1


def test_autograd_quiz_covers_the_seed_lesson_and_the_topics() -> None:
    ids = {q.id for q in load("autograd").questions}
    seed = {"requires-grad-effect", "computational-graph", "detach", "requires-grad-purpose", "seed-gradient"}
    # what PyTorch's own autograd tutorial covers, and pitfalls learners hit (issue 14)
    tutorial = {"hand-derivative", "define-by-run", "freeze-parameters", "autograd-grad", "inference-mode"}
    pitfalls = {"eval-is-not-no-grad", "total-loss"}
    topics = {
        "leaf-tensors",
        "intermediate-grad",
        "grad-fn",
        "accumulation",
        "zero-grad",
        "retain-graph",
        "no-grad-vs-detach",
        "nonscalar-backward",
        "vector-backward",
    }
    assert seed | topics | tutorial | pitfalls <= ids


def test_tensors_quiz_covers_its_topics() -> None:
    prompts = " ".join(q.prompt + q.code for q in load("tensors").questions)
    for topic in ("torch.tensor(", "from_numpy", "torch.rand(", ".shape", "dtype", "GPU", "broadcast"):
        assert topic in prompts


# ------------------------------------------------------------------------------ torch is the oracle

# For each numeric question: the expression, evaluated after the question's code, that it asks about.
NUMERIC_ORACLES = {
    "seed-gradient": "x.grad",
    "accumulation": "w.grad",
    "vector-backward": "x.grad",
    "view-index": "m[1, 0]",
    "hand-derivative": "a.grad",
}


def numeric_questions() -> list[tuple[str, Question]]:
    return [(n, q) for n in sorted(BUNDLED) for q in load(n).questions if q.kind == "numeric"]


@pytest.mark.parametrize(("name", "question"), numeric_questions(), ids=lambda v: getattr(v, "id", v))
def test_numeric_answers_are_what_torch_computes(name: str, question: Question) -> None:
    assert question.id in NUMERIC_ORACLES, f"add an oracle for the numeric question {question.id!r}"
    assert question.check == NUMERIC_ORACLES[question.id]  # what `python -m torchlesson check` evaluates
    namespace, error, _ = run_code(question.code)
    assert error is None
    value = eval(NUMERIC_ORACLES[question.id], namespace)
    assert grade(question, repr(value)).correct  # what the learner sees when printing it
    for mistake in question.mistakes:
        assert not np.allclose(np.asarray(mistake.value), value.numpy()), (question.id, mistake.value)


def shares(expression: str) -> bool:
    a = np.array([1, 2, 3])
    return np.shares_memory(a, eval(expression, {"torch": torch, "a": a}).numpy())


def broadcasts(text: str) -> bool:
    first, second = ast.literal_eval(strip_ticks(text).replace(" and ", ", "))
    try:
        torch.zeros(first) + torch.zeros(second)
    except RuntimeError:
        return False
    return True


def _choice_oracles() -> dict[str, object]:
    """question id -> f(question, namespace, error, printed) -> the set of texts torch says are right."""

    def by_prefix(prefix: str):
        return lambda q, *_: {c.text for c in q.choices if strip_ticks(c.text).startswith(prefix)}

    def raising(kind: type, message: str):
        def oracle(q, _ns, error, _out):
            assert isinstance(error, kind)
            assert message in str(error)
            return {c.text for c in q.choices if kind.__name__ in c.text}

        return oracle

    def intermediate(q, ns, *_):
        with pytest.warns(UserWarning, match="not a leaf"):
            grad = ns["y"].grad
        return {c.text for c in q.choices if c.text.startswith(f"`{grad}`") and "warning" in c.text}

    return {
        "requires-grad-effect": lambda q, ns, *_: (
            {c.text for c in q.choices if "records" in c.text}
            if ns["y"].grad_fn is not None and ns["w"].grad is None and ns["w"].device.type == "cpu"
            else set()
        ),
        "leaf-tensors": lambda q, ns, *_: {f"`{v}`" for v in "abcd" if ns[v].is_leaf},
        "intermediate-grad": intermediate,
        "retain-graph": raising(RuntimeError, "backward through the graph a second time"),
        "nonscalar-backward": raising(RuntimeError, "only for scalar outputs"),
        "from-numpy-shares": lambda q, _ns, _e, printed: {
            c.text for c in q.choices if c.text.startswith(f"`{printed.strip()}`:")
        },
        "dtype-from-list": by_prefix(str(torch.tensor([1, 2, 3]).dtype)),
        "numpy-float-dtype": by_prefix(str(torch.from_numpy(np.array([0.5, 1.5])).dtype)),
        "shares-memory": lambda q, *_: {c.text for c in q.choices if shares(strip_ticks(c.text))},
        "rand": lambda q, *_: {
            c.text for c in q.choices if "uniformly" in c.text and str(torch.rand(3, 3).dtype)[6:] in c.text
        },
        "sum-shape": by_prefix(str(torch.zeros(2, 3, 4).sum(dim=1).shape)),
        "broadcast-shape": by_prefix(str(tuple((torch.zeros(3, 1) + torch.zeros(4)).shape))),
        "broadcast-rules": lambda q, *_: {c.text for c in q.choices if broadcasts(c.text)},
        "int-division": by_prefix(str((torch.tensor([1, 2]) / 2).dtype)),
        "requires-grad-propagates": lambda q, *_: {c.text for c in q.choices if statement_holds(c.text)},
        "define-by-run": lambda q, ns, *_: (
            {c.text for c in q.choices if c.text.startswith("Two different graphs")}
            if graph_of(ns["f"], [1.0, 2.0]) != graph_of(ns["f"], [-1.0, -2.0])
            else set()
        ),
        "freeze-parameters": lambda q, ns, *_: (
            {c.text for c in q.choices if "stays `None`" in c.text}
            if ns["model"][0].weight.grad is None and ns["model"][0].bias.grad is not None
            else set()
        ),
        "autograd-grad": lambda q, ns, *_: {
            c.text
            for c in q.choices
            if c.text == f"`g` is `{ns['g']!s}`, and `x.grad` stays `{ns['x'].grad!s}`."
        },
        "eval-is-not-no-grad": lambda q, ns, *_: {
            c.text for c in q.choices if c.text.startswith("Yes" if ns["out"].grad_fn is not None else "No")
        },
        "total-loss": lambda q, ns, *_: (
            {c.text for c in q.choices if "stays alive" in c.text}
            if ns["total_loss"].grad_fn is not None
            else set()
        ),
        "inference-mode": lambda q, *_: (
            {c.text for c in q.choices if "bookkeeping" in c.text} if inference_tensors_refused() else set()
        ),
    }


def statement_holds(text: str) -> bool:
    """The truth of a requires-grad-propagates choice, with `a` and `b` as the question defines them."""
    a, b = torch.ones(2, requires_grad=True), torch.ones(2)
    plain = strip_ticks(text)
    if plain.startswith("After c = a + b"):
        c = a + b  # noqa: F841 - using b is the point
        return b.requires_grad
    expression, value = re.match(
        r"(?:Inside with torch.no_grad\(\):, )?(.+?) is (True|False)", plain
    ).groups()
    context = torch.no_grad() if plain.startswith("Inside") else contextlib.nullcontext()
    with context:
        return eval(expression, {"a": a, "b": b}) == (value == "True")


def graph_of(f, values: list[float]) -> list[str]:
    out = f(torch.tensor(values, requires_grad=True))
    return [node.name() for node, _ in out.grad_fn.next_functions if node is not None]


def inference_tensors_refused() -> bool:
    with torch.inference_mode():
        made = torch.ones(2)
    w = torch.ones(2, requires_grad=True)
    try:
        (w * made).sum()
    except RuntimeError as error:
        return "Inference tensors" in str(error)
    return False


CHOICE_ORACLES = _choice_oracles()


@pytest.mark.parametrize("question_id", sorted(CHOICE_ORACLES))
def test_choice_answers_are_what_torch_does(question_id: str) -> None:
    question = next(q for n in BUNDLED for q in load(n).questions if q.id == question_id)
    namespace, error, printed = run_code(question.code)
    if "raising" not in CHOICE_ORACLES[question_id].__qualname__:
        assert error is None, error
    assert CHOICE_ORACLES[question_id](question, namespace, error, printed) == right_texts(question)


def test_claims_in_the_explanations_hold() -> None:
    w = torch.tensor(1.0, requires_grad=True)
    (2 * w).backward()
    torch.optim.SGD([w], lr=0.1).zero_grad()
    assert w.grad is None  # "optimizer.zero_grad() sets .grad to None by default"

    x = torch.tensor(3.0, requires_grad=True)
    y = x.exp()
    y.backward(retain_graph=True)
    y.backward()
    assert torch.allclose(x.grad, 2 * torch.exp(torch.tensor(3.0)))  # "gradients of both calls add up"

    x = torch.tensor(3.0, requires_grad=True)
    once = (x + 1).sum()
    once.backward()
    once.backward()  # "a graph whose nodes saved nothing can be walked again" (retain-graph)
    assert x.grad.item() == 2.0

    w = torch.tensor(1.0, requires_grad=True)
    with pytest.raises(AttributeError):
        w.grad.zero_()  # "w.grad.zero_() raises while .grad is still None" (zero-grad)

    t = torch.ones(3, requires_grad=True) * 2
    assert t.detach().data_ptr() == t.data_ptr()  # "detach() does not copy"
    with torch.no_grad():
        assert not (t * 2).requires_grad
    assert torch.tensor([1.0]).dtype == torch.float32
    assert (torch.tensor([1, 2]) // 2).tolist() == [0, 1]


# ------------------------------------------------------------------------------ grading


def question_of(kind: str) -> Question:
    return next(q for n in BUNDLED for q in load(n).questions if q.kind == kind)


def test_single_choice_grading_explains_the_pick() -> None:
    question = question_of("single")
    right = index_of(question, next(iter(right_texts(question))))
    wrong = next(i for i, c in enumerate(question.choices) if not c.correct)
    verdict = grade(question, [wrong])
    assert not verdict.correct
    assert verdict.notes == ((question.choices[wrong].text, question.choices[wrong].why),)
    assert grade(question, [right]).correct
    with pytest.raises(QuizError, match="takes one choice"):
        grade(question, [right, wrong])


def test_choice_questions_have_hints_too_shown_on_wrong_answers_only() -> None:
    """Issue 14: hints on choice questions, not only numeric ones. A hint follows the pick's `why`
    on a wrong answer (single and multiple choice), and never comes with a right one."""
    with_hints = [q for n in BUNDLED for q in load(n).questions if q.kind != "numeric" and q.hint]
    assert {q.kind for q in with_hints} >= {"single"} and len(with_hints) >= 4
    for question in with_hints:
        wrong = next(i for i, c in enumerate(question.choices) if not c.correct)
        assert grade(question, [wrong]).notes[-1] == ("", question.hint)
        right = [i for i, c in enumerate(question.choices) if c.correct]
        assert ("", question.hint) not in grade(question, right).notes
    multiple = Question(
        id="m", kind="multiple", prompt="p", explanation="e", hint="Think of leaves.",
        choices=(Choice("a", True, "yes"), Choice("b", False, "no"), Choice("c", True, "yes")),
    )  # fmt: skip
    assert grade(multiple, [0]).notes == (("", MULTIPLE_NOT_YET), ("", "Think of leaves."))


def test_multiple_select_needs_exactly_the_right_set() -> None:
    question = next(q for q in load("autograd").questions if q.id == "leaf-tensors")
    texts = [c.text for c in question.choices]
    a, b, c, d = (texts.index(f"`{v}`") for v in "abcd")
    assert grade(question, [a, b, d]).correct
    assert grade(question, [d, b, a, a]).correct  # order and repeats do not matter
    partial = grade(question, [a, b])
    assert not partial.correct
    extra = grade(question, [a, b, c, d])
    assert not extra.correct
    # Changed by issue 10 (item 12): a wrong multiple-choice answer used to explain every pick, and
    # the right ones read "Yes: ...", so ticking every box revealed the key. Now neither a partial nor
    # an overfull answer says which picks are right (NOTE [multiple-choice feedback]).
    assert partial.notes == extra.notes == (("", MULTIPLE_NOT_YET),)
    assert grade(question, [a, b, d]).notes == tuple(
        (t, question.choices[texts.index(t)].why) for t in ("`a`", "`b`", "`d`")
    )
    with pytest.raises(QuizError):
        grade(question, [])


@pytest.mark.parametrize(
    "typed",
    [
        "tensor([10., 14., 18.])",
        "torch.tensor([10.0, 14.0, 18.0], dtype=torch.float32)",
        "tensor([10., 14., 18.], grad_fn=<AddBackward0>)",
        "[10, 14, 18]",
        "[10. 14. 18.]",
        "10, 14, 18",
        " [10.004, 13.99, 18.01] ",
    ],
)
def test_numeric_answers_accept_what_a_learner_types(typed: str) -> None:
    question = next(q for q in load("autograd").questions if q.id == "seed-gradient")
    assert grade(question, typed).correct


def test_numeric_answers_compare_with_a_tolerance_never_equality() -> None:
    question = Question(id="q", kind="numeric", prompt="0.1 + 0.2?", explanation="e", answer=0.3, hint="h")
    assert 0.1 + 0.2 != 0.3
    assert grade(question, repr(0.1 + 0.2)).correct
    assert grade(question, "0.3003").correct  # rtol 1e-3 by default
    assert not grade(question, "0.31").correct
    strict = Question(
        id="q", kind="numeric", prompt="p", explanation="e", answer=0.3, hint="h", rtol=0.0, atol=0.0
    )
    assert not grade(strict, "0.3003").correct


def test_numeric_feedback_names_the_mistake_the_shape_or_the_typo() -> None:
    question = next(q for q in load("autograd").questions if q.id == "seed-gradient")
    assert grade(question, "[5, 7, 9]").notes == (("", question.mistakes[0].why),)
    assert grade(question, "[1, 2, 3]").notes == (("", question.hint),)
    shape = grade(question, "[10, 14]")
    assert "shape (2,)" in shape.notes[0][1]
    assert "(3,)" in shape.notes[0][1]
    assert shape.readable
    typo = grade(question, "ten, fourteen")
    assert not typo.correct
    assert not typo.readable  # does not count as a try


@pytest.mark.parametrize("text", ["__import__('os').getcwd()", "[1, 2] * 3", "{'a': 1}", "", "[[1, 2], [3]]"])
def test_numbers_are_read_never_evaluated(text: str) -> None:
    with pytest.raises(ValueError, match="not a number"):
        read_numbers(text)


def test_numbers_keep_their_nesting() -> None:
    assert read_numbers("tensor([[1., 2.], [3., 4.]])") == ((1.0, 2.0), (3.0, 4.0))
    assert read_numbers("tensor(6.)") == 6.0
    assert read_numbers("torch.Size([2, 4])") == (2.0, 4.0)


# ------------------------------------------------------------------------------ bad quiz files

VALID = """
title = "Mini"

[[question]]
id = "q1"
prompt = "Pick one"
explanation = "Because."

[[question.choice]]
text = "right"
correct = true
why = "It is right."

[[question.choice]]
text = "wrong"
why = "It is wrong."

[[question]]
id = "q2"
type = "numeric"
prompt = "How much?"
answer = [1.0, 2.0]
explanation = "Count."
hint = "Count again."
"""

BROKEN = {
    "bad TOML": (VALID.replace('title = "Mini"', "title = Mini"), ["not valid TOML", "line"]),
    "missing field": (VALID.replace('explanation = "Because."', ""), ["'q1'", "'explanation'"]),
    "no correct choice": (VALID.replace("correct = true", ""), ["'q1'", "'choice'", "no choice has correct"]),
    "duplicate ids": (VALID.replace('id = "q2"', 'id = "q1"'), ["'q1'", "'id'", "used twice"]),
    "answer not a number": (VALID.replace("answer = [1.0, 2.0]", 'answer = "two"'), ["'q2'", "'answer'"]),
    "ragged answer": (
        VALID.replace("answer = [1.0, 2.0]", "answer = [[1.0], [2.0, 3.0]]"),
        ["'q2'", "rectangular"],
    ),
    "wrong choice without why": (VALID.replace('why = "It is wrong."', ""), ["'q1'", "'why'", "'wrong'"]),
    "typo in a field": (
        VALID.replace('explanation = "Count."', 'explaination = "Count."'),
        ["'q2'", "'explanation'"],
    ),
    "two right in single": (
        VALID.replace('why = "It is wrong."', "correct = true"),
        ["'q1'", "'choice'", "multiple"],
    ),
    "unknown type": (VALID.replace('type = "numeric"', 'type = "essay"'), ["'q2'", "'type'", "essay"]),
    "no questions": ('title = "Empty"\n', ["'question'"]),
    "bad reveal": ("reveal_after = 0\n" + VALID, ["'reveal_after'"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_malformed_quiz_file_names_the_file_the_question_and_the_field(case: str, tmp_path: Path) -> None:
    text, expected = BROKEN[case]
    path = tmp_path / "my_quiz.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(QuizError) as raised:
        load(str(path))
    message = str(raised.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message
    assert "\n" not in message.strip()


def toml_value(value: object) -> str:
    """A value written as TOML (inline tables and arrays), to build quiz files from plain data."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_text(data: dict) -> str:
    return "".join(f"{json.dumps(key)} = {toml_value(value)}\n" for key, value in data.items())


# values of every wrong kind, and the ones that slipped through before: inf, deep nesting, huge numbers
def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


ODD_VALUES = [
    5, -1, 0, 1.5, math.inf, -math.inf, math.nan, True, "", "  ", "text", "inf", [], [1, 2], ["a"], [[1], [2, 3]],
    {"a": 1}, [{"a": 1}], 10**30, nested(9), nested(40),
]  # fmt: skip


def field_paths(data: dict) -> list[tuple]:
    """The path of every field of a quiz's data, tables and arrays of tables included."""
    paths = [(key,) for key in data]
    for number, question in enumerate(data["question"]):
        paths += [("question", number, key) for key in question]
        for table in ("choice", "mistake"):
            for index, item in enumerate(question.get(table, [])):
                paths += [("question", number, table, index, key) for key in item]
    return paths


def mutated(data: dict, path: tuple, value: object) -> dict:
    copy = json.loads(json.dumps(data))
    *parents, last = path
    target = copy
    for step in parents:
        target = target[step]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return copy


DELETE = object()
RICH = tomllib.loads(
    VALID.replace(
        'hint = "Count again."',
        'hint = "Count again."\nrtol = 0.01\n\n[[question.mistake]]\nvalue = [2.0, 1.0]\nwhy = "Swapped."',
    )
)


def test_every_broken_field_gives_a_one_line_error_naming_the_file_the_question_and_the_field(
    tmp_path: Path,
) -> None:
    """Issue 10, item 13: whatever value any field holds, %quiz says what to fix in one line (or
    draws a sane quiz), never a raw traceback. Property-style: every field x every odd value."""
    path = tmp_path / "broken.toml"
    outcomes = {"loaded": 0, "refused": 0}
    for field in field_paths(RICH):
        for value in [DELETE, *ODD_VALUES]:
            path.write_text(toml_text(mutated(RICH, field, value)), encoding="utf-8")
            try:
                quiz = load(path)
            except QuizError as error:
                message = str(error)
                assert "\n" not in message and message.startswith(f"Quiz file {path}"), (
                    field,
                    value,
                    message,
                )
                assert re.search(r"field '\w+'", message), (field, value, message)  # a field to fix
                if field[0] == "question" and len(field) > 2:  # inside a question: it names the question
                    assert f"#{field[1] + 1}" in message, (field, value, message)
                else:  # a quiz-level field: no question is blamed
                    assert "question '" not in message and "(#" not in message, (field, value, message)
                outcomes["refused"] += 1
                continue
            outcomes["loaded"] += 1  # what loads is sane: finite numbers, a right choice per question
            for question in quiz.questions:
                assert 0 <= question.rtol < math.inf and 0 <= question.atol < math.inf, (field, value)
                assert np.all(
                    np.isfinite(np.asarray(question.answer if question.answer is not None else 0.0))
                )
                if question.kind != "numeric":
                    assert any(choice.correct for choice in question.choices)
                    assert all(isinstance(choice.text, str) and choice.text for choice in question.choices)
    assert outcomes["refused"] > 300 and outcomes["loaded"] > 10, outcomes


BAD_BYTES = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["binary file"]),
    "latin-1": ('title = "Caf\xe9"\n'.encode("latin-1"), ["not UTF-8", "line 1", "0xe9"]),
    "UTF-16": ('title = "Mini"\n'.encode("utf-16"), ["UTF-16", "save it as UTF-8"]),
    "too big": (b"# " + b"x" * 3_000_000, ["too big"]),
}


@pytest.mark.parametrize("case", sorted(BAD_BYTES))
def test_a_file_that_is_not_utf8_text_says_so_in_one_line(case: str, tmp_path: Path, ipython) -> None:
    data, fragments = BAD_BYTES[case]
    path = tmp_path / "quiz.toml"
    path.write_bytes(data)
    with pytest.raises(QuizError) as raised:
        load(path)
    message = str(raised.value)
    assert message.startswith(f"Quiz file {path}:") and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    run = ipython.run(f"%quiz {path}")  # and %quiz shows that line, no traceback
    assert str(run.error) == message
    assert "Traceback" not in run.stdout + run.stderr


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "quiz.toml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode("utf-8"))
    assert [q.id for q in load(path).questions] == ["q1", "q2"]


def test_deep_nesting_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "quiz.toml"
    for text in (
        "x = " + "[" * 5000 + "]" * 5000 + "\n" + VALID,
        VALID.replace("answer = [1.0, 2.0]", "answer = " + "[" * 500 + "1" + "]" * 500),
    ):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(QuizError, match=r"nest") as raised:
            load(path)
        assert "\n" not in str(raised.value)


def test_a_duplicate_id_names_the_question_once_and_where_it_was_first(tmp_path: Path) -> None:
    path = tmp_path / "quiz.toml"
    path.write_text(VALID + VALID.split('title = "Mini"')[1].replace('"q2"', '"q3"'), encoding="utf-8")
    with pytest.raises(QuizError) as raised:
        load(path)
    message = str(raised.value)
    assert message.count("'q1'") == 1
    assert "question #3" in message and "question #1" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("reveal_after", "0"), ("lock_when_correct", '"yes"'), ("description", "5"), ("title", "[1]")],
)
def test_a_quiz_level_field_error_blames_no_question(field: str, value: str, tmp_path: Path) -> None:
    path = tmp_path / "quiz.toml"
    text = re.sub(rf"^{field} = .*$", "", VALID, flags=re.M)
    path.write_text(f"{field} = {value}\n{text}", encoding="utf-8")
    with pytest.raises(QuizError) as raised:
        load(path)
    assert str(raised.value).startswith(f"Quiz file {path}, field {field!r}:")
    assert "q2" not in str(raised.value)


@pytest.mark.parametrize(
    "tolerance", ["rtol = inf", "atol = inf", "rtol = nan", "rtol = -0.1", "atol = 1e400"]
)
def test_a_tolerance_that_accepts_every_answer_is_refused(tolerance: str, tmp_path: Path) -> None:
    path = tmp_path / "quiz.toml"
    path.write_text(
        VALID.replace('hint = "Count again."', f'hint = "Count again."\n{tolerance}'), encoding="utf-8"
    )
    with pytest.raises(QuizError, match=r"'q2' \(#2\), field '[ra]tol': must be a finite number >= 0"):
        load(path)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('[[question.mistake]]\nvalue = [1.0, 2.0005]\nwhy = "Close."', "matches the answer"),
        ('[[question.mistake]]\nvalue = [1.0, 2.0, 3.0]\nwhy = "Longer."', "shape"),
        ("mistake = 5", "[[question.mistake]]"),
        ('check = "x.grad +"', "not a Python expression"),
        ('raises = "RuntimeError"', "no code"),
    ],
)
def test_a_numeric_question_that_cannot_work_is_refused(extra: str, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "quiz.toml"
    path.write_text(VALID + extra + "\n", encoding="utf-8")
    with pytest.raises(QuizError, match=re.escape(fragment)):
        load(path)


@pytest.mark.parametrize("qid", ["1", "leaf tensors", "a,b", "-x", "q/1"])
def test_ids_that_minus_q_could_not_name_are_refused(qid: str, tmp_path: Path) -> None:
    path = tmp_path / "quiz.toml"
    path.write_text(VALID.replace('id = "q2"', f"id = {json.dumps(qid)}"), encoding="utf-8")
    with pytest.raises(QuizError, match=r"question #2, field 'id': .* not a usable id"):
        load(path)


def test_the_valid_mini_quiz_loads(tmp_path: Path) -> None:
    path = tmp_path / "my_quiz.toml"
    path.write_text(VALID, encoding="utf-8")
    quiz = load(path)
    assert [q.id for q in quiz.questions] == ["q1", "q2"]
    assert quiz.questions[1].answer == (1.0, 2.0)


def test_unknown_name_lists_the_quizzes_and_guesses() -> None:
    with pytest.raises(QuizError) as raised:
        load("autgrad")
    message = str(raised.value)
    assert "Did you mean 'autograd'?" in message
    assert "autograd, tensors" in message
    with pytest.raises(QuizError, match="No quiz file at"):
        load("missing/quiz.toml")


# ------------------------------------------------------------------------------ selection, shuffling


def order(widget) -> list[tuple[str, list[str]]]:
    return [(q["id"], [c["text"] for c in q.get("choices", [])]) for q in widget.questions]


def test_shuffle_is_reproducible_with_a_seed_and_still_grades_right() -> None:
    first = torchlesson.quiz("autograd", shuffle=True, seed=7)
    assert order(first) == order(torchlesson.quiz("autograd", shuffle=True, seed=7))
    assert order(first) != order(torchlesson.quiz("autograd", shuffle=True, seed=8))
    assert order(first) != order(torchlesson.quiz("autograd"))
    assert sorted(i for i, _ in order(first)) == sorted(q.id for q in load("autograd").questions)

    key = {q.id: right_texts(q) for q in load("autograd").questions}
    for question in first.questions:
        if question["type"] == "numeric":
            continue
        picks = [c["id"] for c in question["choices"] if c["text"] in key[question["id"]]]
        assert first.check(question["id"], picks)["status"] == "correct"
    choice_questions = [q for q in first.questions if q["type"] != "numeric"]
    assert first.score == (len(choice_questions), len(first.questions))


def test_one_question_and_bad_selections() -> None:
    one = torchlesson.quiz("tensors", question=3)
    assert [q["id"] for q in one.questions] == [load("tensors").questions[2].id]
    with pytest.raises(QuizError, match="from 1 to"):
        torchlesson.quiz("tensors", question=99)
    with pytest.raises(QuizError, match="--shuffle"):
        torchlesson.quiz("tensors", seed=3)


def ids_of(widget) -> list[str]:
    return [q["id"] for q in widget.questions]


def test_questions_are_chosen_by_id_or_number_in_the_order_given() -> None:
    bank = [q.id for q in load("autograd").questions]
    assert ids_of(torchlesson.quiz("autograd", question="detach")) == ["detach"]
    assert ids_of(torchlesson.quiz("autograd", question="seed-gradient,detach")) == [
        "seed-gradient",
        "detach",
    ]
    assert ids_of(torchlesson.quiz("autograd", question=["detach", 1])) == ["detach", bank[0]]
    assert ids_of(torchlesson.quiz("autograd", question=" 2 , detach ")) == [bank[1], "detach"]
    assert ids_of(torchlesson.quiz("autograd", question="2")) == [bank[1]]  # "2" as the magic passes it
    skipped = ids_of(torchlesson.quiz("autograd", skip="seed-gradient,1"))
    assert skipped == [qid for qid in bank if qid not in ("seed-gradient", bank[0])]


def test_pick_draws_a_reproducible_random_subset_in_file_order() -> None:
    bank = [q.id for q in load("autograd").questions]
    picks = {tuple(ids_of(torchlesson.quiz("autograd", pick=5, seed=seed))) for seed in range(8)}
    assert len(picks) > 1  # the seed decides which
    for picked in picks:
        assert len(picked) == 5 and list(picked) == sorted(picked, key=bank.index)
    assert ids_of(torchlesson.quiz("autograd", pick=5, seed=3)) == ids_of(
        torchlesson.quiz("autograd", pick=5, seed=3)
    )
    shuffled = torchlesson.quiz("autograd", pick=5, seed=3, shuffle=True)
    assert sorted(ids_of(shuffled)) == sorted(ids_of(torchlesson.quiz("autograd", pick=5, seed=3)))
    left = ids_of(torchlesson.quiz("autograd", skip="detach", pick=len(bank) - 1, seed=1))
    assert left == [qid for qid in bank if qid != "detach"]


BAD_OPTIONS = [
    ({"question": "2"}, None),  # fine: the second question (issue 10: raised a raw TypeError)
    ({"question": "detatch"}, "Did you mean 'detach'?"),
    ({"question": 0}, "from 1 to"),
    ({"question": True}, "-q (question=) takes a question number"),
    ({"question": 2.0}, "question number, an id or a list"),
    ({"question": [None]}, "question numbers and ids"),
    ({"question": "1,,2"}, "question numbers and ids"),
    ({"question": "detach,4"}, "twice"),
    ({"skip": "nothing-here"}, "has no question 'nothing-here'"),
    ({"skip": [q.id for q in load("autograd").questions]}, "leaves no question"),
    ({"pick": 0}, "--pick"),
    ({"pick": "3"}, "--pick"),
    ({"pick": 99}, "questions are left to pick from"),
    ({"pick": True}, "--pick"),
    ({"seed": 3}, "--shuffle"),
    ({"seed": "3", "shuffle": True}, "--seed"),
    ({"seed": -1, "shuffle": True}, "--seed"),
    ({"shuffle": "yes"}, "shuffle takes True or False"),
    ({"reveal_after": "2"}, "reveal_after"),
    ({"lock_when_correct": "no"}, "lock_when_correct: use true or false, not 'no'"),
    ({"lock_when_correct": 0}, "lock_when_correct"),
    ({"save": "yes"}, "save takes True or False"),
]


@pytest.mark.parametrize(("options", "fragment"), BAD_OPTIONS, ids=[repr(o)[:40] for o, _ in BAD_OPTIONS])
def test_every_option_of_quiz_is_checked_with_a_one_line_quiz_error(
    options: dict, fragment: str | None
) -> None:
    """Issue 10, item 14: quiz(question="2") raised a raw TypeError and lock_when_correct="no" became
    True. Every option of quiz() is checked: a QuizError that says what to pass, or a sane quiz."""
    if fragment is None:
        assert torchlesson.quiz("autograd", **options).questions
        return
    with pytest.raises(QuizError) as raised:
        torchlesson.quiz("autograd", **options)
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_quiz_source_must_be_a_name_or_a_path() -> None:
    for source in (None, 3, ["autograd"]):
        with pytest.raises(QuizError, match="Name a quiz"):
            torchlesson.quiz(source)


# ------------------------------------------------------------------------------ other packages' banks


@pytest.mark.parametrize("value", ["physics_bank", "physics_bank:FOLDER"])
def test_other_packages_register_quiz_banks_by_entry_point(value: str, tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "physics_bank"
    (package / "banks").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from pathlib import Path\nFOLDER = Path(__file__).parent / 'banks'\n", encoding="utf-8"
    )
    target = package if ":" not in value else package / "banks"
    (target / "optics.toml").write_text(VALID.replace("Mini", "Optics"), encoding="utf-8")
    info = tmp_path / "physics_bank-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: physics-bank\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[torchlesson.quizzes]\nphysics = {value}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "physics_bank", raising=False)  # a fresh import from tmp_path

    listed = {item.name: item for item in list_quizzes()}
    assert listed["optics"].title == "Optics"
    assert listed["optics"].origin == "from physics-bank"
    assert "autograd" in listed
    widget = torchlesson.quiz("optics")
    assert [q["id"] for q in widget.questions] == ["q1", "q2"]
    assert "optics.toml (from physics-bank)" in load("optics").source


def test_errors_in_a_registered_bank_name_its_file(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "broken_bank"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "oops.toml").write_text(VALID.replace("correct = true", ""), encoding="utf-8")
    info = tmp_path / "broken_bank-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-bank\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text("[torchlesson.quizzes]\nbroken = broken_bank\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(QuizError, match=r"oops\.toml \(from broken-bank\), question 'q1'"):
        load("oops")
    listed = {item.name: item for item in list_quizzes()}
    assert "cannot be loaded" in listed["oops"].title
    assert listed["autograd"].questions >= BUNDLED["autograd"]
