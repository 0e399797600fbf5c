"""The graph widget in a real JupyterLab: what a learner sees, clicks and reads.

Every notebook goes through the real ``%%autograd_trace`` magic. Screenshots land in
``tests/artifacts/<test>/`` (the README's pictures in docs/ are copies of these).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

SEED = [
    "%load_ext torchlesson\nimport torch",
    "%%autograd_trace\n"
    "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
    "y = x * 2\n"
    "z = y + 3\n"
    "loss = z.sum()\n"
    "loss.backward()",
]

# WCAG contrast of a text colour over a background, both read from the page and composited on a
# canvas, so colour-mix(), alpha and any CSS colour syntax count as the browser paints them.
JS_CONTRAST = """([textEl, backEl]) => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const pixel = (...colours) => {
    ctx.clearRect(0, 0, 1, 1);
    for (const c of ["#fff", ...colours]) { ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1); }
    return [...ctx.getImageData(0, 0, 1, 1).data.slice(0, 3)];
  };
  const style = (el, prop) => getComputedStyle(el)[prop];
  const isSvg = (el) => el instanceof SVGElement;
  const page = getComputedStyle(document.body).backgroundColor;
  const back = pixel(page, style(backEl, isSvg(backEl) ? "fill" : "backgroundColor"));
  const text = pixel(page, style(backEl, isSvg(backEl) ? "fill" : "backgroundColor"),
                     style(textEl, isSvg(textEl) ? "fill" : "color"));
  const lum = ([r, g, b]) => {
    const lin = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const [hi, lo] = [lum(text), lum(back)].sort((a, b) => b - a);
  return { ratio: (hi + 0.05) / (lo + 0.05), text, back };
}"""


def tensor_node(widget, name: str):
    """The forward-view node of the tensor called `name` (SVG: matched on its name text)."""
    label = widget.page.locator(".tl-name").filter(has_text=re.compile(rf"^{re.escape(name)}$"))
    return widget.locator(".tl-node.kind-tensor").filter(has=label)


def svg_texts(locator) -> list[str]:
    return [t.strip() for t in locator.evaluate_all("els => els.map(e => e.textContent)")]


def test_seed_cell_select_x_switch_view_and_replay_backward(lab_page) -> None:
    page = lab_page.open(SEED)
    widget = page.locator(".torchlesson-graph")
    assert widget.count() == 1

    names = svg_texts(widget.locator(".tl-node.kind-tensor .tl-name"))
    assert sorted(names) == ["loss", "x", "y", "z"]
    ops = svg_texts(widget.locator(".tl-node.kind-op text"))
    assert ops == ["× 2", "+ 3", "sum"]
    # after backward every tensor shows the gradient that flowed into it, and x its stored .grad
    chips = svg_texts(tensor_node(widget, "y").locator(".chip-flowed text"))
    assert chips == ["∂loss/∂y = [1., 1., 1.]"]
    assert svg_texts(tensor_node(widget, "x").locator(".chip-stored text")) == ["x.grad = [2., 2., 2.]"]
    lab_page.screenshot("forward", widget)

    tensor_node(widget, "x").click()
    panel = widget.locator(".tl-panel")
    assert panel.locator("h3").inner_text().startswith("x")
    stored = panel.locator("dt", has_text="stored .grad").locator("xpath=following-sibling::dd[1]")
    assert stored.locator(".tl-values").inner_text() == "[2., 2., 2.]"
    flowed = panel.locator("dt", has_text="gradient in").locator("xpath=following-sibling::dd[1]")
    assert "∂loss/∂x" in flowed.inner_text()
    assert "line 1: x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)" in panel.inner_text()
    row = widget.locator("tbody tr[aria-selected='true']")
    assert row.locator("th").inner_text() == "x"  # the table follows the selection
    assert "tl-rel" in tensor_node(widget, "loss").get_attribute("class")  # a descendant stays lit
    page.mouse.move(1, 1)  # no tooltip in the picture
    lab_page.screenshot("forward-selected-x", widget)

    # selecting from the table selects the node
    widget.locator("tbody tr", has_text="loss").click()
    assert panel.locator("h3").inner_text().startswith("loss")
    assert "tl-sel" in tensor_node(widget, "loss").get_attribute("class")

    widget.get_by_role("button", name="Autograd view").click()
    assert widget.get_by_role("button", name="Autograd view").get_attribute("aria-pressed") == "true"
    functions = svg_texts(widget.locator(".tl-node.kind-grad_fn .tl-fn"))
    assert sorted(functions) == ["AccumulateGrad", "AddBackward0", "MulBackward0", "SumBackward0"]
    assert svg_texts(widget.locator(".tl-node.kind-grad .tl-name")) == ["x.grad"]
    widget.get_by_role("button", name="Play the backward pass").click()
    caption = widget.locator(".tl-caption")
    caption.filter(has_text="Step 4 of 4").wait_for(timeout=15_000)
    assert "AccumulateGrad added ∂loss/∂x = [2., 2., 2.] into x.grad" in caption.inner_text()
    ran = widget.locator(".tl-node.kind-grad_fn.tl-ran")
    assert ran.count() == 4  # every node the engine ran is lit, in its order
    lab_page.screenshot("autograd-replayed", widget)

    # step by step in the forward view: after two steps only loss and z have their gradient
    widget.get_by_role("button", name="Forward view").click()
    widget.get_by_role("button", name="Back to the start of the backward pass").click()
    step = widget.get_by_role("button", name="Run the next node of the backward pass")
    step.click()
    step.click()
    lit = svg_texts(widget.locator(".tl-node.kind-tensor.tl-ran .tl-name"))
    assert sorted(lit) == ["loss", "z"]
    assert "Step 2 of 4 · AddBackward0 received ∂loss/∂z = [1., 1., 1.]" in caption.inner_text()
    lab_page.screenshot("forward-replay-step-2", widget)
    assert lab_page.page_errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_text_is_readable_in_the_theme(lab_page, theme: str) -> None:
    page = lab_page.open(
        [SEED[0], SEED[1] + "\nk = torch.ones(3) * 2  # no gradient reaches it"], theme=theme
    )
    widget = page.locator(".torchlesson-graph")
    pairs = {
        "no-grad tensor's name on its faded box": (".tl-node.dimmed .tl-name", ".tl-node.dimmed .tl-box"),
        "its facts on its faded box": (".tl-node.dimmed .tl-sub", ".tl-node.dimmed .tl-box"),
        "its 'no grad' tag": (".tl-node.dimmed .tl-tag text", ".tl-node.dimmed .tl-tag rect"),
        "device badge": (".tl-device text", ".tl-device rect"),
        "requires-grad mark": ("text.tl-rg", "circle.tl-rg"),
        "tensor name on its box": (".tl-node.kind-tensor .tl-name", ".tl-node.kind-tensor .tl-box"),
        "shape and dtype on the box": (".tl-node.kind-tensor .tl-sub", ".tl-node.kind-tensor .tl-box"),
        "gradient on its chip": (".chip-flowed text", ".chip-flowed rect"),
        "stored .grad on its chip": (".chip-stored text", ".chip-stored rect"),
        "op on its pill": (".tl-node.kind-op text", ".tl-node.kind-op .tl-box"),
        "toolbar button": (".tl-btn", ".tl-btn"),
        "details panel": (".tl-panel p", ".tl-panel"),
        "tensor table": ("tbody th", None),  # None: on the widget's own background
        "caption under the graph": (".tl-caption span", None),
    }
    for what, (text, back) in pairs.items():
        back_el = widget if back is None else widget.locator(back).first
        handles = [widget.locator(text).first.evaluate_handle("e => e"), back_el.evaluate_handle("e => e")]
        contrast = page.evaluate(JS_CONTRAST, handles)
        assert contrast["ratio"] >= 4.5, f"{what} in the {theme} theme: {contrast}"
    # the widget really follows the theme: dark text on light, light text on dark
    body = page.evaluate(JS_CONTRAST, [widget.evaluate_handle("e => e"), widget.evaluate_handle("e => e")])
    assert (sum(body["back"]) > 382) == (theme == "light")
    lab_page.screenshot(f"seed-{theme}", widget)
    assert lab_page.page_errors == []


TRAINING_STEP = [
    "%load_ext torchlesson\nimport torch\nfrom torch import nn\n"
    "torch.manual_seed(0)\ninputs = torch.linspace(-2, 2, 16).unsqueeze(1)\n"
    "model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.05)",
    "%%autograd_trace\n"
    "optimizer.zero_grad()\n"
    "prediction = model(inputs)\n"
    "loss = nn.functional.mse_loss(prediction, inputs**2).sum(dim=0)\n"
    "loss.backward()",
]

# Boxes (page coordinates) of the elements `selector` matches under `root`.
JS_BOXES = """([root, selector]) => [...root.querySelectorAll(selector)].map((e) => {
  const r = e.getBoundingClientRect();
  return { text: e.textContent, left: r.left, top: r.top, right: r.right, bottom: r.bottom };
})"""


def meet(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"] - 0.5
        and b["left"] < a["right"] - 0.5
        and a["top"] < b["bottom"] - 0.5
        and b["top"] < a["bottom"] - 0.5
    )


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_training_step_gradients_and_op_arguments_sit_inside_their_boxes(lab_page, theme: str) -> None:
    page = lab_page.open(TRAINING_STEP, theme=theme)
    widget = page.locator(".torchlesson-graph")
    page.mouse.move(1, 1)  # no tooltip in the picture
    lab_page.screenshot(f"training-step-{theme}", widget)
    # the whole graph, so that no box is culled as out of view
    widget.get_by_role("button", name="Fit the whole graph in the view").click()
    root = widget.evaluate_handle("e => e")
    params = widget.locator(".tl-node.t-parameter[data-id]")  # not the legend's
    assert params.count() == 4
    for k in range(4):
        param = params.nth(k)
        name = svg_texts(param.locator(".tl-name"))[0]
        (box,) = page.evaluate(JS_BOXES, [param.evaluate_handle("e => e"), ".tl-box"])
        chips = page.evaluate(JS_BOXES, [param.evaluate_handle("e => e"), ".tl-chip"])
        # both gradients inside the box: the one that flowed in (outlined), then the stored .grad (filled)
        assert [c["text"].partition(" = ")[0] for c in chips] == [f"∂loss/∂{name}", f"{name}.grad"]
        assert svg_texts(param.locator(".chip-stored text"))[0].startswith(f"{name}.grad = ")
        for chip in chips:
            assert box["left"] <= chip["left"] < chip["right"] <= box["right"], (name, chip)
            assert box["top"] < chip["top"] < chip["bottom"] <= box["bottom"], (name, chip)
    assert widget.locator(".tl-tab").count() == 0  # nothing is drawn above a box
    titles = page.evaluate(JS_BOXES, [root, ".tl-group-header"])
    assert {t["text"].split(" ")[1] for t in titles} == {"model", "model.0", "model.1", "model.2"}
    for node in page.evaluate(JS_BOXES, [root, ".tl-node[data-id]"]):
        assert not [t["text"] for t in titles if meet(node, t)], node["text"]
    # an op's other arguments get a row of their own, inside its pill
    (op,) = [
        o for o in page.evaluate(JS_BOXES, [root, ".tl-node.kind-op[data-id]"]) if o["text"].startswith("sum")
    ]
    subs = page.evaluate(JS_BOXES, [root, ".tl-node.kind-op[data-id] .tl-sub"])
    assert sorted(s["text"] for s in subs) == ["(dim=0)", "(reduction='mean')"]
    (sub,) = [s for s in subs if s["text"] == "(dim=0)"]
    assert op["top"] < sub["top"] < sub["bottom"] <= op["bottom"]
    assert lab_page.page_errors == []


def test_a_module_box_collapses_and_expands_through_the_kernel(lab_page) -> None:
    page = lab_page.open(
        [
            "%load_ext torchlesson\nimport torch\nfrom torch import nn\n"
            "torch.manual_seed(0)\nmodel = nn.Sequential(nn.Linear(3, 2), nn.ReLU())",
            "%%autograd_trace\nloss = model(torch.randn(4, 3)).sum()\nloss.backward()",
        ]
    )
    widget = page.locator(".torchlesson-graph")
    header = widget.locator('.tl-group-header[data-group="model.0"]')
    assert "model.0" in header.text_content()
    inside = widget.locator(".tl-node.kind-tensor .tl-name").filter(has_text=re.compile("^weight$"))
    assert inside.count() == 1
    header.click()  # the widget sets `collapsed`, Python lays the graph out again

    box = widget.locator('.tl-node.kind-group[data-group="model.0"]')
    box.wait_for(timeout=15_000)
    assert "model.0" in box.text_content()
    assert inside.count() == 0  # its weight is inside the collapsed box now
    lab_page.screenshot("collapsed", widget)

    box.focus()
    page.keyboard.press("Enter")  # keyboard works as well as the mouse
    header.wait_for(timeout=15_000)
    assert box.count() == 0
    assert inside.count() == 1
    assert lab_page.page_errors == []


def inplace_notebook(folder: Path) -> Path:
    """Pitfall 4 of examples/gradient_pitfalls.ipynb: the cell fails on purpose (tagged so)."""
    cells = [
        nbformat.v4.new_code_cell("%load_ext torchlesson\nimport torch"),
        nbformat.v4.new_code_cell(
            "%%autograd_trace\n"
            "x = torch.tensor([1.0, 2.0], requires_grad=True)\n"
            "y = x.sigmoid()  # sigmoid saves y: its derivative is y * (1 - y)\n"
            "y.mul_(2)  # ...and this line changes y in place\n"
            "loss = y.sum()\n"
            "loss.backward()",
            metadata={"tags": ["raises-exception"]},
        ),
    ]
    path = folder / "inplace.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_inplace_op_that_broke_backward_is_outlined_and_named(lab_page, theme: str, tmp_path) -> None:
    page = lab_page.open(inplace_notebook(tmp_path), theme=theme)
    widget = page.locator(".torchlesson-graph")
    page.mouse.move(1, 1)  # no tooltip in the picture
    lab_page.screenshot(f"inplace-{theme}", widget)
    marked = widget.locator(".tl-node.kind-op.modified")
    assert marked.count() == 1
    assert svg_texts(marked.locator("text")) == ["×= 2", "modified a tensor backward needed"]
    (box,) = page.evaluate(JS_BOXES, [marked.evaluate_handle("e => e"), ".tl-box"])
    for text in page.evaluate(JS_BOXES, [marked.evaluate_handle("e => e"), "text"]):
        assert box["left"] <= text["left"] < text["right"] <= box["right"], text  # written whole, inside
        assert box["top"] <= text["top"] < text["bottom"] <= box["bottom"], text
    outline = marked.locator(".tl-box").evaluate("e => getComputedStyle(e).stroke")
    error_red = widget.locator(".tl-node.error .tl-box").evaluate("e => getComputedStyle(e).stroke")
    assert outline == error_red  # the same red as the failing backward
    handles = [
        marked.locator(".tl-warning").evaluate_handle("e => e"),
        marked.locator(".tl-box").evaluate_handle("e => e"),
    ]
    contrast = page.evaluate(JS_CONTRAST, handles)
    assert contrast["ratio"] >= 4.5, f"warning on its pill in the {theme} theme: {contrast}"
    # the banner says which op and where, which PyTorch's message does not
    banner = widget.locator(".tl-banner.tl-error", has_text="modified in place")
    assert banner.locator("span").nth(1).inner_text() == (
        "A tensor backward needed was modified in place by mul_ on line 3 (outlined in red):"
    )
    assert banner.locator("code").text_content() == "y.mul_(2)  # ...and this line changes y in place"
    link = banner.get_by_role("button", name="Show it")
    handles = [link.evaluate_handle("e => e"), banner.evaluate_handle("e => e")]
    assert page.evaluate(JS_CONTRAST, handles)["ratio"] >= 4.5
    widget.get_by_role("button", name="Autograd view").click()
    link.focus()
    page.keyboard.press("Enter")  # back to the forward view, the op selected and its facts shown
    assert widget.get_by_role("button", name="Forward view").get_attribute("aria-pressed") == "true"
    assert "tl-sel" in marked.get_attribute("class")
    panel = widget.locator(".tl-panel")
    assert panel.locator("h3").inner_text().startswith("mul_")
    assert "This op modified y in place, a tensor backward needed: the backward on line 5 failed" in (
        panel.inner_text()
    )
    assert "line 3: y.mul_(2)" in panel.inner_text()
    lab_page.screenshot(f"inplace-selected-{theme}", widget)
    assert lab_page.page_errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_optimizer_step_in_the_cell_draws_module_boxes_apart_and_its_updates_outside(
    lab_page, theme: str
) -> None:
    # the traced-step cell of examples/training_step.ipynb, with the step that follows it added
    cells = [
        TRAINING_STEP[0] + "\ntargets = inputs**2\nloss_fn = nn.MSELoss()",
        "%%autograd_trace\n"
        "optimizer.zero_grad()\n"
        "prediction = model(inputs)\n"
        "loss = loss_fn(prediction, targets)\n"
        "loss.backward()\n"
        "optimizer.step()",
    ]
    page = lab_page.open(cells, theme=theme)
    widget = page.locator(".torchlesson-graph")
    open_everything(widget)
    widget.get_by_role("button", name="Fit the whole graph in the view").click()
    page.mouse.move(1, 1)
    lab_page.screenshot(f"optimizer-step-{theme}", widget)
    root = widget.evaluate_handle("e => e")
    boxes = {b["text"].split(" ")[1]: b for b in page.evaluate(JS_BOXES, [root, ".tl-group"])}
    assert set(boxes) == {"model", "model.0", "model.1", "model.2", "loss_fn"}
    for a, b in [
        ("model.0", "model.1"),
        ("model.0", "model.2"),
        ("model.1", "model.2"),
        ("model", "loss_fn"),
    ]:
        assert not meet(boxes[a], boxes[b]), (a, b)
    # the updates, and the new versions of the parameters they make, ran outside any module
    updates = page.evaluate(JS_BOXES, [root, ".tl-node.kind-op.inplace[data-id], .tl-node.version[data-id]"])
    assert len(updates) == 8
    for update in updates:
        assert not [name for name, box in boxes.items() if meet(update, box)], update
    assert lab_page.page_errors == []


def test_ctrl_wheel_zooms_about_the_cursor_and_drops_text_once_settled(lab_page) -> None:
    page = lab_page.open(SEED)
    widget = page.locator(".torchlesson-graph")
    x = tensor_node(widget, "x")
    before = x.bounding_box()
    cx, cy = before["x"] + before["width"] / 2, before["y"] + before["height"] / 2
    page.mouse.move(cx, cy)
    page.keyboard.down("Control")  # ctrl + wheel zooms (plain wheel scrolls the notebook)
    for _ in range(3):
        page.mouse.wheel(0, -60)
    page.wait_for_timeout(300)
    after = x.bounding_box()
    assert after["width"] > 1.5 * before["width"]
    # the point under the cursor stays under it
    assert abs(after["x"] + after["width"] / 2 - cx) < 3
    assert abs(after["y"] + after["height"] / 2 - cy) < 3

    # far out, once the gesture settles, only boxes and edges are drawn
    for _ in range(20):
        page.mouse.wheel(0, 60)
    page.keyboard.up("Control")
    svg = widget.locator(".tl-svg")
    page.wait_for_function("el => el.classList.contains('tl-far')", arg=svg.element_handle(), timeout=5_000)
    assert not x.locator(".tl-name").is_visible()
    widget.get_by_role("button", name="Fit the whole graph in the view").click()
    page.wait_for_function("el => !el.classList.contains('tl-far')", arg=svg.element_handle(), timeout=5_000)
    assert x.locator(".tl-name").is_visible()
    assert lab_page.page_errors == []


MLP_STEP = [
    "%load_ext torchlesson\nimport torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
    "model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.01)\n"
    "inputs, targets = torch.randn(8, 20), torch.randint(0, 3, (8,))",
    "%%autograd_trace\n"
    "optimizer.zero_grad()\n"
    "loss = nn.functional.cross_entropy(model(inputs), targets)\n"
    "loss.backward()\n"
    "optimizer.step()",
]


def assert_in_view(page, widget, locator) -> None:
    """The element is drawn whole inside the graph's stage (the visible part of the graph)."""
    (stage,) = page.evaluate(JS_BOXES, [widget.evaluate_handle("e => e"), ".tl-stage"])
    box = locator.bounding_box()
    assert box is not None, "not drawn"
    assert stage["left"] <= box["x"] and box["x"] + box["width"] <= stage["right"], (box, stage)
    assert stage["top"] <= box["y"] and box["y"] + box["height"] <= stage["bottom"], (box, stage)


