"""What a notebook shows for a trace: the widget, its static ``text/html`` fallback and ``text/plain``.

Each part is made on its own (NOTE [the display is total] in failures.py): if the widget cannot be
built, the static picture still shows and says why; if the static picture cannot be drawn, its place
says so, and the text summary is always there.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .failures import failed
from .text import render_text

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def failure_html(sentence: str) -> str:
    """An HTML line that stands in for a part of the picture that could not be drawn."""
    return (
        '<div class="torchlesson-static torchlesson-failed" style="font-size: 12px; color: #9a3412; '
        f'margin: 4px 0;">{escape(sentence)}</div>'
    )


def display_bundle(trace: dict[str, Any], widget: bool = True, picture: Any = None) -> dict[str, Any]:
    """The mime bundle of a trace: ``text/plain``, ``text/html`` and, where ipywidgets runs, the widget view.
    The widget and the static picture share one :class:`Picture`: each view is laid out once
    (NOTE [lay out once] in picture.py).

    >>> sorted(display_bundle({"tensors": [], "ops": []}, widget=False))
    ['text/html', 'text/plain']
    """
    from .picture import Picture
    from .svg import to_html

    bundle: dict[str, Any] = {"text/plain": render_text(trace)}
    try:
        picture = picture or Picture(trace)
    except Exception:  # NOTE [the display is total]: each part below says why it could not be drawn
        picture = trace
    notes: list[str] = []
    view = None
    if widget:
        try:
            view = _widget_view(picture)
        except ImportError:  # no ipywidgets / anywidget: the static picture is all there is
            view = None
        except Exception as exc:  # NOTE [the display is total]
            notes.append(failed("The interactive graph", exc) + " The static picture is shown instead.")
    try:
        html = to_html(picture)
    except Exception as exc:  # NOTE [the display is total]
        html = failure_html(failed("The static picture", exc))
    bundle["text/html"] = html + "".join(failure_html(note) for note in notes)
    if view is not None:
        bundle[WIDGET_MIME] = view
    return bundle


def _widget_view(picture: Any) -> dict[str, Any] | None:
    from .widget import GraphWidget

    bundle = GraphWidget(picture)._repr_mimebundle_()
    if isinstance(bundle, tuple):
        bundle = bundle[0]
    return (bundle or {}).get(WIDGET_MIME)
