"""Static renderings: the SVG/HTML a saved notebook shows, and DOT for Graphviz users."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import nbformat
import pytest
from nbconvert import HTMLExporter

from _synthetic import TraceBuilder, failing_matmul, mlp, seed
from test_layout import inplace_broke_backward
from torchlesson.picture.layout import layout
from torchlesson.picture.picture import Picture
from torchlesson.picture.svg import to_dot, to_html, to_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def groups_of(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()]


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def hostile_trace() -> dict:
    """Names, values and messages that would break or inject into markup if not escaped."""
    b = TraceBuilder()
    bold = b.leaf("<b>", [2])
    script = b.op("mul", [bold, "'\"&<x>"], "</svg><script>", shape=[2])
    b.op("add", [script, 1], 'a"b\\c', shape=[2])
    b.modules["m<1>"] = "Evil&Co"
    b.tensors[-1]["module"] = "m<1>"
    b.error = {
        "type": "RuntimeError",
        "message": "bad </text> & \x1b[31mred\x1b[0m",
        "line": 4,
        "op": None,
        "op_name": "<op>",
        "inputs": [{"shape": [2]}],
    }
    return b.to_dict()


@pytest.mark.parametrize("view", ["forward", "autograd"])
@pytest.mark.parametrize("make", [seed, lambda: mlp(40), hostile_trace])
def test_svg_is_xml_with_one_group_per_node_and_edge(make, view: str) -> None:
    trace = make()
    root = parse(to_svg(trace, view))
    lay = Picture(trace).layout(view)  # the first view (NOTE [the first view]) is what the SVG draws
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    nodes = groups_of(root, "tl-node")
    assert sorted(g.get("data-id") for g in nodes) == sorted(n["id"] for n in lay["nodes"])
    assert len(groups_of(root, "tl-edge")) == len(lay["edges"])
    assert all(g.find(f"{SVG}title") is not None for g in nodes)  # hover text in browsers


def test_user_text_stays_text() -> None:
    svg = to_svg(hostile_trace())
    root = parse(svg)
    assert not [e for e in root.iter() if e.tag.removeprefix(SVG) in {"script", "b", "x", "op"}]
    shown = texts(root)
    assert "<b>" in shown
    assert "</svg><script>" in shown
    assert 'a"b\\c' in shown
    assert "× '\"&<x>" in shown
    assert any(t.startswith("RuntimeError on line 4: bad </text> & [31mred") for t in shown)
    assert "\x1b" not in svg
    (box,) = groups_of(root, "tl-group")
    assert texts(box)[0].startswith("▾ m<1> · Evil")  # the header, clipped to the box as the widget does
    assert box.find(f"{SVG}title").text == "Module m<1> · Evil&Co: collapse"


def test_svg_shows_what_the_lesson_talks_about() -> None:
    b = TraceBuilder()
    x = b.leaf("x", [3], device="cuda:0")
    c = b.leaf("c", [3], requires_grad=False)
    y = b.op("mul", [x, c], "y")
    d = b.op("detach", [y], "d")
    b.cuts.append({"tensor": d, "source": y, "reason": "detach", "line": 4, "op": b.ops[-1]["id"]})
    b.backward(b.op("sum", [y], "loss", shape=[]))
    root = parse(to_svg(b.to_dict()))
    nodes = {g.get("data-id"): g for g in groups_of(root, "tl-node")}

    def rect(node_id: str) -> ET.Element:
        return nodes[node_id].find(f"{SVG}rect")

    assert float(rect(x).get("stroke-width")) > float(rect(y).get("stroke-width"))  # leaf: thicker
    assert rect(c).get("opacity") is not None  # no gradient reaches it: its box fades...
    assert [t.get("opacity") for t in nodes[c].iter(f"{SVG}text")] == [None] * len(
        texts(nodes[c])
    )  # ...not its text
    assert rect(y).get("opacity") is None
    assert texts(nodes[y])[:2] == ["y", "[3] float32"]
    assert "∂loss/∂y = [1., 1., 1.]" in texts(nodes[y])
    (badge,) = groups_of(nodes[x], "tl-device")
    assert texts(badge) == ["cuda:0"]
    assert "cuda" in badge.get("class")
    assert texts(groups_of(nodes[y], "tl-device")[0]) == ["cpu"]
    assert badge.find(f"{SVG}rect").get("stroke") != groups_of(nodes[y], "tl-device")[0].find(
        f"{SVG}rect"
    ).get("stroke")
    (cut,) = [g for g in groups_of(root, "tl-edge") if "kind-cut" in g.get("class").split()]
    line = cut.find(f"{SVG}path")
    assert line.get("stroke-dasharray")
    assert line.get("stroke") == "#cf222e"
    assert texts(cut) == ["✂ detach"]
    title = nodes[x].find(f"{SVG}title").text
    assert "requires_grad=True" in title
    assert "cuda:0" in title


def test_gradients_are_drawn_inside_the_box_flowed_outlined_stored_filled() -> None:
    lay = {n["id"]: n for n in layout(seed())["nodes"]}
    root = parse(to_svg(seed()))
    x = next(g for g in groups_of(root, "tl-node") if texts(g)[0] == "x")
    box = x.find(f"{SVG}rect")
    (flowed,) = groups_of(x, "chip-flowed")
    (stored,) = groups_of(x, "chip-stored")
    assert texts(flowed) == ["∂loss/∂x = [2., 2., 2.]"]
    assert texts(stored) == ["x.grad = [2., 2., 2.]"]
    flowed_rect, stored_rect = flowed.find(f"{SVG}rect"), stored.find(f"{SVG}rect")
    assert flowed_rect.get("stroke-dasharray") and flowed_rect.get("fill") == "#ffffff"  # outlined
    assert not stored_rect.get("stroke-dasharray") and stored_rect.get("fill") != "#ffffff"  # filled
    assert stored.find(f"{SVG}text").get("font-weight") == "700"
    top, bottom = float(box.get("y")), float(box.get("y")) + float(box.get("height"))
    assert float(box.get("height")) == lay[x.get("data-id")]["h"] == 68
    rows = [
        (float(r.get("y")), float(r.get("y")) + float(r.get("height"))) for r in (flowed_rect, stored_rect)
    ]
    assert top < rows[0][0] < rows[0][1] <= rows[1][0] < rows[1][1] < bottom  # inside, one under the other
    name_y = float(x.find(f"{SVG}text").get("y"))
    assert top < name_y < rows[0][0]  # the name stays above the rows
    y = next(g for g in groups_of(root, "tl-node") if texts(g)[0] == "y")
    assert groups_of(y, "chip-stored") == []  # a non-leaf stores no .grad


def test_op_arguments_are_written_on_a_second_row_inside_the_pill() -> None:
    b = TraceBuilder()
    x = b.leaf("x", [3])
    b.op("leaky_relu", [x, 0.2], "h")
    root = parse(to_svg(b.to_dict()))
    (op,) = [g for g in groups_of(root, "tl-node") if "kind-op" in g.get("class").split()]
    assert texts(op) == ["leaky_relu", "(0.2)"]
    pill = op.find(f"{SVG}rect")
    top, bottom = float(pill.get("y")), float(pill.get("y")) + float(pill.get("height"))
    baselines = [float(t.get("y")) for t in op.iter(f"{SVG}text")]
    assert top + 10 <= baselines[0] < baselines[1] <= bottom - 3


def test_failing_op_is_red_with_its_input_shapes() -> None:
    b, _, _ = failing_matmul()
    root = parse(to_svg(b.to_dict()))
    (error,) = [g for g in groups_of(root, "tl-node") if "error" in g.get("class").split()]
    assert texts(error) == ["✕ matmul", "inputs [2, 3], [4, 5]"]
    assert error.find(f"{SVG}rect").get("stroke") == "#cf222e"
    assert any("mat1 and mat2" in t for t in texts(root))


def pictures(html: str) -> list[str]:
    """The SVG pictures an HTML fallback holds (NOTE [pictures that survive sanitizers] in svg.py)."""
    images = [tag for tag in re.findall(r"<img\b[^>]*>", html) if 'class="torchlesson-picture"' in tag]
    found = [re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', tag) for tag in images]
    return [base64.b64decode(data.group(1)).decode("utf-8") for data in found if data]


def test_html_fallback_has_both_views_a_caption_and_a_table() -> None:
    html = to_html(seed())
    root = ET.fromstring(html)  # a well-formed fragment
    assert [parse(svg).get("data-view") for svg in pictures(html)] == ["forward", "autograd"]
    forward, autograd = (img for img in root.iter("img"))
    assert forward.get("alt").startswith("Forward graph: 4 tensors")
    details = root.find("details")
    assert details is not None
    assert details.find(".//img") is autograd
    caption = "".join(root.findall("div")[1].itertext())
    assert "4 tensors" in caption
    assert "x.grad = [2., 2., 2.]" in caption
    table = root.findall("details")[-1]
    rows = [[td.text for td in tr.iter("td")] for tr in table.iter("tr")][1:]
    assert rows[0][:2] == ["x", "[3]"] and rows[0][-2:] == ["[2., 2., 2.]", "[2., 2., 2.]"]
    assert "<script" not in html
    assert "<style" not in html
    assert "<svg" not in html  # inline SVG is stripped to a jumble of its texts where untrusted


def test_exported_notebook_shows_the_static_picture_when_no_widget_state_was_saved() -> None:
    """What `jupyter nbconvert --to html` (and nbviewer) show for the widget's output."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%%autograd_trace\nloss.backward()")
    bundle = {
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": "m1",
        },
        "text/html": to_html(seed()),
        "text/plain": "<Trace>",
    }
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nb.cells = [cell]
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "∂loss/∂y = [1., 1., 1.]" in pictures(body)[0]
    assert len(pictures(body)) == 2
    assert "application/vnd.jupyter.widget-view+json" not in body


