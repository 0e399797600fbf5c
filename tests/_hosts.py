"""Notebook hosts we cannot start in a test (VS Code, marimo, a bare page), stood in for by a page
that defines what the host gives a widget's output: its CSS variables, its theme classes and
``color-scheme``, its page colours, and for marimo the shadow DOM it renders anywidgets in. The real
``static/quiz.js`` and ``quiz.css`` are mounted there with a model whose messages go to a real
:class:`torchlesson.QuizWidget`, so grading and feedback are the kernel's own.

``JS_CONTRAST`` measures the WCAG contrast of every piece of text in every quiz on a page (shadow
roots included), against the ground it is painted on.

The variables are the hosts' own defaults: VS Code's Light+ and Dark+ themes (the ``--vscode-*``
variables its notebook webviews define), and marimo's ``frontend/src/css/globals.css`` (light-dark()
pairs, with ``color-scheme: dark`` on the root when ``body.dark``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parents[1] / "src" / "torchlesson" / "static"

VSCODE_LIGHT = {
    "--vscode-editor-background": "#ffffff", "--vscode-editor-foreground": "#000000",
    "--vscode-descriptionForeground": "#717171", "--vscode-editorWidget-background": "#f3f3f3",
    "--vscode-panel-border": "#80808059", "--vscode-focusBorder": "#0090f1",
    "--vscode-button-background": "#007acc", "--vscode-button-foreground": "#ffffff",
    "--vscode-textCodeBlock-background": "#dcdcdc66", "--vscode-input-background": "#ffffff",
    "--vscode-input-foreground": "#616161",
}  # fmt: skip
VSCODE_DARK = {
    "--vscode-editor-background": "#1e1e1e", "--vscode-editor-foreground": "#d4d4d4",
    "--vscode-descriptionForeground": "#ccccccb3", "--vscode-editorWidget-background": "#252526",
    "--vscode-panel-border": "#80808059", "--vscode-focusBorder": "#007fd4",
    "--vscode-button-background": "#0e639c", "--vscode-button-foreground": "#ffffff",
    "--vscode-textCodeBlock-background": "#0a0a0a66", "--vscode-input-background": "#3c3c3c",
    "--vscode-input-foreground": "#cccccc",
}  # fmt: skip
MARIMO_CSS = """
:root { color-scheme: light; }
:root:has(body.dark) { color-scheme: dark; }
:root, .marimo {
  --background: light-dark(hsl(0deg 0% 100%), hsl(150deg 7.7% 10.2%));
  --foreground: light-dark(hsl(222.2deg 47.4% 11.2%), hsl(155deg 7% 93%));
  --muted: light-dark(hsl(210deg 40% 96.1%), hsl(180deg 14% 1%));
  --muted-foreground: light-dark(hsl(215.4deg 16.3% 46.9%), hsl(155deg 5% 68.3%));
  --border: light-dark(hsl(214.3deg 31.8% 91.4%), hsl(153deg 3.7% 24.2%));
  --primary: light-dark(hsl(208deg 93.5% 47.4%), hsl(192deg 59.8% 39%));
  --primary-foreground: light-dark(hsl(210deg 40% 98%), hsl(190deg 80% 84%));
  --ring: hsl(215deg 20.2% 65.1%);
}
body { background: var(--background); color: var(--foreground); font-family: sans-serif; }
"""


@dataclass(frozen=True)
class Host:
    body_class: str = ""
    variables: dict[str, str] | None = None  # on <html>
    css: str = ""
    shadow: bool = False  # marimo mounts anywidgets in a shadow root, their CSS inside it

    def page(self) -> str:
        variables = "; ".join(f"{name}: {value}" for name, value in (self.variables or {}).items())
        body_css = ""
        if self.variables:
            body_css = "body { background: var(--vscode-editor-background); color: var(--vscode-editor-foreground); }"
        return (
            f'<!doctype html><html style="{variables}"><head><style>{self.css}{body_css}</style></head>'
            f'<body class="{self.body_class}"><main id="cell" style="padding: 12px; max-width: 900px"></main></body></html>'
        )


HOSTS = {
    "vscode-light": Host(body_class="vscode-light", variables=VSCODE_LIGHT),
    "vscode-dark": Host(body_class="vscode-dark", variables=VSCODE_DARK),
    "marimo-light": Host(body_class="light light-theme", css=MARIMO_CSS, shadow=True),
    "marimo-dark": Host(body_class="dark dark-theme", css=MARIMO_CSS, shadow=True),
    # a host that defines nothing for us, light or (only by color-scheme) dark: Colab's output frame
    "bare-light": Host(css="body { font-family: sans-serif; }"),
    "bare-dark": Host(css=":root { color-scheme: dark; } body { background: #202124; color: #e8eaed; }"),
}

JS_MOUNT = """async ([js, css, shadow, state]) => {
  const module = await import(URL.createObjectURL(new Blob([js], {type: 'text/javascript'})));
  const data = {...state}, listeners = {};
  const emit = (event, ...args) => (listeners[event] || new Set()).forEach((cb) => cb(...args));
  const model = {
    get: (key) => data[key],
    on: (event, cb) => (listeners[event] ||= new Set()).add(cb),
    off: (event, cb) => listeners[event]?.delete(cb),
    send: async (message) => {  // to the kernel's QuizWidget, through the test
      const reply = await window.tlqKernel(message);
      if (reply.feedback) { data.feedback = reply.feedback; emit('change:feedback'); }
      for (const sent of reply.sent) emit('msg:custom', sent);
    },
  };
  const output = document.createElement('div');
  document.querySelector('#cell').append(output);
  const where = shadow ? output.attachShadow({mode: 'open'}) : output;
  const style = document.createElement('style');
  style.textContent = css;
  (shadow ? where : document.head).append(style);
  const el = document.createElement('div');
  where.append(el);
  module.default.render({model, el});
}"""


def mount(browser: Any, host: Host, widget: Any) -> Any:
    """A page of ``host`` showing ``widget``'s view; the view's messages reach ``widget``."""
    context = browser.new_context(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.page_errors = errors

    def kernel(message: dict) -> dict:
        sent: list[dict] = []
        widget.send = sent.append
        widget._on_message(widget, message, [])
        return {"feedback": json.loads(json.dumps(widget.feedback)), "sent": sent}

    page.expose_function("tlqKernel", kernel)
    page.set_content(host.page())
    state = {"content": widget.content, "feedback": widget.feedback}
    js, css = (
        (STATIC / "quiz.js").read_text(encoding="utf-8"),
        (STATIC / "quiz.css").read_text(encoding="utf-8"),
    )
    page.evaluate(JS_MOUNT, [js, css, host.shadow, state])
    page.locator(".torchlesson-quiz .tlq-question").first.wait_for()
    return page


JS_CONTRAST = """() => {
  const roots = [];
  const collect = (node) => {
    node.querySelectorAll('.torchlesson-quiz').forEach((root) => roots.push(root));
    node.querySelectorAll('*').forEach((e) => e.shadowRoot && collect(e.shadowRoot));
  };
  collect(document);
  const parse = (text) => {
    let m = text.match(/^rgba?\\(([^)]*)\\)/);
    if (m) {
      const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = text.match(/^color\\(srgb ([^)]*)\\)/);
    if (m) {
      const p = m[1].split(/[\\s\\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    throw new Error('unparsed colour ' + text);
  };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const up = (e) => e.parentElement || (e.getRootNode() instanceof ShadowRoot ? e.getRootNode().host : null);
  const ground = (el) => {
    const chain = [];
    for (let e = el; e; e = up(e)) chain.push(e);
    let colour = [255, 255, 255, 1];
    for (const e of chain.reverse()) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) colour = over(c, colour);
    }
    return colour;
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const found = [];
  for (const root of roots) {
    for (const el of [root, ...root.querySelectorAll('*')]) {
      const typed = el.tagName === 'INPUT' && el.type === 'text' && el.value;
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own && !typed) continue;
      const box = el.getBoundingClientRect(), style = getComputedStyle(el);
      if (!box.width || !box.height || style.visibility === 'hidden') continue;
      const under = ground(el);
      found.push({
        what: (el.className && typeof el.className === 'string' ? el.className : el.tagName.toLowerCase()),
        text: (typed ? el.value : el.textContent).trim().slice(0, 50),
        icon: el.classList.contains('tlq-icon'),
        ratio: Math.round(ratio(over(parse(style.color), under), under) * 100) / 100,
        color: style.color,
        ground: 'rgb(' + under.slice(0, 3).map(Math.round).join(', ') + ')',
      });
    }
  }
  return {roots: roots.length, painted: roots.map((r) => parse(getComputedStyle(r).backgroundColor)[3] > 0), texts: found};
}"""


def contrast_problems(page: Any) -> tuple[dict, list[dict]]:
    """Every quiz text below WCAG AA (4.5:1; 3:1 for the decorative icons beside the words)."""
    report = page.evaluate(JS_CONTRAST)
    low = [t for t in report["texts"] if t["ratio"] < (3.0 if t["icon"] else 4.5)]
    return report, low