def open_the_step(widget) -> None:
    """The first view folds ``optimizer.step()`` into one box (NOTE [the story of a cell]); the
    learner opens it (Enter on the box, wherever it sits in the panned picture)."""
    widget.locator(".tl-node.kind-group.step").dispatch_event("keydown", {"key": "Enter", "bubbles": True})
    widget.locator(".tl-node.kind-op.inplace").first.wait_for(state="attached")


def open_everything(widget) -> None:
    """Open every collapsed box of the first view, one at a time: the picture as it was before
    NOTE [the first view] (a training step's every operation)."""
    for _ in range(50):
        closed = widget.locator(".tl-svg .tl-node.kind-group")
        count = closed.count()
        if not count:
            return
        closed.first.dispatch_event("keydown", {"key": "Enter", "bubbles": True})
        widget.page.wait_for_function(
            "([el, n]) => el.querySelectorAll('.tl-svg .tl-node.kind-group').length !== n",
            arg=[widget.element_handle(), count],
        )
    raise AssertionError("boxes kept closing")


def test_a_wide_graph_opens_where_its_story_starts(lab_page) -> None:
    """Wider than the view at a readable zoom: the first view shows the top left (the inputs, the
    first layer), not the middle; what each layer returned is named after it."""
    page = lab_page.open(MLP_STEP)
    widget = page.locator(".torchlesson-graph")
    open_everything(widget)
    page.mouse.move(1, 1)
    lab_page.screenshot("mlp-step-first-view", widget)
    for name in ("inputs", "weight"):  # `inputs`, and model.0's weight (the first box of the model)
        assert_in_view(page, widget, tensor_node(widget, name).first)
    (stage,) = page.evaluate(JS_BOXES, [widget.evaluate_handle("e => e"), ".tl-stage"])
    # the graph is really wider than the view: the optimizer's updates start out of sight
    updates = widget.locator(".tl-node.kind-op").filter(has_text="+=")
    assert updates.count() == 6
    assert any(
        (b := updates.nth(k).bounding_box()) is None or b["x"] > stage["right"]
        for k in range(updates.count())
    )
    # unnamed layer outputs: "output" inside their module's box, "model.0 output" in the table
    widget.get_by_role("button", name="Fit the whole graph in the view").click()  # nothing culled
    names = svg_texts(widget.locator(".tl-node.kind-tensor .tl-name"))  # drawn, if small at this zoom
    # the last layer's output is what `model(inputs)` returned: named by that code (the tracer names
    # a temporary by its expression), inside model.4's box as well
    assert names.count("output") == 4 and "model(inputs)" in names
    rows = widget.locator("tbody th").all_inner_texts()
    assert [r for r in rows if r.endswith(" output")] == [f"model.{k} output" for k in range(4)]
    assert "model(inputs)" in rows
    assert lab_page.page_errors == []


