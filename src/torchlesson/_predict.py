"""Predict mode: hide a gradient (or a tensor's value) in a trace's picture and ask the learner for it.

``%%autograd_trace --predict x.grad`` runs the cell traced, then shows the graph with ``x.grad``
hidden and a one-question numeric quiz under it. The answer is graded in the kernel by the quiz's
own code (:func:`torchlesson._quiz.grade`: same reading of typed text, same tolerance); once it is
right, or revealed after the quiz's wrong tries, the graph is drawn again with the numbers in it.

NOTE [hidden means absent]: the numbers are taken out of the trace *data* before anything is drawn
(:func:`redact`), so the widget's state, the static SVG/HTML, the text summary, the details panel
and the replay cannot show them: each renders from the same plain dict. A hidden summary keeps its
shape and dtype and says ``"hidden until you answer"`` where its numbers were, as a freed tensor
says ``"freed"``. Besides the predicted tensor's own summary (its ``grad``, or its ``value``), the
places that hold the same numbers are hidden: the gradient that flowed into ``x`` in each pass, the
``x.grad`` tensor when the cell used it, copies made from a hidden tensor (``g = x.grad.clone()``),
what ``torch.autograd.grad`` returned. Other tensors that only happen to hold equal numbers stay
(``x * w`` gives ``x.grad == w``: hiding ``w`` would hide what the learner reasons from). The
expected answer stays in the kernel (NOTE [the key stays in the kernel] in ``_quiz_widget.py``).
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._quiz_model import Question, Quiz, QuizError
from ._quiz_widget import QuizWidget

__all__ = ["HIDDEN", "MAX_NUMBERS", "PredictError", "PredictWidget", "Prediction", "predict"]

HIDDEN = "hidden until you answer"
MAX_NUMBERS = 16  # more numbers than a learner would type by hand
_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_STATS = ("min", "max", "mean", "std", "norm")


class PredictError(QuizError):
    """A ``--predict`` target that cannot be asked: the message is one line that says what to fix."""


@dataclass(frozen=True)
class Target:
    """What to predict: the value of ``path``, or (``grad``) the ``.grad`` of the tensor at ``path``."""

    path: str
    grad: bool

    @property
    def text(self) -> str:
        return f"{self.path}.grad" if self.grad else self.path


@dataclass(frozen=True)
class Hidden:
    """A resolved target: the answer (nested tuples of floats) and where the trace holds it."""

    target: Target
    answer: Any
    shape: tuple[int, ...]
    tensor_id: str | None  # the trace's record of the tensor at target.path, if it has one


def parse_targets(specs: Iterable[str]) -> list[Target]:
    """``["x.grad", "w.grad,y"]`` -> targets, in order, without repeats; a PredictError for bad text."""
    targets: list[Target] = []
    for spec in specs:
        for part in str(spec).split(","):
            text = part.strip()
            if not _TARGET.fullmatch(text):
                raise PredictError(
                    f"--predict {text or spec!r}: give a tensor's variable name (y) or its gradient "
                    "(x.grad), several separated by commas."
                )
            path, _, last = text.rpartition(".")
            target = Target(path, True) if last == "grad" and path else Target(text, False)
            if target not in targets:
                targets.append(target)
    if not targets:
        raise PredictError("--predict needs what to predict: a tensor's name (y) or a gradient (x.grad).")
    return targets


# -------------------------------------------------------------------------------- finding the answer


def resolve(target: Target, namespace: Mapping[str, Any], trace: dict[str, Any]) -> Hidden:
    """The value the learner is to predict, read after the cell ran; a PredictError says why not."""
    import torch

    flag = f"--predict {target.text}"
    head, *rest = target.path.split(".")
    if head not in namespace:
        near = difflib.get_close_matches(head, [k for k in namespace if isinstance(k, str)], n=1)
        also = f" (did you mean {near[0]}?)" if near else ""
        raise PredictError(f"{flag}: the cell did not bind {head!r}{also}; predict a tensor the cell made.")
    obj = namespace[head]
    for depth, name in enumerate(rest, start=2):
        if not hasattr(obj, name):
            owner = ".".join([head, *rest][: depth - 1])
            raise PredictError(f"{flag}: {owner} has no attribute {name!r}.")
        obj = getattr(obj, name)
    if not isinstance(obj, torch.Tensor):
        raise PredictError(
            f"{flag}: {target.path} is {_a(obj)}, not a tensor; predict a tensor or a tensor's .grad."
        )
    if target.grad:
        obj = _grad(obj, target, trace)
    return Hidden(target, _numbers(obj, flag), tuple(obj.shape), _record(trace, target.path))


def _a(value: Any) -> str:
    name = type(value).__name__
    return "None" if value is None else f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _grad(tensor: Any, target: Target, trace: dict[str, Any]) -> Any:
    """``tensor.grad``, read only where PyTorch keeps it (never the non-leaf warning), or why it is None."""
    flag, name = f"--predict {target.text}", target.path
    if not tensor.requires_grad:
        raise PredictError(
            f"{flag}: {name}.grad is None: {name} does not require grad, so no gradient reaches it "
            f"(make it with requires_grad=True)."
        )
    if not tensor.is_leaf and not tensor.retains_grad:
        made_by = type(tensor.grad_fn).__name__ if tensor.grad_fn is not None else "an operation"
        raise PredictError(
            f"{flag}: {name}.grad is None: {name} is not a leaf (it was made by {made_by}), and PyTorch "
            f"keeps .grad only for leaves; call {name}.retain_grad() before backward(), or predict a leaf's."
        )
    grad = tensor.grad
    if grad is None:
        why = (
            "the cell ran no backward pass (add loss.backward())"
            if not trace.get("backward")
            else f"no backward pass reached {name} (it is not in the graph backward() started from)"
        )
        raise PredictError(f"{flag}: {name}.grad is None after the cell: {why}.")
    return grad


def _numbers(tensor: Any, flag: str) -> Any:
    """The tensor's numbers as the quiz's answers are kept (nested tuples of floats)."""
    import torch

    from ._quiz_schema import as_numbers

    count = tensor.numel()
    if count > MAX_NUMBERS:
        raise PredictError(
            f"{flag}: it holds {count} numbers, too many to type; --predict takes tensors of at most "
            f"{MAX_NUMBERS} numbers."
        )
    if count == 0:
        raise PredictError(f"{flag}: it is empty (shape {tuple(tensor.shape)}): there is nothing to predict.")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise PredictError(f"{flag}: it holds {str(tensor.dtype)[6:]} values; --predict checks real numbers.")
    if tensor.is_meta:
        raise PredictError(f"{flag}: it is on the meta device, which holds no numbers.")
    try:
        with torch.no_grad():
            values = tensor.detach().cpu().tolist()
        return as_numbers(values)
    except ValueError:
        raise PredictError(f"{flag}: it holds nan or inf, which a prediction cannot match.") from None
    except Exception as error:  # a tensor subclass, a tensor torch cannot read back
        raise PredictError(f"{flag}: its numbers cannot be read ({type(error).__name__}).") from None


def _record(trace: dict[str, Any], path: str) -> str | None:
    """The id of the trace's tensor that ``path`` holds at the end: the one labelled by its plain name."""
    tensors = trace.get("tensors") or []
    found = [t for t in tensors if t.get("label") == path] or [t for t in tensors if t.get("name") == path]
    return found[-1].get("id") if found else None


