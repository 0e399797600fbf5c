"""The browser harness itself: an anywidget renders in a real JupyterLab, and failures are caught.

The widget here is defined inline; the package's own widgets get their browser tests next to
their modules, on the same ``lab_page`` fixture.
"""

from __future__ import annotations

import re

import nbformat
import pytest

pytestmark = pytest.mark.browser

HELLO = '''
import anywidget, traitlets

class Hello(anywidget.AnyWidget):
    _esm = """
    export default {
      render({ model, el }) {
        const p = document.createElement("p");
        p.className = "hello-probe";
        const show = () => { p.textContent = `Hello, ${model.get("name")}!`; };
        show();
        model.on("change:name", show);
        el.appendChild(p);
        return () => model.off("change:name", show);
      },
    };
    """
    _css = ".hello-probe { color: var(--jp-ui-font-color1); padding: 4px; }"
    name = traitlets.Unicode("world").tag(sync=True)

Hello(name="JupyterLab")
'''

BROKEN = """
import anywidget

class Broken(anywidget.AnyWidget):
    _esm = "export default { render({ el }) { throw new Error('render exploded on purpose'); } }"

Broken()
"""

PNG = b"\x89PNG\r\n\x1a\n"


def luminance(css_color: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_anywidget_renders_in_jupyterlab(lab_page, theme: str) -> None:
    page = lab_page.open([HELLO, "print('after the widget')"], theme=theme)

    probe = page.locator(".hello-probe")
    assert probe.count() == 1
    assert probe.inner_text() == "Hello, JupyterLab!"
    printed = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]')
    assert printed.inner_text().strip() == "after the widget"  # the cells after a widget ran too

    # the theme really changed, and the widget's CSS reads JupyterLab's colour variables
    assert page.evaluate("() => document.body.dataset.jpThemeLight") == (
        "true" if theme == "light" else "false"
    )
    text = luminance(probe.evaluate("e => getComputedStyle(e).color"))
    assert text < 0.5 if theme == "light" else text > 0.5

    for shot in (lab_page.screenshot("notebook"), lab_page.screenshot("widget", probe)):
        assert shot.parent.name == f"test_anywidget_renders_in_jupyterlab-{theme}"
        assert shot.read_bytes().startswith(PNG)
    assert lab_page.page_errors == []


def test_an_error_output_fails_the_run(lab_page) -> None:
    with pytest.raises(AssertionError, match=r"cell 1 raised ZeroDivisionError"):
        lab_page.open(["x = 1", "x / 0"])


def test_a_cell_tagged_raises_exception_may_raise(lab_page, tmp_path) -> None:
    failing = nbformat.v4.new_code_cell(
        "raise ValueError('expected')", metadata={"tags": ["raises-exception"]}
    )
    nb = nbformat.v4.new_notebook(cells=[failing, nbformat.v4.new_code_cell(HELLO)])
    nbformat.write(nb, tmp_path / "tagged.ipynb")

    page = lab_page.open(tmp_path / "tagged.ipynb")
    assert page.locator(".hello-probe").inner_text() == "Hello, JupyterLab!"  # Run All went on
    assert page.get_by_text("ValueError").count() >= 1


def test_a_widget_that_fails_to_render_fails_the_run(lab_page) -> None:
    with pytest.raises(AssertionError, match="render exploded on purpose"):
        lab_page.open([BROKEN])
