"""NOTE [the display is total]: whatever a trace holds (odd summaries, empty strings, NaN and inf,
fields missing), the picture renders. Each part (a row of the text summary, a node, the static
picture, the widget) is made on its own; one that fails is replaced by a line that says which part
could not be drawn and why, the way a stopped recording says where it stopped, and the rest is shown
as usual. Only ``Exception`` is caught: an interrupt still interrupts.
"""

from __future__ import annotations


def reason(exc: BaseException) -> str:
    """``IndexError: list index out of range``: the first line of an exception, never empty."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def failed(part: str, exc: BaseException) -> str:
    """The sentence that stands in for a part of the picture that could not be drawn."""
    return f"{part} could not be drawn ({reason(exc)})."