# -------------------------------------------------------------------------------- hiding the numbers


def redact(trace: dict[str, Any], hidden: Iterable[Hidden]) -> dict[str, Any]:
    """A copy of ``trace`` with the numbers of every hidden target taken out (NOTE [hidden means absent])."""
    data = copy.deepcopy(trace)
    for item in hidden:
        _redact_one(data, item)
    return data


def _redact_one(data: dict[str, Any], item: Hidden) -> None:
    tid, path, grad = item.tensor_id, item.target.path, item.target.grad
    tensors = {t.get("id"): t for t in data.get("tensors") or []}
    passes = data.get("backward") or []
    # tensors whose value is the hidden numbers: the target itself, or the .grad the cell read
    holders = {ref for ref, t in tensors.items() if grad and t.get("name") == f"{path}.grad"}
    if not grad and tid is not None:
        holders.add(tid)
    if grad and tid in tensors:
        tensors[tid]["grad"] = _hide(tensors[tid].get("grad"))
        nodes = {
            n.get("id")
            for n in (data.get("autograd") or {}).get("nodes") or []
            if n.get("tensor") == tid or tid in (n.get("outputs") or {}).values()
        }
        # what flowed into it in a pass is its .grad when that pass made it alone; when several
        # passes added up (a loop without zero_grad), each pass's share stays: it is what the
        # learner adds up
        for passage in passes:
            grads, node_grads = passage.get("grads") or {}, passage.get("node_grads") or {}
            if tid in grads and _same(grads[tid], item):
                grads[tid] = _hide(grads[tid])
            for node in nodes & set(node_grads):
                if _same(node_grads[node], item):
                    node_grads[node] = _hide(node_grads[node])
    # copies of them (g = x.grad.clone(), y.detach()): an op that reads one and makes the same numbers
    for op in data.get("ops") or []:
        reads = {i.get("tensor") for i in op.get("inputs") or [] if isinstance(i, dict)}
        if reads & holders:
            made = op.get("outputs") or []
            holders |= {ref for ref in made if _same((tensors.get(ref) or {}).get("value"), item)}
    for ref in holders & set(tensors):
        tensors[ref]["value"] = _hide(tensors[ref].get("value"))
    for call in data.get("optimizer_calls") or []:
        updated = call.get("updated") or {}
        for ref in holders & set(updated):  # a one-number parameter's norm is its value
            updated[ref] = {"before": None, "after": None}
    for passage in passes:  # what torch.autograd.grad returned, when that is what is predicted
        if passage.get("kind") == "grad" and not grad:
            grads = passage.get("grads") or {}
            for ref, summary in grads.items():
                if _same(summary, item):
                    grads[ref] = _hide(summary)