def test_a_stopped_recording_says_so_above_the_graph(lab_page) -> None:
    """NOTE [the tracer never breaks the cell]: what the learner sees when recording had to stop."""
    page = lab_page.open(
        [
            "%load_ext torchlesson\nimport torch\nimport torchlesson.capture._facts as facts\n"
            "def unreadable(*args, **kwargs):\n    raise RuntimeError('a tensor the tracer cannot read')\n"
            "facts.summarize_shared = unreadable  # the first gradient summary of the pass fails",
            SEED[1] + "\nprint(x.grad)",
        ]
    )
    widget = page.locator(".torchlesson-graph")
    banner = widget.locator(".tl-banner.tl-warn", has_text="stopped recording")
    assert banner.count() == 1
    assert "RuntimeError: a tensor the tracer cannot read" in banner.inner_text()
    assert "ran to the end unchanged" in banner.inner_text()
    assert page.locator(".jp-OutputArea-output", has_text="tensor([2., 2., 2.])").count() == 1
    page.mouse.move(1, 1)
    lab_page.screenshot("stopped-banner", widget)
    assert lab_page.page_errors == []


def test_a_wide_row_of_inputs_opens_on_the_operation_that_joins_them(lab_page) -> None:
    """100 leaves side by side: the first view shows the torch.cat they feed, not 4 of them."""
    page = lab_page.open(
        [
            SEED[0],
            "%%autograd_trace\nparts = [torch.ones(2, requires_grad=True) for _ in range(100)]\n"
            "joined = torch.cat(parts)\njoined.sum().backward()",
        ]
    )
    widget = page.locator(".torchlesson-graph")
    cat = widget.locator(".tl-node.kind-op").filter(has_text="cat")
    assert cat.count() == 1
    assert_in_view(page, widget, cat)
    assert tensor_node(widget, "joined").count() == 1  # drawn under it, in view with it
    # the 100 leaves the comprehension made are one folded block (NOTE [folding loops]): its box is
    # the last, named by its place in the list, and the others are a click away in the details
    assert tensor_node(widget, "parts[99]").count() == 1
    frame = widget.locator(".tl-group.fold .tl-group-header")
    assert frame.text_content().startswith("▾ × 100 · parts = [torch.ones(2")
    tensor_node(widget, "parts[99]").click()
    panel = widget.locator(".tl-panel")
    assert "× 100: this box is iteration 100, the last." in panel.inner_text()
    assert panel.get_by_role("button", name="51").count() == 0  # a sample: 1, 2, 3, …, 99, 100
    panel.get_by_role("button", name="2", exact=True).click()
    assert panel.locator("h3").inner_text().startswith("parts[1]")
    page.mouse.move(1, 1)
    lab_page.screenshot("cat-of-100-first-view", widget)
    assert lab_page.page_errors == []


