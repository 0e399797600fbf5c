"""Quiz banks: where quiz files come from, and reading one.

A quiz is a TOML file (the format is documented in ``docs/quiz-format.md``). Bundled quizzes live in
``torchlesson/quizzes/*.toml``; other packages add theirs through the ``torchlesson.quizzes``
entry-point group; teachers give a path to their own file. :func:`load` finds a quiz by name or path
and reads it; :func:`torchlesson._quiz_schema.parse` turns its text into a frozen :class:`Quiz`. A file
that cannot be read (missing, binary, not UTF-8, too big) gets the same one-line :class:`QuizError`
as a malformed one. Grading lives in :mod:`torchlesson._quiz`.
"""

from __future__ import annotations

import codecs
import difflib
import warnings
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

# the data model and the parser are re-exported: `from torchlesson._quiz_bank import parse` works
from ._quiz_model import Choice, Mistake, Question, Quiz, QuizError
from ._quiz_schema import as_numbers, lock_value, parse, reveal_after_value

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "Choice",
    "Mistake",
    "Question",
    "Quiz",
    "QuizError",
    "as_numbers",
    "find_banks",
    "load",
    "lock_value",
    "parse",
    "read_bank",
    "reveal_after_value",
]

ENTRY_POINT_GROUP = "torchlesson.quizzes"
MAX_BYTES = 2_000_000  # a quiz is text; anything bigger is the wrong file


# ---------------------------------------------------------------------------------------- finding


def _bundled() -> Traversable:
    return resources.files("torchlesson") / "quizzes"


def find_banks() -> dict[str, tuple[Traversable, str]]:
    """Quiz name -> (file, where it comes from: "bundled", "from PACKAGE"); bundled quizzes first,
    then entry points."""
    found: dict[str, tuple[Traversable, str]] = {}
    folders: list[tuple[Traversable, str]] = [(_bundled(), "bundled")]
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        package = entry.dist.name if entry.dist is not None else entry.value
        try:
            folders.append((_as_folder(entry.load()), f"from {package}"))
        except Exception as error:  # a broken plugin must not break the bundled quizzes
            warnings.warn(
                f"torchlesson: quiz bank {entry.name!r} ({entry.value}) could not be loaded: {error}",
                stacklevel=3,
            )
    for folder, origin in folders:
        for item in sorted(folder.iterdir(), key=lambda item: item.name):
            name = item.name.removesuffix(".toml")
            if not item.name.endswith(".toml") or not item.is_file():
                continue
            if name in found:
                first = _label(*found[name])
                warnings.warn(f"torchlesson: two quizzes are named {name!r}; {first} wins over {origin}.",
                              stacklevel=3)  # fmt: skip
                continue
            found[name] = (item, origin)
    return found


def _as_folder(target: Any) -> Traversable:
    """An entry point names a package (its folder holds the .toml files), a folder or a Traversable."""
    if hasattr(target, "__spec__") and hasattr(target, "__name__"):
        return resources.files(target)
    if isinstance(target, (str, Path)):
        return Path(target)
    if hasattr(target, "iterdir"):
        return target
    raise TypeError(f"expected a package, a folder path or a Traversable, got {type(target).__name__}")


# ---------------------------------------------------------------------------------------- loading


def load(source: str | Path) -> Quiz:
    """A bundled or registered quiz by name, or a quiz file by path, validated."""
    if not isinstance(source, (str, Path)):
        raise QuizError(f"Name a quiz (e.g. 'autograd') or give the path of a .toml file, not {source!r}.")
    text_source = str(source)
    if text_source.endswith(".toml") or isinstance(source, Path) or "/" in text_source or "\\" in text_source:
        path = Path(source)
        try:
            found = path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            found = False
        if not found:
            raise QuizError(f"No quiz file at {text_source!r}. Check the path (relative to the notebook).")
        return parse(read_text(path.read_bytes, text_source), name=path.stem, source=text_source)
    banks = find_banks()
    if text_source not in banks:
        close = difflib.get_close_matches(text_source, banks, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise QuizError(
            f"No quiz named {text_source!r}.{guess} Available: {', '.join(banks)}. "
            "Or give the path of your own .toml quiz file."
        )
    return read_bank(text_source, *banks[text_source])


def read_bank(name: str, item: Traversable, origin: str) -> Quiz:
    """Parse a quiz ``find_banks`` found; messages name it ``autograd.toml (bundled)``."""
    source = _label(item, origin)
    return parse(read_text(item.read_bytes, source), name=name, source=source)


def _label(item: Traversable, origin: str) -> str:
    return f"{item.name} ({origin})"


def read_text(read_bytes: Any, source: str) -> str:
    """A quiz file's text: UTF-8 (a byte-order mark is fine), or a one-line QuizError saying why not."""
    try:
        data = read_bytes()
    except OSError as error:
        raise QuizError(f"Quiz file {source}: cannot be read ({error.strerror or error}).") from None
    if len(data) > MAX_BYTES:
        raise QuizError(f"Quiz file {source}: {len(data):,} bytes, too big for a quiz: the wrong file?")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise QuizError(f"Quiz file {source}: is saved as UTF-16; save it as UTF-8 instead.")
    if b"\x00" in data:
        raise QuizError(f"Quiz file {source}: is a binary file, not the text of a TOML quiz.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise QuizError(
            f"Quiz file {source}: is not UTF-8 text (line {line} has byte {data[error.start]:#04x}); "
            "save it as UTF-8."
        ) from None
