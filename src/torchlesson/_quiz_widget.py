"""The quiz widget: questions in the browser, the answer key in the kernel.

``static/quiz.js`` draws the questions and sends the learner's answer as a custom message
(``{"type": "check", "question": id, "answer": ...}``); :meth:`QuizWidget.check` grades it with
:func:`torchlesson._quiz.grade` and publishes feedback for *that* answer in the ``feedback`` trait.
Outside a live kernel the mime bundle's ``text/html`` shows the questions and choices, without answers.
"""

from __future__ import annotations

import html
import itertools
import pathlib
import weakref
from typing import Any

import anywidget
import traitlets
from pygments.lexers import PythonLexer
from pygments.token import Comment, Keyword, Name, Number, Operator, String

from ._quiz import Quiz, QuizError
from ._quiz_saving import Place, saved_output
from ._quiz_sheet import AnswerSheet, now

__all__ = ["QuizWidget"]

_STATIC = pathlib.Path(__file__).parent / "static"

# NOTE [the key stays in the kernel]
# The synced state (``content`` and ``feedback``) is all the browser ever gets. ``content`` holds
# questions and choices under opaque ids (c0, c1, ... in display order), never ``correct`` flags or
# a choice's ``why``. ``feedback`` gains an entry only when the learner checks an answer, and then
# carries the explanation of the choice *they* picked (single choice; a wrong multiple-choice answer
# gets none, see NOTE [multiple-choice feedback] in _quiz.py); the question's explanation and the
# right answer arrive once they are right, or when the quiz's ``reveal_after`` tries are used up.
# A saving quiz's record (NOTE [answers saved in the notebook]) holds only the learner's own tries.
# tests/test_quiz_widget.py and tests/test_quiz_browser.py hold us to this.

# Token classes for highlighted code; static/quiz.css colours them for light and dark themes.
_TOKEN_CLASSES = (
    (Comment, "com"),
    (String, "str"),
    (Number, "num"),
    (Keyword, "kw"),
    (Name.Builtin, "bi"),
    (Name.Function, "fn"),
    (Name.Class, "fn"),
    (Operator.Word, "kw"),
    (Operator, "op"),
)


def highlight(code: str) -> list[list[str]]:
    """Python code as ``[css_class, text]`` runs; quiz.js sets each run with ``textContent``."""
    runs: list[list[str]] = []
    for token, text in PythonLexer(stripnl=False, ensurenl=False).get_tokens(code):
        css = next((name for kind, name in _TOKEN_CLASSES if token in kind), "")
        if runs and runs[-1][0] == css:
            runs[-1][1] += text
        else:
            runs.append([css, text])
    return runs


def _public(quiz: Quiz) -> dict[str, Any]:
    """What the browser may know of a quiz before any answer (see NOTE [the key stays in the kernel])."""
    questions = []
    for number, question in enumerate(quiz.questions, start=1):
        item: dict[str, Any] = {
            "id": question.id,
            "number": number,
            "type": question.kind,
            "prompt": question.prompt,
            "code": highlight(question.code) if question.code else [],
        }
        if question.kind == "numeric":
            item["placeholder"] = question.placeholder or "a number, or a list like [1.0, 2.0]"
        else:
            item["choices"] = [
                {"id": f"c{i}", "text": choice.text} for i, choice in enumerate(question.choices)
            ]
        questions.append(item)
    return {"name": quiz.name, "title": quiz.title, "description": quiz.description, "questions": questions}