def test_replay_shows_what_each_node_of_an_inplace_modified_tensor_received(lab_page) -> None:
    """y.mul_(3) gives y a second autograd node: the replay says it received 1, not y's other 3."""
    page = lab_page.open(
        [
            SEED[0],
            "%%autograd_trace\nx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ny = x * 2\n"
            "y.mul_(3)\nloss = y.sum()\nloss.backward()",
        ]
    )
    widget = page.locator(".torchlesson-graph")
    widget.get_by_role("button", name="Autograd view").click()
    step = widget.get_by_role("button", name="Run the next node of the backward pass")
    caption = widget.locator(".tl-caption")
    step.click()
    step.click()
    assert "Step 2 of 4 · MulBackward0 received ∂loss/∂y = [1., 1., 1.]" in caption.inner_text()
    step.click()
    assert "Step 3 of 4 · MulBackward0 received ∂loss/∂y = [3., 3., 3.]" in caption.inner_text()
    page.mouse.move(1, 1)
    lab_page.screenshot("inplace-replay-step-3", widget)
    # the forward view: each box of y carries the gradient its own node received
    widget.get_by_role("button", name="Forward view").click()
    chips = sorted(svg_texts(tensor_node(widget, "y").locator(".chip-flowed text")))
    assert chips == ["∂loss/∂y = [1., 1., 1.]", "∂loss/∂y = [3., 3., 3.]"]
    lab_page.screenshot("inplace-forward", widget)
    assert lab_page.page_errors == []