def dot_statements(dot: str) -> tuple[list[str], str]:
    """The quoted strings of a DOT source (unescaped) and the source with them removed."""
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', dot)
    rest = re.sub(r'"(?:[^"\\]|\\.)*"', "", dot)
    unescape = {"n": "\n", "\\": "\\", '"': '"'}
    return [re.sub(r"\\(.)", lambda m: unescape.get(m[1], "\\" + m[1]), s) for s in strings], rest


def test_dot_quotes_ids_and_labels() -> None:
    trace = hostile_trace()
    dot = to_dot(trace)
    strings, rest = dot_statements(dot)
    assert '"' not in rest
    assert rest.count("{") == rest.count("}")
    assert "</svg><script>\n[2] float32" in strings
    assert any(s.startswith('a"b\\c\n[2] float32') for s in strings)
    lay = layout(trace)
    assert rest.count("->") == len(lay["edges"])
    assert rest.count("[label=") == len(lay["nodes"])


def test_dot_nests_module_clusters_and_dashes_cuts() -> None:
    b = TraceBuilder()
    x = b.leaf("x", [3])
    y = b.op("mul", [x, 2], "y", module="net.0")
    d = b.op("detach", [y], "d", module="net.1")
    b.cuts.append({"tensor": d, "source": y, "reason": "detach", "line": 3, "op": b.ops[-1]["id"]})
    dot = to_dot(b.to_dict())
    assert dot.index('subgraph "cluster_net" {') < dot.index('subgraph "cluster_net.0" {')
    assert re.search(r'-> "t2" \[[^]]*style=dashed[^]]*label="detach"', dot)