def _same(summary: Any, item: Hidden) -> bool:
    if not isinstance(summary, dict) or summary.get("unavailable") or summary.get("values") is None:
        return False
    if tuple(summary.get("shape") or ()) != item.shape:
        return False
    return _flat(summary["values"]) == _flat(item.answer)


def _flat(values: Any) -> list[float]:
    if isinstance(values, (list, tuple)):
        return [number for value in values for number in _flat(value)]
    try:
        return [float(values)]
    except (TypeError, ValueError):
        return [float("nan")]  # "nan", "inf" as the schema writes them: never equal to an answer


def _hide(summary: Any) -> Any:
    if not isinstance(summary, dict):
        return summary
    return {**summary, "values": None, **dict.fromkeys(_STATS), "unavailable": HIDDEN}


# ------------------------------------------------------------------------------------ the question


def _shape_words(shape: tuple[int, ...]) -> str:
    if not shape:
        return "one number"
    if len(shape) == 1:
        return f"a list of {shape[0]} number{'s' if shape[0] != 1 else ''}"
    return f"a nested list of shape {list(shape)}"


def question(item: Hidden, number: int = 1) -> Question:
    """The numeric question for one target, graded like any other (rtol and atol as the quiz default)."""
    name = item.target.text
    if item.target.grad:
        hint = (
            f"Follow the graph backward to `{item.target.path}`: each operation multiplies the gradient "
            "that reaches its output by its own local derivative, and branches add up."
        )
        explanation = (
            f"The graph above shows `{name}` now: press ▶ Play (Replay backward) to watch how it got there."
        )
    else:
        hint = "Follow the graph forward from the inputs: work out each operation's result in turn."
        explanation = f"The graph above shows `{name}` now: click it to see the operation that made it."
    return Question(
        id=f"predict-{number}",
        kind="numeric",
        prompt=f"What is `{name}` after this cell? The graph above hides it; work it out, then type it.",
        explanation=explanation,
        answer=item.answer,
        hint=hint,
        placeholder=_shape_words(item.shape),
    )


