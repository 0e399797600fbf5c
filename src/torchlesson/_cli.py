"""The commands of ``python -m torchlesson`` (see ``__main__.py``): argument parsing and printing."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import TextIO


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Run a command; returns the exit status (0 fine, 1 a problem found, 2 bad usage)."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m torchlesson", description="torchlesson's commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="validate quiz files, run their code and check their answers",
        description="Validate quiz files (the same one-line errors as %%quiz), run every question's "
        "code, check every numeric answer against what its check expression computes, and print a summary.",
    )  # fmt: skip
    check.add_argument("quizzes", nargs="+", metavar="QUIZ", help="a .toml quiz file, or a bundled quiz name")
    check.add_argument("--strict", action="store_true", help="fail on warnings too")
    results = commands.add_parser(
        "results", help="collect the quiz answers saved in notebooks",
        description="Collect the answers that quizzes drawn with --save kept in notebooks.",
    )  # fmt: skip
    results.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help=".ipynb files")
    results.add_argument("-o", "--output", metavar="FILE", help="also write them to FILE (.csv or .json)")
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.quizzes, strict=args.strict, out=out)
    return _results(args.notebooks, args.output, out=out)


def _check(sources: list[str], *, strict: bool, out: TextIO) -> int:
    from ._quiz import QuizError, load
    from ._quiz_check import check_quiz
    from ._quiz_model import KINDS

    status = 0
    for source in sources:
        try:
            quiz = load(source)
        except QuizError as error:
            print(error, file=out)
            status = 1
            continue
        kinds = Counter(question.kind for question in quiz.questions)
        counted = ", ".join(f"{kinds[kind]} {kind}" for kind in KINDS if kinds[kind])
        print(f"{quiz.source}: {quiz.title!r}, {len(quiz.questions)} questions ({counted})", file=out)
        findings = check_quiz(quiz)
        width = max(len(finding.question) for finding in findings)
        for finding in findings:
            print(f"  {finding.level:<4}  {finding.question:<{width}}  {finding.message}", file=out)
        tally = Counter(finding.level for finding in findings)
        print(f"  {tally['ok']} ok, {tally['warn']} warnings, {tally['FAIL']} failed", file=out)
        if tally["FAIL"] or (strict and tally["warn"]):
            status = 1
    return status


def _results(notebooks: list[str], output: str | None, *, out: TextIO) -> int:
    from ._quiz import QuizError
    from ._quiz_saving import collect_quiz_results
    from ._quiz_sheet import export_quiz_results

    try:
        collected = collect_quiz_results(notebooks)
        written = export_quiz_results(output, collected) if output else None
    except QuizError as error:
        print(error, file=out)
        return 1
    for entry in collected:
        print(f"{entry['notebook']}  {entry['quiz']}  {entry['score']} of {entry['total']} correct", file=out)
    if not collected:
        print("No saved quiz answers found (quizzes keep them when drawn with --save).", file=out)
    if written is not None:
        print(f"Written to {written}", file=out)
    return 0