def test_error_outside_torch_is_a_red_line_not_a_node() -> None:
    b = TraceBuilder()
    b.leaf("x", [3])
    b.error = {"type": "NameError", "message": "name 'y' is not defined", "line": 2, "op": None}
    root = parse(to_svg(b.to_dict()))
    assert [g.get("data-id") for g in groups_of(root, "tl-node")] == ["t0"]
    assert "NameError on line 2: name 'y' is not defined" in texts(root)


def test_the_inplace_op_that_broke_backward_is_outlined_in_red_and_named_with_its_line(ipython) -> None:
    trace = inplace_broke_backward(ipython)
    culprit = next(op for op in trace["ops"] if op["id"] == trace["error"]["modified_by"])
    assert culprit["line"] == 3
    root = parse(to_svg(trace))
    (op,) = [g for g in groups_of(root, "tl-node") if "modified" in g.get("class").split()]
    assert texts(op) == ["×= 2", "modified a tensor backward needed"]
    assert op.find(f"{SVG}rect").get("stroke") == "#cf222e"
    pill = op.find(f"{SVG}rect")
    top, bottom = float(pill.get("y")), float(pill.get("y")) + float(pill.get("height"))
    assert all(top + 10 <= float(t.get("y")) <= bottom - 3 for t in op.iter(f"{SVG}text"))  # inside
    assert "modified a tensor backward needed" in op.find(f"{SVG}title").text
    others = [g for g in groups_of(root, "tl-node") if g is not op and "kind-op" in g.get("class").split()]
    assert all(
        g.find(f"{SVG}rect").get("stroke") != "#cf222e" for g in others if "error" not in g.get("class")
    )
    # the caption under the picture names the op and its line, as the text summary does
    footer = [t for t in texts(root) if "modified in place" in t]
    assert footer == [
        "A tensor backward needed was modified in place by mul_ on line 3 (outlined in red): "
        "y.mul_(2)  # ...and this line changes y in place"
    ]
    assert "modified a tensor backward needed" in to_dot(trace)
    # the autograd view has no such op: no caption line either
    assert not [t for t in texts(parse(to_svg(trace, "autograd"))) if "modified in place" in t]


def test_the_readme_export_command_keeps_the_pictures(tmp_path) -> None:
    """README: `jupyter nbconvert --to html --execute` stores widget state, and the export then shows
    only the widget (blank offline); with store_widget_state=False it shows the static pictures."""
    cell = nbformat.v4.new_code_cell(
        "%load_ext torchlesson\nimport torch\nx = torch.ones(2, requires_grad=True)\n(x * 3).sum().backward()"
    )
    traced = nbformat.v4.new_code_cell(
        "%%autograd_trace\ny = torch.ones(2, requires_grad=True)\n(y * 3).sum().backward()"
    )
    nb = nbformat.v4.new_notebook(cells=[cell, traced])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "lesson.ipynb")
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute"]
    for flags, name in (([], "with-state"), (["--ExecutePreprocessor.store_widget_state=False"], "without")):
        subprocess.run([*command, *flags, "--output", name, str(tmp_path / "lesson.ipynb")],
                       check=True, capture_output=True, timeout=300)  # fmt: skip
        page = (tmp_path / f"{name}.html").read_text(encoding="utf-8")
        shown = pictures(page)
        if name == "with-state":
            assert shown == [] and "application/vnd.jupyter.widget-state+json" in page
        else:
            assert len(shown) == 2 and "y.grad = [3., 3.]" in shown[0]