class PredictWidget(QuizWidget):
    """The quiz of a prediction: a :class:`QuizWidget` that tells its :class:`Prediction` when an
    answer is right or revealed, so the graph can show the numbers."""

    def __init__(self, quiz: Quiz, on_reveal: Any, **kwargs: Any) -> None:
        super().__init__(quiz, **kwargs)
        self._on_reveal = on_reveal

    def check(self, question_id: str, answer: str | list[str]) -> dict[str, Any]:
        entry = super().check(question_id, answer)
        if entry["status"] == "correct" or "answer" in entry:
            self._on_reveal(question_id)
        return entry


class Prediction:
    """A trace's picture with some numbers hidden, and the quiz that asks for them.

    Displayed, it shows the graph (a display that is updated in place) and then the question; each
    right (or revealed) answer draws the graph again with that target's numbers back in it.
    """

    def __init__(self, trace: Any, hidden: list[Hidden], *, text: bool = False) -> None:
        from .capture import Trace

        self._trace: Trace = trace
        self._data = trace.to_dict()
        self._text = text
        self._pending = {f"predict-{k}": item for k, item in enumerate(hidden, start=1)}
        self._handle: Any = None
        names = ", ".join(item.target.text for item in hidden)
        quiz = Quiz(
            name="predict",
            title=f"Predict {names}",
            questions=tuple(question(item, k) for k, item in enumerate(hidden, start=1)),
            source="--predict",
        )
        self.widget = PredictWidget(quiz, self._reveal)

    @property
    def hidden(self) -> list[Target]:
        """The targets whose numbers the graph still hides."""
        return [item.target for item in self._pending.values()]

    def picture(self) -> Any:
        """What the graph display shows now: the trace with the unanswered targets' numbers taken out."""
        from .capture import Trace

        shown = Trace(redact(self._data, self._pending.values())) if self._pending else self._trace
        return shown.text_view() if self._text else shown

    def check(self, answer: str, question_id: str = "predict-1") -> dict[str, Any]:
        """Grade an answer as the Check button does; returns the feedback the learner sees."""
        return self.widget.check(question_id, answer)

    def _reveal(self, question_id: str) -> None:
        if self._pending.pop(question_id, None) is not None and self._handle is not None:
            self._handle.update(self.picture())

    def _ipython_display_(self, **kwargs: Any) -> None:
        from IPython.display import display

        self._handle = display(self.picture(), display_id=True)
        display(self.widget)

    def __repr__(self) -> str:
        hidden = ", ".join(target.text for target in self.hidden) or "nothing"
        return f"Prediction(hidden: {hidden})"


def predict(
    trace: Any, targets: str | Iterable[str], namespace: Mapping[str, Any], *, text: bool = False
) -> Prediction:
    """Hide ``targets`` (``"x.grad"``, ``"y"``, or several) in the picture of ``trace`` and ask for them.

    ``namespace`` holds the variables the targets name, after the traced code ran (a notebook's
    ``globals()``). Raises :class:`PredictError` with a one-line message when a target cannot be
    asked.

    Examples
    --------
    >>> import torch, torchlesson
    >>> with torchlesson.trace() as t:
    ...     x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ...     (x * 2 + 3).sum().backward()
    >>> p = torchlesson.predict(t, "x.grad", {"x": x})
    >>> p.check("[2, 2, 2]")["status"]
    'correct'
    """
    parsed = parse_targets([targets] if isinstance(targets, str) else targets)
    data = trace.to_dict()
    if data.get("error"):
        failed = data["error"].get("type") or "an error"
        raise PredictError(
            f"--predict {', '.join(t.text for t in parsed)}: the cell raised {failed}, so the prediction "
            "could not be checked; fix the cell and run it again."
        )
    return Prediction(trace, [resolve(target, namespace, data) for target in parsed], text=text)