# the notebook as JupyterLab holds it: what a stray shortcut would change
JS_NOTEBOOK = """() => {
  const p = window.__tl.panel, kernel = p.sessionContext.session && p.sessionContext.session.kernel;
  return {types: p.content.widgets.map((c) => c.model.type), sources: p.content.widgets.map((c) =>
          c.model.sharedModel.getSource()), kernel: kernel ? kernel.id : null,
          dialogs: document.querySelectorAll('.jp-Dialog').length};
}"""


def test_keys_typed_in_the_widget_never_reach_the_notebook(lab_page) -> None:
    """Issue 10, item 11: JupyterLab's command-mode shortcuts (m: to Markdown, a/b: insert a cell,
    d d: delete it, 0 0: restart the kernel, arrows: move to another cell) must not fire while the
    focus is inside the graph, wherever it is: a toolbar button, the stage, a table row."""
    page = lab_page.open(SEED)
    widget = page.locator(".torchlesson-graph")
    before = page.evaluate(JS_NOTEBOOK)
    assert before["types"] == ["code", "code"] and before["dialogs"] == 0
    targets = [
        widget.get_by_role("button", name="Autograd view"),
        widget.locator(".tl-stage"),
        widget.locator("tbody tr").first,
    ]
    keys = ["m", "a", "b", "0", "0", "d", "d", "x", "c", "v", "z", "i", "i", "y", "Enter"]
    keys += ["ArrowDown", "ArrowUp", "ArrowLeft", "ArrowRight", "j", "k", "Shift+ArrowDown"]
    for target in targets:
        target.focus()
        for key in keys:
            page.keyboard.press(key)
        page.wait_for_timeout(300)  # a dialog or a cell change would have shown by now
        after = page.evaluate(JS_NOTEBOOK)
        assert after == before, (target, after)
        assert widget.count() == 1  # the graph is still there (m would have turned its cell to Markdown)
    # the widget's own keys still work: + zooms in, 0 fits the graph again
    viewport = widget.locator(".tl-viewport")

    def scale() -> float:
        return float(re.search(r"scale\(([\d.]+)\)", viewport.get_attribute("transform")).group(1))

    widget.locator(".tl-stage").focus()
    page.keyboard.press("0")
    page.wait_for_timeout(100)
    fitted = scale()
    page.keyboard.press("+")
    page.wait_for_timeout(100)
    assert scale() > fitted
    page.keyboard.press("0")
    page.wait_for_timeout(100)
    assert scale() == fitted
    assert page.evaluate(JS_NOTEBOOK) == before
    assert lab_page.page_errors == []
