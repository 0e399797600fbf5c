"""One palette for the picture, in light and dark: the widget's CSS and the static SVG both come from it.

Every coloured thing the scene draws carries a *style* (``box-leaf``, ``chip-flowed``, ``t-name``...).
:data:`STYLES` says what each style paints, in colour names of :data:`COLOURS` (optionally mixed into
the background, as ``("param", 10)``: 10 % parameter purple over the background). From that one table:

- :func:`css` writes the widget's rules: CSS variables per theme, each style as a class;
- :func:`attrs` writes the static SVG's presentation attributes (light theme; no ``<style>``, which
  GitHub strips and which would leak into the page).

The base colours (text, background, lines) come from the host first: JupyterLab's variables, then
VS Code's; elsewhere (marimo, Colab, a plain page) from this table, in the theme graph.js measures
from the host's background (``tl-dark``).
"""

from __future__ import annotations

from typing import Any

# name: (light, dark, host variables tried first)
COLOURS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "fg": ("#1f2328", "#e6edf3", ("--jp-ui-font-color1", "--vscode-editor-foreground")),
    "fg2": ("#59636e", "#9ea7b3", ("--jp-ui-font-color2", "--vscode-descriptionForeground")),
    "bg": ("#ffffff", "#0d1117", ("--jp-layout-color0", "--vscode-editor-background")),
    "bg2": ("#f6f8fa", "#151b23", ("--jp-layout-color1", "--vscode-editorWidget-background")),
    "bg3": ("#eaeef2", "#212830", ("--jp-layout-color2", "--vscode-input-background")),
    "line": ("#c3cad3", "#3d444d", ("--jp-border-color1", "--vscode-panel-border")),
    "line2": ("#dfe3e8", "#2f353d", ("--jp-border-color2", "--vscode-widget-border")),
    "accent": ("#0969da", "#4493f8", ()),
    "param": ("#8250df", "#b48ef7", ()),
    "grad": ("#b35900", "#f0883e", ()),
    "error": ("#cf222e", "#ff7b72", ()),
    "accel": ("#1a7f37", "#3fb950", ()),
}

Paint = str | tuple[str, int] | None

