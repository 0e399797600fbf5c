"""The graph for everyone: by keyboard and screen reader (axe-core finds nothing, light and dark),
in a narrow output (nothing cut off, no text under 11 px), and in hosts without JupyterLab's theme
(a dark page, VS Code's variables, the OS's dark preference)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import axe_playwright_python
import pytest

from _synthetic import seed
from test_graph_browser import MLP_STEP, SEED, open_everything, tensor_node
from torchlesson.picture.widget import GraphWidget

pytestmark = pytest.mark.browser

AXE = Path(axe_playwright_python.__file__).parent / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
JS_AXE = """async ([el, tags]) => (await axe.run(el, {runOnly: {type: 'tag', values: tags}})).violations
  .map((v) => `${v.id} (${v.impact}): ${v.help} -> ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')
  + ' ' + n.failureSummary).join(' | ')}`)"""
LOOP = (
    "%%autograd_trace\nx = torch.ones(3, requires_grad=True)\ng = x\nfor _ in range(50):\n"
    "    g = g * 1.01\ng.sum().backward()"
)


def axe_violations(page, locator) -> list[str]:
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = []
    for k in range(locator.count()):
        found += page.evaluate(JS_AXE, [locator.nth(k).element_handle(), WCAG])
    return found


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_nothing_in_the_graph(lab_page, theme: str) -> None:
    page = lab_page.open(
        [*SEED, LOOP, MLP_STEP[0].replace("%load_ext torchlesson\n", ""), MLP_STEP[1]], theme=theme
    )
    widgets = page.locator(".torchlesson-graph")
    assert widgets.count() == 3
    assert axe_violations(page, widgets) == []
    # what the learner opens next: a tensor's details, the autograd view, a replay step, the table
    tensor_node(widgets.first, "x").click()
    widgets.nth(1).get_by_role("button", name="Autograd view").click()
    widgets.nth(1).get_by_role("button", name="Run the next node of the backward pass").click()
    widgets.nth(2).locator("summary").first.click()
    assert axe_violations(page, widgets) == []
    lab_page.screenshot(f"axe-{theme}")


def test_every_box_is_reachable_and_named_by_keyboard(lab_page) -> None:
    page = lab_page.open(SEED)
    widget = page.locator(".torchlesson-graph")
    svg = widget.locator("svg.tl-svg")
    assert svg.get_attribute("role") != "img"  # an image would hide every box from a screen reader
    assert widget.locator("[role=toolbar]").count() == 0  # it promised arrow keys it did not have
    widget.locator(".tl-stage").focus()
    page.keyboard.press("Tab")  # one box holds the tab stop (a roving tabindex)
    focused = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert focused.startswith("x, [3] · float32 · cpu, requires_grad=True")
    assert widget.locator(".tl-tooltip").is_visible()  # focus shows what hover shows
    assert widget.locator(".tl-tooltip strong").inner_text() == "x"
    page.keyboard.press("ArrowDown")  # the next box down: the op, then y
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')").startswith("y, ")
    page.keyboard.press("Enter")
    assert widget.locator(".tl-panel h3").inner_text().startswith("y")
    assert widget.locator(".tl-live").inner_text() == "Selected y (intermediate)"
    assert widget.locator(".tl-panel").get_attribute("aria-live") is None  # not re-read on every redraw
    # a button that disables itself keeps the focus in the widget
    step = widget.get_by_role("button", name="Run the next node of the backward pass")
    step.focus()
    for _ in range(4):
        page.keyboard.press("Enter")
    assert step.is_disabled()
    active = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert active == "Back to the start of the backward pass"
    assert lab_page.page_errors == []


JS_CLIPPED = """(root) => {
  const stage = root.querySelector('.tl-stage').getBoundingClientRect();
  const inside = (el) => { const b = el.getBoundingClientRect();
    return b.left >= stage.left - 0.5 && b.right <= stage.right + 0.5 && b.top >= stage.top - 0.5 && b.bottom <= stage.bottom + 0.5; };
  const scale = Number(root.querySelector('.tl-viewport').getAttribute('transform').match(/scale\\(([\\d.]+)\\)/)[1]);
  const sizes = [...root.querySelectorAll('.tl-svg text')].map((t) => parseFloat(getComputedStyle(t).fontSize) * scale);
  const heads = [...root.querySelectorAll('thead th')];
  return {smallest: Math.min(...sizes), scale,
          cutHeaders: heads.filter((th) => th.scrollWidth > th.clientWidth + 1).map((th) => th.textContent),
          tooltip: root.querySelector('.tl-tooltip').hidden ? null : inside(root.querySelector('.tl-tooltip')),
          callout: root.querySelector('.tl-callout') ? inside(root.querySelector('.tl-callout')) : null,
          where: root.querySelector('.tl-callout') ? [JSON.stringify(root.querySelector('.tl-callout').getBoundingClientRect()), JSON.stringify(stage)] : null};
}"""


def test_a_narrow_output_cuts_nothing_off_and_shrinks_no_text(lab_page) -> None:
    """JupyterLab with its file browser open: about 850 px for the output."""
    page = lab_page.open(MLP_STEP)
    open_everything(page.locator(".torchlesson-graph"))  # the whole step, as wide as it gets
    page.set_viewport_size({"width": 900, "height": 1000})
    page.wait_for_timeout(500)
    widget = page.locator(".torchlesson-graph")
    root = widget.element_handle()
    assert widget.bounding_box()["width"] < 860
    state = page.evaluate(JS_CLIPPED, root)
    assert state["smallest"] >= 11 - 1e-6, state  # the learner pans instead
    assert state["cutHeaders"] == []  # the table scrolls sideways instead of cutting its headers
    scroll = widget.locator(".tl-table-scroll")
    assert scroll.evaluate("e => e.scrollWidth > e.clientWidth")
    # tooltips and the replay's bubble stay inside the graph's area, at its right edge too
    stage = widget.locator(".tl-stage").bounding_box()
    boxes = [b for b in widget.locator(".tl-node[data-id] .tl-box").all() if b.bounding_box()]
    seen = [b.bounding_box() for b in boxes]
    seen = [b for b in seen if b["x"] + 4 < stage["x"] + stage["width"] and b["x"] + b["width"] > stage["x"]]
    box = max(seen, key=lambda b: b["x"] + b["width"])  # the box nearest the stage's right edge
    right = min(box["x"] + box["width"], stage["x"] + stage["width"]) - 3
    page.mouse.move(right, box["y"] + box["height"] / 2)
    assert page.evaluate(JS_CLIPPED, root)["tooltip"] is True
    page.mouse.move(1, 1)
    step = widget.get_by_role("button", name="Run the next node of the backward pass")
    for _ in range(12):
        step.click()
        page.wait_for_timeout(100)  # the view follows the step in the next frame
        state = page.evaluate(JS_CLIPPED, root)
        assert state["callout"] in (True, None), state["where"]
    lab_page.screenshot("narrow", widget)
    assert lab_page.page_errors == []


# ---------------------------------------------------------------------------------------------
# Other hosts: the widget's module on a bare page, with a model that holds its state

BARE = """<!doctype html><html><head><meta charset="utf-8"><style>{host}</style></head>
<body class="{body}"><div id="out"></div></body></html>"""
JS_MOUNT = """async ([js, css, state]) => {
  const style = document.createElement('style'); style.textContent = css; document.head.append(style);
  const mod = await import(URL.createObjectURL(new Blob([js], {type: 'text/javascript'})));
  const model = {get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {}, on() {}, off() {}};
  mod.default.render({model, el: document.getElementById('out')});
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const root = document.querySelector('.torchlesson-graph');
  return {dark: root.classList.contains('tl-dark'), back: getComputedStyle(root).backgroundColor,
          text: getComputedStyle(root.querySelector('.tl-name')).fill};
}"""
HOSTS = {
    # marimo's dark theme (and any page that paints itself dark): no JupyterLab variables at all
    "dark page": ("light", "body { background: #181c1a; color: #eee; }", "", True),
    "VS Code dark": (
        "light",
        "body { --vscode-editor-background: #1e1e1e; --vscode-editor-foreground: #d4d4d4; background: #1e1e1e; }",
        "vscode-dark",
        True,
    ),
    "OS prefers dark, page unpainted": ("dark", "", "", True),
    "light page": ("light", "body { background: #fff; }", "", False),
}


def luminance(css: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def mount(lab, widget: GraphWidget, host_css: str = "", body: str = "", scheme: str = "light", **state):
    """A page of its own with ``widget`` drawn on it by graph.js: (browser context, page, what it
    measured, the page's errors). Close the context when done."""
    sent = {k: v for k, v in widget.get_state().items() if not k.startswith("_")}
    context = lab.browser.new_context(color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_content(BARE.format(host=host_css, body=body))
    js = (Path(__file__).resolve().parents[1] / "src/torchlesson/static/graph.js").read_text(encoding="utf-8")
    got = page.evaluate(JS_MOUNT, [js, widget._css, json.loads(json.dumps({**sent, **state}))])
    return context, page, got, errors


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_no_contrast_or_naming_problem_on_a_page_of_its_own(lab, theme: str) -> None:
    """axe-core judges colour contrast on a plain page (inside JupyterLab's panels it measures
    almost no text): every state of the seed graph, in both themes of the palette."""
    from _synthetic import TraceBuilder

    b = TraceBuilder()  # leaf, parameter, constant (no grad), op, cut, error: every style there is
    x = b.leaf("x", [3])
    w = b.leaf("model.0.weight", [3], module="model.0")
    c = b.leaf("c", [3], requires_grad=False)
    y = b.op("mul", [x, w], "y")
    d = b.op("detach", [y], "d")
    b.cuts.append({"tensor": d, "source": y, "reason": "detach", "line": 5, "op": b.ops[-1]["id"]})
    b.backward(b.op("sum", [b.op("add", [y, c], "z")], "loss", shape=[]))
    b.error = {
        "type": "RuntimeError",
        "message": "boom",
        "line": 8,
        "op": None,
        "op_name": "matmul",
        "inputs": [],
    }
    widget = GraphWidget(b.to_dict())
    css = "body { background: #ffffff; }" if theme == "light" else "body { background: #111111; }"
    for view, selected in (("forward", None), ("forward", y), ("autograd", b.tensors[1]["node"])):
        context, page, got, errors = mount(lab, widget, css, view=view, selected=selected)
        try:
            assert got["dark"] is (theme == "dark")
            page.add_script_tag(path=str(AXE))
            assert axe_violations(page, page.locator(".torchlesson-graph")) == [], (view, selected)
            assert errors == []
        finally:
            context.close()


@pytest.mark.parametrize("host", HOSTS, ids=list(HOSTS))
def test_the_graph_follows_a_host_without_jupyterlab_variables(lab, host: str) -> None:
    scheme, css, body, dark = HOSTS[host]
    context, _, got, errors = mount(lab, GraphWidget(seed()), css, body, scheme)
    try:
        assert got["dark"] is dark, got
        assert (luminance(got["back"]) < 0.5) is dark, got
        assert (luminance(got["text"]) > 0.5) is dark, got  # readable: light text on dark
        if host == "VS Code dark":
            assert got["back"] == "rgb(30, 30, 30)"  # VS Code's own colours
        assert errors == []
    finally:
        context.close()
