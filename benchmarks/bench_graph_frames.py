"""Frame times of the graph widget while a learner pans and zooms a 2,000-node graph.

Opens a synthetic trace of about 2,000 forward-view nodes (tests/_synthetic.py) in a real
JupyterLab in headless Chromium (the browser tests' server and page helpers, tests/_lab.py), fits
the whole graph in view (every node painted each frame: the worst case), then drags and wheels over
it with Playwright's mouse while the page records requestAnimationFrame deltas. Prints the median
and p95 frame time per gesture next to the idle page's frames (the baseline: same page, same
machine), and how long switching views (a full redraw) takes.

    python benchmarks/bench_graph_frames.py [--nodes 2000] [--seconds 4] [--shape diamonds]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from _lab import CHROMIUM_ARGS, LabPage, LabServer, chromium_path  # noqa: E402

JS_START = """() => {
  window.__frames = [];
  window.__recording = true;
  let last = performance.now();
  const tick = (now) => {
    window.__frames.push(now - last);
    last = now;
    if (window.__recording) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
JS_STOP = "() => { window.__recording = false; return window.__frames.slice(1); }"
JS_SWITCH = """async (name) => {
  const button = document.querySelector(`.torchlesson-graph button[aria-label="${name}"]`);
  const start = performance.now();
  button.click();
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return performance.now() - start;
}"""


def stats(frames: list[float]) -> str:
    frames = sorted(frames)
    p95 = frames[min(len(frames) - 1, math.ceil(0.95 * len(frames)) - 1)]
    fps = 1000 / statistics.mean(frames)
    median = statistics.median(frames)
    return f"median {median:6.1f} ms   p95 {p95:6.1f} ms   {fps:5.1f} fps   ({len(frames)} frames)"


def record(page, gesture, seconds: float) -> list[float]:
    page.evaluate(JS_START)
    end = time.monotonic() + seconds
    step = 0
    while time.monotonic() < end:
        gesture(step)
        step += 1
    return page.evaluate(JS_STOP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--shape", default="diamonds", choices=["chain", "tree", "diamonds", "mlp"])
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    cells = [
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nimport _synthetic\n"
        "from torchlesson import GraphWidget",
        f"trace = _synthetic.SHAPES[{args.shape!r}]({args.nodes})\nGraphWidget(trace, collapsed=[])",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        server = LabServer(Path(tmp) / "lab")
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
                )
                lab_page = LabPage(server, browser, Path(tmp) / "artifacts", folder="bench")
                try:
                    page = lab_page.open(cells, timeout=600)
                    widget = page.locator(".torchlesson-graph")
                    nodes = widget.locator(".tl-nodes .tl-node").count()
                    widget.get_by_role("button", name="Fit the whole graph in the view").click()
                    box = widget.locator(".tl-stage").bounding_box()
                    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                    page.mouse.move(cx, cy)
                    page.wait_for_timeout(500)

                    idle = record(page, lambda step: page.wait_for_timeout(50), args.seconds)

                    page.mouse.down()

                    def drag(step: int) -> None:
                        page.mouse.move(cx + 150 * math.sin(step / 15), cy + 80 * math.cos(step / 15))

                    pan = record(page, drag, args.seconds)
                    page.mouse.up()
                    page.mouse.move(cx, cy)

                    def wheel(step: int) -> None:
                        page.mouse.wheel(0, -60 if (step // 20) % 2 == 0 else 60)

                    page.keyboard.down("Control")  # ctrl + wheel zooms (plain wheel scrolls the notebook)
                    zoom = record(page, wheel, args.seconds)
                    page.keyboard.up("Control")

                    switches = [
                        page.evaluate(JS_SWITCH, name)
                        for name in ["Autograd view", "Forward view", "Autograd view", "Forward view"]
                    ]
                finally:
                    lab_page.close()
                    browser.close()
        finally:
            server.stop()

    print(f"graph widget frame times: {args.shape}({args.nodes}), {nodes} nodes drawn, Chromium headless")
    print(f"  idle (baseline)  {stats(idle)}")
    print(f"  pan (drag)       {stats(pan)}")
    print(f"  zoom (wheel)     {stats(zoom)}")
    ratio = statistics.median(pan + zoom) / statistics.median(idle)
    print(f"  pan+zoom median / idle median: {ratio:.2f}x")
    print(f"  switch view (full redraw + 2 frames): median {statistics.median(switches):.0f} ms")


if __name__ == "__main__":
    main()