# style: {property: paint or value}. fill/stroke take paints; the rest are plain values.
STYLES: dict[str, dict[str, Any]] = {
    # tensor boxes: the kind is in the border's weight and shape too, never in the hue alone
    "box-leaf": {"fill": ("accent", 10), "stroke": "accent", "stroke-width": 2},
    "box-param": {"fill": ("param", 10), "stroke": "param", "stroke-width": 2},
    "box-intermediate": {"fill": ("accent", 4), "stroke": ("accent", 55, "fg2"), "stroke-width": 1.25},
    # faded boxes: gradients never reach it; built by an earlier cell. Only the box fades, never its
    # text, which keeps its full contrast
    "box-constant": {
        "fill": "bg2",
        "stroke": "fg2",
        "stroke-width": 1.25,
        "stroke-dasharray": "4 3",
        "opacity": 0.72,
    },
    "inner-leaf": {"fill": "none", "stroke": ("accent", 45), "stroke-width": 1},
    "inner-param": {"fill": "none", "stroke": ("param", 45), "stroke-width": 1, "stroke-dasharray": "3 2"},
    # operations: pills
    "box-op": {"fill": "bg3", "stroke": "line", "stroke-width": 1.25},
    "box-op-inplace": {"fill": "bg3", "stroke": "fg2", "stroke-width": 1.5, "stroke-dasharray": "1 2.5"},
    "box-op-nograd": {"fill": "bg3", "stroke": "line", "stroke-width": 1.25, "stroke-dasharray": "4 3"},
    "box-error": {"fill": ("error", 14), "stroke": "error", "stroke-width": 2.5},
    "box-modified": {"fill": "bg", "stroke": "error", "stroke-width": 2.5},
    # autograd view
    "box-gradfn": {"fill": ("grad", 7), "stroke": ("grad", 60, "fg2"), "stroke-width": 1.25},
    "box-gradfn-earlier": {
        "fill": "bg2",
        "stroke": ("grad", 60, "fg2"),
        "stroke-width": 1.25,
        "stroke-dasharray": "5 3",
        "opacity": 0.75,
    },
    "box-grad": {"fill": ("grad", 22), "stroke": "grad", "stroke-width": 2},
    "box-grad-empty": {"fill": "bg2", "stroke": "grad", "stroke-width": 1.5, "stroke-dasharray": "4 3"},
    # module boxes, loops folded into one block, and either collapsed to one node
    "box-group": {"fill": ("param", 8), "stroke": "param", "stroke-width": 1.5},
    "box-fold": {"fill": ("accent", 8), "stroke": "accent", "stroke-width": 1.5},
    "frame-module": {
        "fill": ("param", 4),
        "stroke": ("param", 50),
        "stroke-width": 1,
        "stroke-dasharray": "5 3",
    },
    "frame-fold": {
        "fill": ("accent", 3),
        "stroke": ("accent", 60),
        "stroke-width": 1.5,
        "stroke-dasharray": "7 3",
    },
    "head-module": {"fill": ("param", 14)},
    "head-fold": {"fill": ("accent", 14)},
    "badge-fold": {"fill": "accent", "stroke": "accent", "stroke-width": 1},
    # small things on a tensor's box
    "tag": {"fill": "bg2", "stroke": "line", "stroke-width": 1},
    "device": {"fill": "bg", "stroke": "line", "stroke-width": 1},
    "device-accel": {"fill": "accel", "stroke": "accel", "stroke-width": 1},
    "device-meta": {"fill": "bg", "stroke": "fg2", "stroke-width": 1, "stroke-dasharray": "3 2"},
    "rg": {"fill": "bg", "stroke": "accent", "stroke-width": 1.25},
    "expand": {"fill": "bg", "stroke": "param", "stroke-width": 1.25},
    # gradients: flowed through (outlined, not kept), stored in .grad (filled)
    "chip-flowed": {"fill": "bg", "stroke": "grad", "stroke-width": 1, "stroke-dasharray": "3 2"},
    "chip-stored": {"fill": ("grad", 28), "stroke": "grad", "stroke-width": 1.5},
    "chip-none": {"fill": "bg", "stroke": "line", "stroke-width": 1, "stroke-dasharray": "3 2"},
    # texts
    "t-name": {"fill": "fg", "font-size": 12, "font-weight": 700, "mono": True},
    "t-sub": {"fill": ("fg2", 65, "fg"), "font-size": 11, "mono": True},
    "t-op": {"fill": "fg", "font-size": 12, "font-weight": 600, "mono": True},
    "t-error": {"fill": "error", "font-size": 11, "font-weight": 600, "mono": True},
    "t-warning": {"fill": "error", "font-size": 11, "font-weight": 700, "mono": True},
    "t-chip": {"fill": "fg", "font-size": 11, "mono": True},
    "t-chip-stored": {"fill": "fg", "font-size": 11, "font-weight": 700, "mono": True},
    "t-tag": {"fill": "fg2", "font-size": 11, "font-weight": 600, "mono": True},
    "t-device": {"fill": "fg2", "font-size": 11, "mono": True},
    "t-device-accel": {"fill": "#ffffff", "font-size": 11, "font-weight": 700, "mono": True},
    "t-rg": {"fill": "accent", "font-size": 11, "font-weight": 700},
    "t-head": {"fill": "fg", "font-size": 11.5, "font-weight": 600},
    "t-fold": {"fill": "#ffffff", "font-size": 11, "font-weight": 700, "mono": True},
    "t-edge": {"fill": "fg", "font-size": 11, "font-weight": 600},
    "t-footer": {"fill": "fg2", "font-size": 11},
    "t-footer-error": {"fill": "error", "font-size": 11},
    "p-expand": {"fill": "none", "stroke": "fg", "stroke-width": 1.5},
    # edges
    "edge-data": {"fill": "none", "stroke": ("fg2", 70), "stroke-width": 1.4},
    "edge-grad": {"fill": "none", "stroke": ("grad", 65, "fg2"), "stroke-width": 1.4},
    "edge-cut": {"fill": "none", "stroke": "error", "stroke-width": 2, "stroke-dasharray": "6 4"},
    "arrow-data": {"fill": ("fg2", 70)},
    "arrow-grad": {"fill": ("grad", 65, "fg2")},
    "arrow-cut": {"fill": "error"},
    "edge-label": {"fill": "bg", "stroke": "error", "stroke-width": 1},
    "panel": {"fill": "bg", "stroke": "line2", "stroke-width": 1},
    # the replay's bubble beside the node that just ran
    "callout": {"fill": "bg", "stroke": "grad", "stroke-width": 1.5},
    "callout-arrow": {"fill": "grad"},
    "t-callout": {"fill": "fg", "font-size": 11, "font-weight": 700, "mono": True},
}
FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
SANS = "system-ui, -apple-system, 'Segoe UI', sans-serif"


