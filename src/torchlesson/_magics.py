"""The IPython magics: parse the line, call the public API, display or store the result.

Nothing else lives here; everything a magic does is also possible from plain Python
(:func:`torchlesson.trace`, :func:`torchlesson.quiz`).
"""

from __future__ import annotations

import builtins
import keyword
import re
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from .capture import DEFAULT_MAX_OPS

# the names IPython keeps its history in: _, __, ___, _5 (Out[5]), _i, _ii, _iii, _i5 (In[5])
_HISTORY_NAME = re.compile(r"_{1,3}|_\d+|_i{1,3}|_i\d+")


def _output_name(shell, name: str) -> str:
    """``-o NAME`` checked: a variable the learner may have, and that the notebook does not need."""
    if not name.isidentifier():
        raise UsageError(f"-o needs a variable name to store the trace in, not {name!r}.")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise UsageError(f"-o {name}: {name!r} is a Python keyword; store the trace as, say, -o trace.")
    if name in shell.user_ns_hidden or _HISTORY_NAME.fullmatch(name):
        raise UsageError(f"-o {name}: IPython keeps {name!r} for itself; store the trace as, say, -o trace.")
    if hasattr(builtins, name):
        raise UsageError(
            f"-o {name}: that would hide Python's built-in {name!r}; store the trace as, say, -o trace."
        )
    return name


@magics_class
class TorchlessonMagics(Magics):
    """``%%autograd_trace`` and ``%quiz``."""

    @magic_arguments()
    @argument(
        "-o", "--output", metavar="NAME", help="store the Trace object in this variable (like %%%%capture)."
    )
    @argument(
        "--max-ops",
        type=int,
        default=DEFAULT_MAX_OPS,
        metavar="N",
        help=f"record at most N operations (default {DEFAULT_MAX_OPS}); the cell still runs to the end.",
    )
    @argument("--text", action="store_true", help="show a plain-text summary instead of the graph widget.")
    @argument(
        "--predict",
        action="append",
        metavar="WHAT",
        help="hide WHAT (x.grad, or a tensor y; several: x.grad,w.grad) in the graph and ask the learner "
        "for it, checked in the kernel; the graph shows it once the answer is right or revealed.",
    )
    @cell_magic
    def autograd_trace(self, line: str, cell: str) -> None:
        """Run the cell exactly as usual, then show what it did to its tensors and gradients.

        Usage::

            %%autograd_trace [-o NAME] [--max-ops N] [--text] [--predict WHAT]

        ``--predict x.grad`` (or a tensor's name, ``--predict y``) is predict mode: the graph hides
        those numbers everywhere (widget, static picture, text, details, replay), and a question under
        it asks for them, graded like a numeric ``%quiz`` question. A right answer, or the reveal after
        wrong tries, draws the graph again with the numbers in it.
        """
        args = parse_argstring(self.autograd_trace, line)
        if args.max_ops < 1:
            raise UsageError(f"--max-ops must be a positive number of operations, not {args.max_ops}.")
        if args.output is not None:
            _output_name(self.shell, args.output)
        if args.predict:
            from ._predict import PredictError, parse_targets, predict

            try:
                targets = [target.text for target in parse_targets(args.predict)]
            except PredictError as error:
                raise UsageError(str(error)) from None

        from ._cell import run_cell_traced

        trace = run_cell_traced(self.shell, cell, max_ops=args.max_ops)
        if args.output is not None:
            self.shell.user_ns[args.output] = trace
        shown = trace.text_view() if args.text else trace
        if args.predict:
            try:
                shown = predict(trace, targets, self.shell.user_ns, text=args.text)
            except PredictError as error:
                if trace.error is None:  # the graph would give the answer away: fix the target first
                    raise UsageError(str(error)) from None
                print(error, file=sys.stderr)  # the cell's own traceback stays the cell's error
        display(shown)

    @magic_arguments()
    @argument("source", nargs="?", help="a bundled quiz name (autograd) or a .toml quiz file.")
    @argument(
        "-q", "--question", metavar="Q",
        help="only these questions: numbers from 1 or ids, comma-separated (-q 2, -q detach,leaf-tensors).",
    )  # fmt: skip
    @argument("--skip", metavar="Q", help="leave these questions out (numbers or ids, comma-separated).")
    @argument("--pick", type=int, metavar="N", help="draw N questions at random (--seed S: the same N).")
    @argument("--shuffle", action="store_true", help="shuffle the questions and their choices.")
    @argument("--seed", type=int, metavar="S", help="make --pick and --shuffle reproducible.")
    @argument("--save", action="store_true", help="keep the learner's answers in the notebook file.")
    @line_magic
    def quiz(self, line: str) -> None:
        """Draw a multiple-choice quiz checked in the kernel, or list the bundled ones.

        Usage::

            %quiz                      # list the bundled quizzes
            %quiz autograd [-q Q] [--skip Q] [--pick N] [--shuffle] [--seed S] [--save]
            %quiz path/to/my_quiz.toml
        """
        args = parse_argstring(self.quiz, line)
        from ._quiz import QuizError, list_quizzes, quiz

        options = {"question": args.question, "skip": args.skip, "pick": args.pick, "seed": args.seed}
        if args.source is None:
            given = [f"--{name}" for name, value in options.items() if value is not None]
            given += [flag for flag in ("--shuffle", "--save") if getattr(args, flag[2:])]
            if given:
                flags = ", ".join(given).replace("--question", "-q")
                raise UsageError(f"{flags} needs a quiz to work on: %quiz autograd {line.strip()}")
            display(list_quizzes())
            return
        source = args.source
        if len(source) > 1 and source[0] == source[-1] and source[0] in "'\"":
            source = source[1:-1]  # IPython's splitter keeps the quotes of %quiz "my quiz.toml"
        try:
            widget = quiz(source, **options, shuffle=args.shuffle, save=args.save)
        except QuizError as error:
            raise UsageError(str(error)) from None
        display(widget)