class QuizWidget(anywidget.AnyWidget):
    """A multiple-choice quiz whose answers are checked in the kernel.

    Build one with :func:`torchlesson.quiz`. ``results`` gives the learner's answers and score.
    """

    _esm = _STATIC / "quiz.js"
    _css = _STATIC / "quiz.css"

    content = traitlets.Dict().tag(sync=True)  # questions and choices, no key
    feedback = traitlets.Dict().tag(sync=True)  # question id -> verdict on the learner's last answer

    def __init__(self, quiz: Quiz, *, save: bool = False, **kwargs: Any) -> None:
        super().__init__(content=_public(quiz), **kwargs)
        self._quiz = quiz
        self._sheet = AnswerSheet(quiz)
        self._save = save
        self._saved_output: Any = None  # the display handle of the one-line output holding the answers
        self._place: Place | None = None
        self._taken_over = 0
        self._shown = False
        self.on_msg(self._on_message)

    @property
    def questions(self) -> list[dict[str, Any]]:
        """The questions as the browser sees them: ``id``, ``prompt``, ``choices`` (``id``, ``text``)."""
        return self.content["questions"]

    def check(self, question_id: str, answer: str | list[str]) -> dict[str, Any]:
        """Grade an answer, as the Check button does, and return the feedback the learner sees.

        ``answer`` is the id (or list of ids) of the picked choices, or the typed text of a numeric
        answer.
        """
        entry = self._sheet.answer(question_id, answer)
        self.feedback = dict(self._sheet.feedback)
        self._keep_answers()
        return entry

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "check":
            return
        self._mark_shown()  # a message from a view: it was shown (marimo shows widgets without IPython)
        try:
            self.check(content.get("question"), content.get("answer"))
        except QuizError as error:  # a stale or tampered view: tell it, instead of raising in the kernel
            self.send({"type": "error", "question": content.get("question"), "message": str(error)})

    @property
    def score(self) -> tuple[int, int]:
        """(questions answered correctly, questions shown)."""
        return self._sheet.score

    @property
    def results(self) -> dict[str, Any]:
        """The learner's answers and score, as plain data for a teacher collecting results."""
        return self._sheet.results

    def __repr__(self) -> str:
        score, total = self.score
        return f"QuizWidget({self._quiz.name!r}, {score} of {total} correct)"

    # -- being shown ------------------------------------------------------------------------------

    def _mark_shown(self) -> None:
        if not self._shown:
            self._shown = True
            self._sheet.shown_at = self._sheet.shown_at or now()
            _register(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._mark_shown()
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = {**data, "text/plain": text_summary(self._quiz), "text/html": static_html(self._quiz)}
        return data, metadata

    def _ipython_display_(self, **kwargs: Any) -> None:
        """Show the widget; a saving quiz first takes over its saved answers, then shows the line
        that keeps them (NOTE [answers saved in the notebook])."""
        from IPython import get_ipython
        from IPython.display import display

        if self._save and self._place is None:
            self._place = Place(get_ipython())
            self._taken_over = self._sheet.replay(self._place.saved_tries(self._sheet))
            self.feedback = dict(self._sheet.feedback)
        data, metadata = self._repr_mimebundle_(**kwargs)
        display(data, metadata=metadata, raw=True)
        if self._save:
            text, record = saved_output(self._sheet, self._taken_over)
            if self._saved_output is None:
                self._saved_output = display(text, metadata=record, raw=True, display_id=True)
            else:  # shown again: one more line with the same display id, so every copy is updated
                self._saved_output.display(text, metadata=record, raw=True)
            self._place.remember(self._sheet)

    def _keep_answers(self) -> None:
        if self._saved_output is None:
            return
        text, record = saved_output(self._sheet, self._taken_over)
        self._saved_output.update(text, metadata=record, raw=True)
        if self._place is not None:
            self._place.remember(self._sheet)


# NOTE [why a module registry]: quiz_results() must find the quizzes a notebook showed without the
# learner keeping a variable for each. A quiz enters it when it is shown (IPython displays it, or a
# view sends an answer), not when it is built. Weak references only: closing or dropping a widget
# drops it.
_DRAWN: weakref.WeakValueDictionary[int, QuizWidget] = weakref.WeakValueDictionary()
_ORDER = itertools.count()


def _register(widget: QuizWidget) -> None:
    _DRAWN[next(_ORDER)] = widget


def drawn() -> list[QuizWidget]:
    """The quiz widgets shown and still open, oldest first (``close()`` drops a widget)."""
    widgets = (_DRAWN.get(key) for key in sorted(_DRAWN.keys()))
    return [widget for widget in widgets if widget is not None and widget.comm is not None]


# ------------------------------------------------------------------------- outside a live kernel


def _inline_html(text: str) -> str:
    """Escape quiz text; `backticks` become <code>, as quiz.js does."""
    parts = text.split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def static_html(quiz: Quiz) -> str:
    """The questions and choices as plain HTML for GitHub, nbviewer and HTML export; no answers."""
    out = [f'<div class="torchlesson-quiz torchlesson-quiz-static"><h3>{html.escape(quiz.title)}</h3>']
    if quiz.description:
        out.append(f"<p>{_inline_html(quiz.description)}</p>")
    out.append("<ol>")
    for question in quiz.questions:
        out.append(f"<li><p>{_inline_html(question.prompt)}</p>")
        if question.code:
            out.append(f"<pre><code>{html.escape(question.code)}</code></pre>")
        if question.kind == "numeric":
            out.append("<p>Answer: ______</p>")
        else:
            marker = "☐" if question.kind == "multiple" else "○"
            out.append("<ul style='list-style: none'>")
            out.extend(f"<li>{marker} {_inline_html(choice.text)}</li>" for choice in question.choices)
            out.append("</ul>")
        out.append("</li>")
    out.append("</ol><p><em>Run this notebook to answer: the kernel checks the answers.</em></p></div>")
    return "".join(out)


def text_summary(quiz: Quiz) -> str:
    """A readable plain-text version of the quiz (terminals, text-only front-ends); no answers."""
    count = len(quiz.questions)
    noun = "question" if count == 1 else "questions"
    lines = [f"Quiz: {quiz.title} ({count} {noun}; answers are checked in a live kernel)"]
    for number, question in enumerate(quiz.questions, start=1):
        lines.append(f"{number}. {question.prompt}")
        lines.extend(f"       {line}" for line in question.code.splitlines())
        if question.kind == "numeric":
            lines.append("   Answer: ______")
        else:
            box = "[ ]" if question.kind == "multiple" else "( )"
            lines.extend(f"   {box} {choice.text}" for choice in question.choices)
    return "\n".join(lines)