def _hex(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def mix(top: str, percent: float, under: str) -> str:
    """``percent`` % of ``top`` over ``under`` (sRGB), as CSS's ``color-mix(in srgb, ...)`` paints it."""
    a, b = _hex(top), _hex(under)
    return "#" + "".join(
        f"{round(x * percent / 100 + y * (1 - percent / 100)):02x}" for x, y in zip(a, b, strict=True)
    )


def _paint(paint: Any, theme: str) -> str:
    """A paint as a light or dark hex colour (the static SVG)."""
    if isinstance(paint, str) and paint in COLOURS:
        return COLOURS[paint][0 if theme == "light" else 1]
    if isinstance(paint, tuple):
        name, percent, *under = paint
        return mix(_paint(name, theme), percent, _paint(under[0] if under else "bg", theme))
    return str(paint)


def _css_paint(paint: Any) -> str:
    if isinstance(paint, str) and paint in COLOURS:
        return f"var(--tl-{paint})"
    if isinstance(paint, tuple):
        name, percent, *under = paint
        return f"color-mix(in srgb, {_css_paint(name)} {percent}%, {_css_paint(under[0] if under else 'bg')})"
    return str(paint)


def attrs(style: str, theme: str = "light") -> str:
    """The SVG presentation attributes of a style: ``fill="#…" stroke="#…" …``."""
    out = []
    for key, value in STYLES.get(style, {}).items():
        if key == "mono":
            out.append(f'font-family="{FONT}"')
        elif key in ("fill", "stroke"):
            out.append(f'{key}="{_paint(value, theme)}"')
        else:
            out.append(f'{key}="{value}"')
    return " ".join(out)


def colour(name: str, theme: str = "light") -> str:
    return _paint(name, theme)


def css() -> str:
    """The widget's colour rules: the palette as CSS variables (light, and dark under ``tl-dark``),
    and one class per style (``.s-box-leaf``)."""

    def variables(index: int) -> str:
        lines = []
        for name, (light, dark, host) in COLOURS.items():
            fallback = (light, dark)[index]
            value = fallback
            for variable in reversed(host):
                value = f"var({variable}, {value})"
            # a host theme's variables win in both themes: they are that theme's colours
            lines.append(f"  --tl-{name}: {value if host else fallback};")
        return "\n".join(lines)

    out = [
        "/* generated by src/torchlesson/picture/palette.py: the palette of the widget and the SVG */",
        f".torchlesson-graph {{\n{variables(0)}\n  --tl-mono: var(--jp-code-font-family, {FONT});\n"
        f"  --tl-font: var(--jp-ui-font-family, {SANS});\n}}",
        f".torchlesson-graph.tl-dark {{\n{variables(1)}\n}}",
    ]
    for style, props in STYLES.items():
        rules = []
        for key, value in props.items():
            if key == "mono":
                rules.append("font-family: var(--tl-mono)")
            elif key in ("fill", "stroke"):
                rules.append(f"{key}: {_css_paint(value)}")
            elif key == "font-size":
                rules.append(f"font-size: {value}px")
            else:
                rules.append(f"{key}: {value}")
        out.append(f".torchlesson-graph .s-{style} {{ {'; '.join(rules)}; }}")
    return "\n".join(out) + "\n"


def colour_of(style: str, prop: str, theme: str = "light") -> str:
    """One property of a style as a hex colour (DOT has no CSS): ``colour_of("box-leaf", "stroke")``."""
    paint = STYLES.get(style, {}).get(prop, "fg")
    return _paint(paint, theme) if paint != "none" else _paint("bg", theme)
