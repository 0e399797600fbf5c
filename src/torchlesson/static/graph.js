// torchlesson graph widget: draws the scene Python built (src/torchlesson/picture/: scene.py for the
// boxes and texts, panel.py for the details, table and replay) and handles what a learner does with
// it: select, hover, pan and zoom, replay backward, collapse modules. It formats nothing: every text
// and number arrives final, and every position too. Plain ES module for anywidget: no build step, no
// imports, DOM built with createElement(NS) and textContent only (names and source lines are user text).
//
// Synced traits (src/torchlesson/picture/widget.py): picture, view, selected, collapsed, unfolded,
// pass_index.
// The replay step, pan, zoom and focus are view-local.

/**
 * A part of a node, relative to its top-left corner (scene.py):
 * ["r", x, y, w, h, rx, style, cls] | ["t", x, y, text, style, anchor, cls] | ["c", cx, cy, r, style, cls]
 * | ["p", d, style, cls] | ["b", x, y, w, h, text, boxStyle, textStyle, anchor, cls]
 * @typedef {Array<any>} Part
 * @typedef {{id: string, ref: string, refs: string[], kind: string, cls: string[], x: number, y: number,
 *   w: number, h: number, parts: Part[], tip: string[]}} SceneNode
 * @typedef {{source: string, target: string, kind: string, d: string, label?: Part[]}} SceneEdge
 * @typedef {{id: string, style: string, x: number, y: number, w: number, h: number, depth: number,
 *   head: string, name: string}} Frame
 * @typedef {{kind: string, icon: string, text: string, code?: string,
 *   action?: {label: string, view: string, select: string}}} Banner
 * @typedef {{caption: string, at?: string, callout?: string}} Step
 * @typedef {{view: string, width: number, height: number, nodes: SceneNode[], edges: SceneEdge[],
 *   groups: Frame[], banners: Banner[], title: string,
 *   replay: {steps: Step[], when: Object<string, number>, overview: string, start: string}}} Scene
 * @typedef {string | Array<string | {text: string, ref: string}>} Rich
 * @typedef {{title: string, kind: string, rows: Array<{key: string, text: Rich, pre?: boolean,
 *   note?: string}>, alerts: string[], actions: Array<{label: string, unfold?: string, toggle?: string}>}} Details
 * @typedef {{views: Object<string, Scene>, details: Object<string, Details>,
 *   table: {heads: string[], rows: Array<{ref: string, cells: string[]}>, more: number, total: number},
 *   passes: string[]}} Picture
 */

const SVG_NS = "http://www.w3.org/2000/svg";
const STEP_MS = 900;
const ZOOM_MIN = 0.05;
const ZOOM_MAX = 4;
const READABLE_ZOOM = 1; // no text is under 11px on first sight (the picture's smallest): pan instead
const FAR_ZOOM = 0.4; // below this zoom, text would be under 5px: boxes and edges only
const TOP_ROOM = 20; // tabs above a box (scene.TOP_ROOM)
const TILE = 600; // px of layout per tile (see GraphView.tile)
const SETTLE_MS = 120; // a pan or zoom gesture has ended once no event came for this long
const ICONS = {
  play: "M4,2.5 L13,8 L4,13.5 z",
  pause: "M4,3 h3 v10 h-3 z M9,3 h3 v10 h-3 z",
  step: "M3,2.5 L10,8 L3,13.5 z M11,3 h2.5 v10 h-2.5 z",
  reset: "M8,3 a5,5 0 1 1 -4.6,3 M2.5,2.5 v4 h4",
};

// ---------------------------------------------------------------- DOM helpers

/** Set attributes/properties on a node: `text` -> textContent, `on*` -> listener, `class` may be a list. */
function assign(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.setAttribute("class", [value].flat().filter(Boolean).join(" "));
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return node;
}

/** An HTML element; string children become text nodes (never parsed as HTML). */
function h(tag, props = {}, children = []) {
  const node = assign(document.createElement(tag), props);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** An SVG element. */
function s(tag, props = {}, children = []) {
  const node = assign(document.createElementNS(SVG_NS, tag), props);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** One part of a scene node (see Part), as SVG. */
function part(p) {
  switch (p[0]) {
    case "r":
      return s("rect", { x: p[1], y: p[2], width: p[3], height: p[4], rx: p[5], class: [`s-${p[6]}`, p[7]] });
    case "t":
      return s("text", { x: p[1], y: p[2], "text-anchor": p[5] === "m" ? "middle" : null, class: [`s-${p[4]}`, p[6]], text: p[3] });
    case "c":
      return s("circle", { cx: p[1], cy: p[2], r: p[3], class: [`s-${p[4]}`, p[5]] });
    case "p":
      return s("path", { d: p[1], class: [`s-${p[2]}`, p[3]] });
    case "b": {
      const [, x, y, w, ht, text, box, style, anchor, cls] = p;
      return s("g", { class: cls }, [
        part(["r", x, y, w, ht, ht / 2, box, ""]),
        part(["t", anchor === "s" ? x + 4 : x + w / 2, y + ht / 2 + 3.6, text, style, anchor, ""]),
      ]);
    }
    default:
      return null;
  }
}

/** Rich text (a string, or segments some of which select a ref when clicked). */
function rich(value, select) {
  if (!Array.isArray(value)) return String(value ?? "");
  return h("span", {}, value.map((seg) => (typeof seg === "string" ? seg : h("button", { type: "button", class: "tl-link", text: seg.text, onclick: () => select(seg.ref) }))));
}

const icon = (name) => s("svg", { class: ["tl-icon-svg", `icon-${name}`], width: 14, height: 14, viewBox: "0 0 16 16", "aria-hidden": "true" }, [s("path", { d: ICONS[name] })]);

/** Relative luminance of a CSS colour as the browser resolves it (0 black .. 1 white), or null if transparent. */
function luminance(colour) {
  const m = colour.match(/rgba?\(([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)(?:[ ,/]+([\d.]+))?/);
  if (!m || (m[4] !== undefined && Number(m[4]) < 0.5)) return null;
  return (0.2126 * m[1] + 0.7152 * m[2] + 0.0722 * m[3]) / 255;
}

/** Keys typed inside the widget are the widget's: JupyterLab's notebook shortcuts (`m` turns the
 *  cell into Markdown, `a`/`b` insert a cell, `0 0` restarts the kernel, arrows move to another
 *  cell) must never see them. JupyterLab listens on the document, after the widget (bubbling), so
 *  stopping the event here is enough, as quiz.js does. What passes: keys with Ctrl/Cmd/Alt (save,
 *  copy), Tab (leave by keyboard), Shift+Enter (run the cell) and Escape (back to the notebook). */
function keepKeys(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.key === "Tab" || event.key === "Escape") return;
  if (event.shiftKey && event.key === "Enter") return;
  event.stopPropagation();
}

// ---------------------------------------------------------------- the view

class GraphView {
  constructor(model, host) {
    this.model = model;
    this.host = host;
    this.step = null; // null: overview (every gradient shown); k: the first k steps of the pass ran
    this.timer = 0;
    this.frame = 0;
    this.zoom = { x: 0, y: 0, k: 1 };
    this.userMoved = false;
    this.wheelActive = false;
    this.pointers = new Map();
    this.focusId = null; // the node that holds the roving tabindex
    this.reducedMotion = window.matchMedia?.("(prefers-reduced-motion: reduce)");
    this.build();
    this.draw();
    this.subscriptions = [
      ["change:picture", () => ((this.step = null), this.stopTimer(), this.draw())],
      ["change:view", () => ((this.userMoved = false), this.draw())],
      ["change:selected", () => this.paintSelection(true)],
    ];
    for (const [event, fn] of this.subscriptions) model.on(event, fn);
    this.resize = new ResizeObserver(() => this.userMoved || this.fit());
    this.resize.observe(this.stage);
    this.followTheme();
  }

  set(name, value) {
    this.model.set(name, value);
    this.model.save_changes();
  }

  /** @returns {Picture} */
  get picture() {
    return this.model.get("picture") || { views: {}, details: {}, table: { heads: [], rows: [], more: 0, total: 0 }, passes: [] };
  }

  /** @returns {Scene} */
  get scene() {
    const empty = { nodes: [], edges: [], groups: [], banners: [], width: 0, height: 0, title: "", replay: { steps: [], when: {}, overview: "", start: "" } };
    return this.picture.views[this.model.get("view")] || empty;
  }

  /** Follow the host's theme: dark when the background the widget sits on is dark (JupyterLab,
   *  VS Code, marimo, Colab or a plain page alike), else the OS preference if nothing is painted. */
  followTheme() {
    const apply = () => {
      let lum = null;
      for (let el = this.host; el && lum === null; el = el.parentElement) lum = luminance(getComputedStyle(el).backgroundColor);
      if (lum === null) lum = luminance(getComputedStyle(document.documentElement).backgroundColor);
      const dark = lum === null ? Boolean(window.matchMedia?.("(prefers-color-scheme: dark)").matches) : lum < 0.5;
      this.root.classList.toggle("tl-dark", dark);
    };
    requestAnimationFrame(apply);
    this.themeWatch = new MutationObserver(() => requestAnimationFrame(apply));
    for (const el of [document.documentElement, document.body]) this.themeWatch.observe(el, { attributes: true, attributeFilter: ["class", "style", "data-theme", "data-jp-theme-light", "data-jp-theme-name"] });
    this.colorScheme = window.matchMedia?.("(prefers-color-scheme: dark)");
    this.colorScheme?.addEventListener?.("change", apply);
    this.applyTheme = apply;
  }

  // ------------------------------------------------------------ shell

  build() {
    const button = (text, label, onclick) => h("button", { type: "button", class: "tl-btn", "aria-label": label, title: label, onclick }, [text]);
    this.viewButtons = ["forward", "autograd"].map((view) => {
      const name = view === "forward" ? "Forward" : "Autograd";
      const b = button(name, `${name} view`, () => this.set("view", view));
      b.dataset.view = view;
      return b;
    });
    this.passPicker = h("select", { class: "tl-select", "aria-label": "Backward pass", onchange: (e) => this.set("pass_index", Number(e.target.value)) });
    this.playButton = button("", "Play the backward pass", () => this.togglePlay());
    this.stepButton = button("", "Run the next node of the backward pass", () => this.advance());
    this.stepButton.append(icon("step"), "Step");
    this.resetButton = button("", "Back to the start of the backward pass", () => this.resetReplay());
    this.resetButton.append(icon("reset"), "Reset");
    this.toolbar = h("div", { class: "tl-toolbar" }, [
      h("div", { class: "tl-seg", role: "group", "aria-label": "View" }, this.viewButtons),
      h("div", { class: "tl-seg tl-replay", role: "group", "aria-label": "Replay backward" }, [
        h("span", { class: "tl-label", text: "Replay backward" }),
        this.passPicker,
        this.playButton,
        this.stepButton,
        this.resetButton,
      ]),
      h("div", { class: "tl-seg tl-zoom", role: "group", "aria-label": "Zoom" }, [
        button("−", "Zoom out", () => this.zoomBy(1 / 1.25)),
        button("+", "Zoom in", () => this.zoomBy(1.25)),
        button("Fit", "Fit the whole graph in the view", () => this.fit(true)),
      ]),
    ]);
    this.banners = h("div", { class: "tl-banners" });
    this.svg = s("svg", { class: "tl-svg", role: "group", "aria-roledescription": "computational graph" });
    this.viewport = s("g", { class: "tl-viewport" });
    this.layers = {};
    for (const name of ["groups", "edges", "nodes", "overlay"]) this.viewport.append((this.layers[name] = s("g", { class: `tl-${name}` })));
    this.svg.append(markers(), this.viewport);
    this.tooltip = h("div", { class: "tl-tooltip", role: "tooltip", id: `tl-tip-${Math.random().toString(36).slice(2)}`, hidden: true });
    this.caption = h("div", { class: "tl-caption" });
    this.live = h("div", { class: "tl-live", "aria-live": "polite" }); // announced: the selection and the replay's step
    this.hint = h("div", { class: "tl-hint", "aria-hidden": "true", text: "Ctrl + scroll to zoom, or click the graph first" });
    this.stage = h("div", { class: "tl-stage", tabindex: 0, role: "application", "aria-label": "Graph: Tab to its boxes; arrows pan, + and − zoom, 0 fits" }, [this.svg, this.tooltip, this.hint]);
    this.panel = h("aside", { class: "tl-panel", "aria-label": "Details" });
    this.tableBox = h("details", { class: "tl-table" });
    this.root = h("div", { class: "torchlesson-graph" }, [
      this.toolbar,
      this.banners,
      h("div", { class: "tl-main" }, [h("div", { class: "tl-stage-col" }, [this.stage, this.caption]), this.panel]),
      this.tableBox,
      this.live,
    ]);
    this.root.addEventListener("keydown", keepKeys);
    this.host.append(this.root);
    this.listen();
  }

  // ------------------------------------------------------------ drawing

  draw() {
    const scene = this.scene;
    const view = this.model.get("view");
    for (const b of this.viewButtons) b.setAttribute("aria-pressed", String(b.dataset.view === view));
    for (const layer of Object.values(this.layers)) layer.replaceChildren();
    this.nodeEls = new Map();
    this.edgeEls = [];
    this.hovered = null;
    this.nodes = new Map(scene.nodes.map((n) => [n.id, n]));
    this.adjacency(scene);
    for (const frame of [...scene.groups].sort((a, b) => a.depth - b.depth)) this.layers.groups.append(this.drawFrame(frame));
    this.tiles = new Map();
    for (const edge of scene.edges) {
      const el = s("g", { class: ["tl-edge", `kind-${edge.kind}`], "data-source": edge.source, "data-target": edge.target }, [
        s("path", { d: edge.d, class: `s-edge-${edge.kind}`, "marker-end": `url(#tl-arrow-${edge.kind})` }),
        ...(edge.label || []).map(part),
      ]);
      this.edgeEls.push([edge, el]);
      const a = this.nodes.get(edge.source);
      const b = this.nodes.get(edge.target);
      const box = a && b ? [Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x + a.w, b.x + b.w), Math.max(a.y + a.h, b.y + b.h)] : [0, 0, scene.width, scene.height];
      this.tile([box[0], box[1]], box).edges.append(el);
    }
    // the tab stop starts on the first box in reading order: the top, then the left
    const first = [...scene.nodes].sort((a, b) => a.y - b.y || a.x - b.x)[0];
    if (!this.nodes.has(this.focusId)) this.focusId = first ? first.id : null;
    for (const node of scene.nodes) {
      const el = this.drawNode(node);
      this.nodeEls.set(node.id, el);
      this.tile([node.x, node.y], [node.x, node.y - 2 * TOP_ROOM, node.x + node.w + 10, node.y + node.h + 20]).nodes.append(el);
    }
    this.svg.setAttribute("aria-label", scene.title);
    this.svg.classList.toggle("view-forward", view === "forward");
    // one height for both views, so switching views does not make the notebook jump
    const tallest = Math.max(0, ...Object.values(this.picture.views).map((v) => v.height || 0));
    this.stage.style.height = `${Math.round(Math.min(Math.max(tallest + TOP_ROOM + 24, 220), 580))}px`;
    this.drawBanners(scene);
    this.drawToolbar();
    this.drawTable();
    this.paintSelection(false);
    this.paintReplay();
    if (!this.userMoved) this.fit();
    else this.applyTransform();
  }

  /** The tile (a square of the layout) that holds what is drawn at `point`; `box` grows its bounds.
   *  Tiles out of view are not displayed at all, so a pan repaints only what can be seen. */
  tile([x, y], box) {
    const key = `${Math.floor(x / TILE)},${Math.floor(y / TILE)}`;
    let tile = this.tiles.get(key);
    if (!tile) {
      tile = { edges: s("g"), nodes: s("g"), box: [Infinity, Infinity, -Infinity, -Infinity], shown: true };
      this.layers.edges.append(tile.edges);
      this.layers.nodes.append(tile.nodes);
      this.tiles.set(key, tile);
    }
    const b = tile.box;
    tile.box = [Math.min(b[0], box[0]), Math.min(b[1], box[1]), Math.max(b[2], box[2]), Math.max(b[3], box[3])];
    return tile;
  }

  /** Show only the tiles that meet the visible part of the layout (stage `W` x `H` px); small zooms
   *  drop the text. During a gesture (`settled` false) tiles are only shown, never hidden, and the
   *  level of detail stays: the settled pass does that once. */
  cull(W, H, settled = true) {
    const { x, y, k } = this.zoom;
    const [x0, y0, x1, y1] = [-x / k, -y / k, (W - x) / k, (H - y) / k];
    for (const tile of this.tiles.values()) {
      const [a, b, c, d] = tile.box;
      const shown = !W || (c >= x0 && a <= x1 && d >= y0 && b <= y1);
      if (shown === tile.shown || (!shown && !settled)) continue;
      tile.shown = shown;
      for (const g of [tile.edges, tile.nodes]) g.style.display = shown ? "" : "none";
    }
    if (!settled) return;
    const far = k < FAR_ZOOM;
    if (far !== this.far) this.svg.classList.toggle("tl-far", (this.far = far));
  }

  drawFrame(frame) {
    const header = s("g", { class: "tl-group-header", tabindex: 0, role: "button", "aria-expanded": "true", "aria-label": frame.name, "data-group": frame.id }, [
      s("rect", { x: frame.x, y: frame.y, width: frame.w, height: 19, rx: 6, class: `s-head-${frame.style}` }),
      s("text", { x: frame.x + 8, y: frame.y + 13.5, class: "s-t-head", text: frame.head }),
    ]);
    return s("g", { class: ["tl-group", frame.style, `depth-${frame.depth}`], "data-id": frame.id }, [
      s("rect", { class: ["tl-group-box", `s-frame-${frame.style}`], x: frame.x, y: frame.y, width: frame.w, height: frame.h, rx: 8 }),
      header,
    ]);
  }

  drawNode(node) {
    const collapsed = node.kind === "group";
    const g = s("g", {
      class: ["tl-node", `kind-${node.kind}`, ...node.cls],
      "data-id": node.id,
      transform: `translate(${node.x}, ${node.y})`,
      tabindex: node.id === this.focusId ? 0 : -1,
      role: "button",
      "aria-label": node.tip.join(", "),
      "aria-expanded": collapsed ? "false" : null,
      "data-group": collapsed ? node.ref : null,
    });
    for (const p of node.parts) {
      const el = part(p);
      if (el) g.append(el);
    }
    return g;
  }

  drawBanners(scene) {
    const select = (action) => () => (this.set("view", action.view), this.set("selected", action.select));
    this.banners.replaceChildren(
      ...scene.banners.map((b) =>
        h("div", { class: ["tl-banner", `tl-${b.kind}`], role: b.kind === "error" ? "alert" : "note" }, [
          h("span", { class: "tl-icon", "aria-hidden": "true", text: b.icon }),
          h("span", { text: b.text }),
          b.code ? h("code", { text: b.code }) : null,
          b.action ? h("button", { type: "button", class: "tl-link", text: b.action.label, onclick: select(b.action) }) : null,
        ]),
      ),
    );
  }

  drawToolbar() {
    const passes = this.picture.passes;
    const current = this.model.get("pass_index");
    this.passPicker.hidden = passes.length < 2;
    this.passPicker.replaceChildren(...passes.map((text, i) => h("option", { value: i, selected: i === current, text })));
    const none = !passes.length;
    for (const b of [this.playButton, this.stepButton, this.resetButton]) b.disabled = none;
    if (none) this.playButton.title = "This cell ran no backward pass";
  }

  drawTable() {
    const table = this.picture.table;
    const rows = table.rows.map((row) => h("tr", { tabindex: 0, "data-id": row.ref, "aria-selected": "false" }, row.cells.map((c, i) => h(i ? "td" : "th", { scope: i ? null : "row", title: c.length > 40 ? c : null, text: c }))));
    this.rowEls = new Map(rows.map((r) => [r.dataset.id, r]));
    if (!this.tableBox.dataset.touched) this.tableBox.open = table.total <= 40;
    this.tableBox.replaceChildren(
      h("summary", { text: `Tensors (${table.total})` }),
      h("div", { class: "tl-table-scroll", tabindex: 0, role: "region", "aria-label": "Tensors" }, [
        h("table", {}, [h("thead", {}, [h("tr", {}, table.heads.map((x) => h("th", { scope: "col", text: x })))]), h("tbody", {}, rows)]),
      ]),
      ...(table.more ? [h("p", { class: "tl-muted", text: `${table.more} more tensors are not listed.` })] : []),
    );
  }

  // ------------------------------------------------------------ selection and details

  adjacency(scene) {
    this.succ = new Map();
    this.pred = new Map();
    for (const e of scene.edges) {
      if (!this.succ.has(e.source)) this.succ.set(e.source, []);
      if (!this.pred.has(e.target)) this.pred.set(e.target, []);
      this.succ.get(e.source).push(e.target);
      this.pred.get(e.target).push(e.source);
    }
  }

  /** All node ids reachable from `start` along `edges` (iterative, no recursion limit). */
  reach(start, edges) {
    const seen = new Set(start);
    const todo = [...start];
    while (todo.length) for (const next of edges.get(todo.pop()) || []) if (!seen.has(next)) (seen.add(next), todo.push(next));
    return seen;
  }

  paintSelection(fromModel) {
    const selected = this.model.get("selected");
    const chosen = selected ? [...this.nodes.values()].filter((n) => n.ref === selected || (n.refs || []).includes(selected)).map((n) => n.id) : [];
    const up = this.reach(chosen, this.pred);
    const down = this.reach(chosen, this.succ);
    const any = chosen.length > 0;
    this.svg.classList.toggle("has-selection", any);
    for (const [id, el] of this.nodeEls) {
      el.classList.toggle("tl-sel", chosen.includes(id));
      el.setAttribute("aria-pressed", String(chosen.includes(id)));
      el.classList.toggle("tl-rel", any && (up.has(id) || down.has(id)));
    }
    for (const [edge, el] of this.edgeEls) {
      const on = (up.has(edge.source) && up.has(edge.target)) || (down.has(edge.source) && down.has(edge.target));
      el.classList.toggle("tl-rel", any && on);
    }
    for (const [id, row] of this.rowEls || []) {
      const on = id === selected;
      row.setAttribute("aria-selected", String(on));
      if (on && fromModel) {
        const box = row.closest(".tl-table-scroll");
        if (box && (row.offsetTop < box.scrollTop || row.offsetTop > box.scrollTop + box.clientHeight - 30)) box.scrollTop = row.offsetTop - 30;
      }
    }
    if (fromModel && chosen.length) this.reveal(this.nodes.get(chosen[0]));
    this.showDetails(selected);
  }

  select(ref) {
    this.set("selected", ref && ref === this.model.get("selected") ? null : ref || null);
  }

  showDetails(ref) {
    const d = ref ? this.picture.details[ref] : null;
    if (!d) {
      this.panel.replaceChildren(h("h3", { text: "Details" }), h("p", { class: "tl-muted", text: "Click a box or a table row (or Tab to a box and press Enter) to see its facts. Drag to pan; hover for a quick look." }), legend());
      return;
    }
    const pick = (id) => this.set("selected", id);
    const rows = d.rows.flatMap((row) => [
      h("dt", { text: row.key }),
      h("dd", {}, [row.note ? h("div", { class: "tl-dd-note", text: row.note }) : null, row.pre ? h("pre", { class: "tl-values", text: row.text }) : rich(row.text, pick)]),
    ]);
    const unfold = (id) => () => this.set("unfolded", [...new Set([...(this.model.get("unfolded") || []), id])]);
    this.panel.replaceChildren(
      h("h3", {}, [d.title, h("span", { class: "tl-kind", text: d.kind })]),
      h("dl", {}, rows),
      ...d.alerts.map((text) => h("div", { class: "tl-banner tl-error" }, [h("span", { text })])),
      // an action unfolds a loop, opens a collapsed box, or folds an opened story back into its box
      ...d.actions.map((a) => h("button", { type: "button", class: "tl-btn", text: a.label, onclick: a.toggle ? () => this.toggleGroup(a.toggle) : unfold(a.unfold) })),
    );
    this.live.textContent = `Selected ${d.title} (${d.kind})`;
  }

  // ------------------------------------------------------------ replay

  paintReplay() {
    const { steps, when, overview, start } = this.scene.replay;
    const step = this.step;
    const replaying = step !== null;
    this.svg.classList.toggle("replaying", replaying);
    const at = (id) => (id in when ? when[id] : Infinity);
    for (const [id, el] of this.nodeEls) {
      el.classList.toggle("tl-ran", replaying && at(id) <= step);
      el.classList.toggle("tl-cur", replaying && at(id) === step);
    }
    for (const [edge, el] of this.edgeEls) {
      const [a, b] = [at(edge.source), at(edge.target)];
      el.classList.toggle("tl-ran", replaying && a <= step && b <= step);
      el.classList.toggle("tl-cur", replaying && Math.max(a, b) === step);
    }
    this.playButton.replaceChildren(icon(this.timer ? "pause" : "play"), this.timer ? "Pause" : "Play");
    this.playButton.setAttribute("aria-label", this.timer ? "Pause the replay" : "Play the backward pass");
    this.playButton.setAttribute("aria-pressed", String(Boolean(this.timer)));
    const hadFocus = document.activeElement === this.stepButton;
    this.stepButton.disabled = !steps.length || (replaying && step >= steps.length);
    if (hadFocus && this.stepButton.disabled) this.resetButton.focus(); // never drop the focus to <body>
    const current = replaying && step > 0 ? steps[step - 1] : null;
    const text = !this.picture.passes.length ? "" : !replaying ? overview : current ? current.caption : start;
    this.caption.replaceChildren(...(text ? [h("span", { class: replaying ? null : "tl-muted", text })] : []));
    if (replaying) this.live.textContent = text;
    this.callout(current);
  }

  /** The bubble beside the box that just got its gradient: the gradient, as Python wrote it. */
  callout(step) {
    this.layers.overlay.replaceChildren();
    const node = step && step.at && this.nodes.get(step.at);
    if (!node) return;
    const text = s("text", { class: "s-t-callout", text: step.callout });
    const rect = s("rect", { height: 22, rx: 6, class: "s-callout" });
    const arrow = s("path", { class: "s-callout-arrow" });
    this.layers.overlay.append(s("g", { class: "tl-callout" }, [arrow, rect, text]));
    const w = text.getComputedTextLength() + 16;
    // beside the box where the stage has room for both (the view pans to them), else under it:
    // a narrow output never cuts it off
    let x = node.x + node.w + 12;
    let y = node.y + node.h / 2;
    let tip = `M${x - 9},${y} L${x + 1},${y - 6} L${x + 1},${y + 6} z`;
    if ((node.w + 24 + w) * this.zoom.k > this.stage.clientWidth - 8) {
      x = node.x + node.w / 2 - w / 2;
      y = node.y + node.h + 20;
      tip = `M${node.x + node.w / 2},${y - 20} L${node.x + node.w / 2 - 6},${y - 10} L${node.x + node.w / 2 + 6},${y - 10} z`;
    }
    assign(rect, { x, y: y - 11, width: w });
    assign(text, { x: x + 8, y: y + 4 });
    arrow.setAttribute("d", tip);
    const [left, top] = [Math.min(x - 10, node.x), Math.min(y - 11, node.y)];
    this.reveal({ x: left, y: top, w: Math.max(x + w + 10, node.x + node.w) - left, h: Math.max(y + 11, node.y + node.h) - top });
  }

  advance() {
    const total = this.scene.replay.steps.length;
    if (!total) return;
    if (this.step === null || this.step >= total) this.step = 0;
    this.step += 1;
    if (this.step >= total) this.stopTimer();
    this.paintReplay();
  }

  togglePlay() {
    if (this.timer) return (this.stopTimer(), this.paintReplay());
    const total = this.scene.replay.steps.length;
    if (!total) return;
    if (this.step === null || this.step >= total) this.step = 0;
    if (this.reducedMotion && this.reducedMotion.matches) {
      this.step = total; // no animation: every node at once
      return this.paintReplay();
    }
    this.timer = setInterval(() => this.advance(), STEP_MS);
    this.advance();
  }

  stopTimer() {
    clearInterval(this.timer);
    this.timer = 0;
  }

  resetReplay() {
    this.stopTimer();
    this.step = 0;
    this.paintReplay();
  }

  // ------------------------------------------------------------ pan and zoom

  /** Move the one viewport <g> (coalesced to one update per frame); nothing is laid out again.
   *  A `gesture` (drag, wheel, pinch) defers culling and the level of detail until it settles. */
  applyTransform(gesture = false) {
    clearTimeout(this.settleTimer);
    this.settled = !gesture;
    if (gesture) this.settleTimer = setTimeout(() => ((this.settled = true), this.requestFrame()), SETTLE_MS);
    this.requestFrame();
  }

  requestFrame() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.paintTransform());
  }

  paintTransform() {
    this.frame = 0;
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    if (this.wheelDelta) {
      const rect = this.stage.getBoundingClientRect();
      const factor = Math.exp(-this.wheelDelta * 0.004);
      this.wheelDelta = 0;
      this.zoomTo(factor, this.wheelAt[0] - rect.left, this.wheelAt[1] - rect.top);
    }
    const { x, y, k } = this.zoom;
    this.viewport.setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)}) scale(${k.toFixed(4)})`);
    this.cull(W, H, this.settled);
  }

  /** Where a graph too wide to read whole starts its story: the first operation the cell ran (the
   *  forward view), else the topmost node (the autograd view's root). */
  storyStart() {
    let first = null;
    let firstAt = Infinity;
    let top = null;
    for (const n of this.nodes.values()) {
      const at = n.kind === "op" && /^o\d+$/.test(n.ref) ? Number(n.ref.slice(1)) : Infinity;
      if (at < firstAt) [first, firstAt] = [n, at];
      if (n.kind !== "group" && (!top || n.y < top.y || (n.y === top.y && n.x < top.x))) top = n;
    }
    return first || top;
  }

  /** Show the whole graph (`all`, the Fit button), or, on first sight, the whole graph only while
   *  its text stays readable (never under 11px), else the top of it at a readable zoom, across from
   *  where its story starts: the learner pans, the text never shrinks to nothing. */
  fit(all = false) {
    const scene = this.scene;
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    if (!W || !H || !scene.width) return;
    const pad = 12;
    const height = scene.height + TOP_ROOM;
    let k = Math.min((W - 2 * pad) / scene.width, (H - 2 * pad) / height, 1.25);
    if (!all && k < READABLE_ZOOM) k = Math.min(1, Math.max(READABLE_ZOOM, (W - 2 * pad) / scene.width));
    const y = height * k <= H - 2 * pad ? (H - height * k) / 2 : pad;
    let x = (W - scene.width * k) / 2;
    if (scene.width * k > W - 2 * pad) {
      const start = this.storyStart();
      const centred = start ? W / 2 - (start.x + start.w / 2) * k : pad;
      x = Math.min(pad, Math.max(W - pad - scene.width * k, centred));
    }
    this.wheelDelta = 0;
    this.zoom = { k, x, y: y + TOP_ROOM * k };
    this.applyTransform();
  }

  zoomTo(factor, cx, cy) {
    const { x, y, k } = this.zoom;
    const next = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, k * factor));
    this.zoom = { k: next, x: cx - ((cx - x) * next) / k, y: cy - ((cy - y) * next) / k };
    this.userMoved = true;
  }

  zoomBy(factor, cx = this.stage.clientWidth / 2, cy = this.stage.clientHeight / 2, gesture = false) {
    this.zoomTo(factor, cx, cy);
    this.applyTransform(gesture);
  }

  panBy(dx, dy, gesture = false) {
    this.zoom = { ...this.zoom, x: this.zoom.x + dx, y: this.zoom.y + dy };
    this.userMoved = true;
    this.applyTransform(gesture);
  }

  /** Pan as little as brings a box into view (a selection from the table, a box reached by
   *  keyboard, the replay's bubble); one wider than the stage shows its left part. */
  reveal(node) {
    if (!node) return;
    const { x, y, k } = this.zoom;
    const [W, H] = [this.stage.clientWidth, this.stage.clientHeight];
    const [left, top, right, bottom] = [node.x * k + x, node.y * k + y, (node.x + node.w) * k + x, (node.y + node.h) * k + y];
    const shift = (lo, hi, size) => (hi > size - 4 ? Math.max(size - 4 - hi, 4 - lo) : lo < 4 ? 4 - lo : 0);
    const [dx, dy] = [shift(left, right, W), shift(top, bottom, H)];
    if (!dx && !dy) return;
    this.zoom = { k, x: x + dx, y: y + dy };
    this.userMoved = true;
    this.applyTransform();
  }

  // ------------------------------------------------------------ events (delegated: one listener per kind)

  listen() {
    const stage = this.stage;
    let press = null;
    stage.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      this.wheelActive = true;
      this.pointers.set(e.pointerId, [e.clientX, e.clientY]);
      press = { x: e.clientX, y: e.clientY, moved: false, target: e.target };
    });
    stage.addEventListener("pointermove", (e) => {
      if (!this.pointers.has(e.pointerId)) return this.hover(e.target, e.clientX, e.clientY);
      const [px, py] = this.pointers.get(e.pointerId);
      if (this.pointers.size === 2) {
        const [a, b] = [...this.pointers.values()];
        const before = Math.hypot(a[0] - b[0], a[1] - b[1]);
        this.pointers.set(e.pointerId, [e.clientX, e.clientY]);
        const [c, d] = [...this.pointers.values()];
        const rect = stage.getBoundingClientRect();
        if (before > 0) this.zoomBy(Math.hypot(c[0] - d[0], c[1] - d[1]) / before, (c[0] + d[0]) / 2 - rect.left, (c[1] + d[1]) / 2 - rect.top, true);
        if (press) press.moved = true;
        return;
      }
      this.pointers.set(e.pointerId, [e.clientX, e.clientY]);
      if (press && !press.moved && Math.hypot(e.clientX - press.x, e.clientY - press.y) > 4) {
        press.moved = true;
        stage.setPointerCapture(e.pointerId);
        stage.classList.add("panning");
        this.tooltip.hidden = true;
      }
      if (press && press.moved) this.panBy(e.clientX - px, e.clientY - py, true);
    });
    const release = (e) => {
      this.pointers.delete(e.pointerId);
      stage.classList.remove("panning");
      if (press && !press.moved && e.type === "pointerup") this.click(press.target);
      if (!this.pointers.size) press = null;
    };
    stage.addEventListener("pointerup", release);
    stage.addEventListener("pointercancel", release);
    stage.addEventListener("pointerleave", () => ((this.wheelActive = false), (this.tooltip.hidden = true), (this.hovered = null)));
    stage.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    stage.addEventListener("keydown", (e) => this.key(e));
    stage.addEventListener("dblclick", (e) => {
      const box = e.target.closest?.(".tl-node[data-group]"); // a collapsed box opens on a double click too
      if (box) this.toggleGroup(box.dataset.group);
    });
    stage.addEventListener("focusin", (e) => {
      const el = e.target.closest?.(".tl-node");
      if (!el) return;
      this.rove(el.dataset.id, false);
      const box = el.getBoundingClientRect();
      this.hover(el, box.left + box.width / 2, box.bottom - 4);
    });
    stage.addEventListener("focusout", () => (this.tooltip.hidden = true));
    this.tableBox.addEventListener("click", (e) => {
      const row = e.target.closest("tr[data-id]");
      if (row) this.select(row.dataset.id);
    });
    this.tableBox.addEventListener("keydown", (e) => {
      const row = e.target.closest("tr[data-id]");
      if (row && (e.key === "Enter" || e.key === " ")) (e.preventDefault(), this.select(row.dataset.id));
      if (row && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
        e.preventDefault();
        const next = e.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
        if (next) next.focus();
      }
    });
    this.tableBox.addEventListener("toggle", () => (this.tableBox.dataset.touched = "1"));
  }

  click(target) {
    // a frame's header and a collapsed box's "+" open or close it; the rest of a collapsed box
    // selects it, like any box: its details say what is inside and have a button to open it
    const group = target.closest?.("[data-group]");
    const box = group && group.classList.contains("tl-node") && !target.closest(".tl-expand");
    if (group && !box) return this.toggleGroup(group.dataset.group);
    const el = target.closest?.(".tl-node");
    const frame = !el && target.closest?.(".tl-group[data-id]");
    if (frame) return this.select(frame.dataset.id); // a module's or a loop's box: its details
    if (!el) return this.set("selected", null);
    const node = this.nodes.get(el.dataset.id);
    if (node) (this.rove(node.id, false), this.select(node.ref));
  }

  toggleGroup(path) {
    const now = new Set(this.scene.nodes.filter((n) => n.kind === "group").map((n) => n.ref));
    for (const view of Object.values(this.picture.views)) for (const n of view.nodes) if (n.kind === "group") now.add(n.ref);
    if (now.has(path)) now.delete(path);
    else now.add(path);
    this.set("collapsed", [...now].sort());
  }

  wheel(e) {
    if (!(e.ctrlKey || e.metaKey || this.wheelActive)) {
      this.hint.classList.add("show");
      clearTimeout(this.hintTimer);
      this.hintTimer = setTimeout(() => this.hint.classList.remove("show"), 1200);
      return;
    }
    e.preventDefault();
    const delta = Math.max(-60, Math.min(60, e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY));
    this.wheelDelta = (this.wheelDelta || 0) + delta;
    this.wheelAt = [e.clientX, e.clientY];
    this.userMoved = true;
    this.applyTransform(true);
  }

  /** Move the roving tabindex to node `id` (and the focus, if `focus`). */
  rove(id, focus = true) {
    const before = this.nodeEls.get(this.focusId);
    const el = this.nodeEls.get(id);
    if (!el) return;
    if (before) before.setAttribute("tabindex", "-1");
    el.setAttribute("tabindex", "0");
    this.focusId = id;
    if (focus) {
      this.reveal(this.nodes.get(id));
      el.focus({ preventScroll: true });
    }
  }

  /** The nearest box in the direction of an arrow key, from box `node` (spatial navigation). */
  neighbour(node, key) {
    const [dx, dy] = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[key];
    const cx = node.x + node.w / 2;
    const cy = node.y + node.h / 2;
    let best = null;
    let bestScore = Infinity;
    for (const other of this.nodes.values()) {
      if (other === node) continue;
      const ox = other.x + other.w / 2 - cx;
      const oy = other.y + other.h / 2 - cy;
      const along = ox * dx + oy * dy;
      if (along <= 1) continue;
      const score = along + 3 * Math.abs(ox * dy + oy * dx);
      if (score < bestScore) [best, bestScore] = [other, score];
    }
    return best;
  }

  key(e) {
    const group = e.target.closest?.("[data-group]");
    if (group && (e.key === "Enter" || e.key === " ")) return (e.preventDefault(), this.toggleGroup(group.dataset.group));
    const nodeEl = e.target.closest?.(".tl-node");
    const node = nodeEl && this.nodes.get(nodeEl.dataset.id);
    if (node && (e.key === "Enter" || e.key === " ")) return (e.preventDefault(), this.select(node.ref));
    if (node && e.key.startsWith("Arrow")) {
      e.preventDefault();
      const next = this.neighbour(node, e.key);
      return next && this.rove(next.id);
    }
    if (node && (e.key === "Home" || e.key === "End")) {
      e.preventDefault();
      const list = [...this.nodes.values()];
      return this.rove((e.key === "Home" ? list[0] : list[list.length - 1]).id);
    }
    const moves = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] };
    if (moves[e.key]) return (e.preventDefault(), this.panBy(...moves[e.key]));
    if (e.key === "+" || e.key === "=") return this.zoomBy(1.25);
    if (e.key === "-") return this.zoomBy(1 / 1.25);
    if (e.key === "0") return this.fit(true);
    if (e.key === "Escape") return this.set("selected", null);
  }

  /** The tooltip of the node under `target` (a pointer, or a box that got the focus) at (cx, cy). */
  hover(target, cx, cy) {
    const el = target.closest?.(".tl-node");
    const node = el && this.nodes.get(el.dataset.id);
    if (!node) return ((this.tooltip.hidden = true), (this.hovered = null));
    if (this.hovered !== node.id) {
      this.hovered = node.id;
      this.tooltip.replaceChildren(...node.tip.map((text, i) => h(i ? "div" : "strong", { text })));
    }
    this.tooltip.hidden = false;
    const rect = this.stage.getBoundingClientRect();
    const box = this.tooltip.getBoundingClientRect();
    // inside the stage whatever its width: left of the pointer where the right side has no room
    let left = cx - rect.left + 14;
    if (left + box.width > rect.width - 4) left = Math.max(4, cx - rect.left - box.width - 14);
    let top = cy - rect.top + 14;
    if (top + box.height > rect.height - 4) top = Math.max(4, cy - rect.top - box.height - 14);
    this.tooltip.style.transform = `translate(${left}px, ${top}px)`;
  }

  destroy() {
    this.stopTimer();
    cancelAnimationFrame(this.frame);
    clearTimeout(this.settleTimer);
    clearTimeout(this.hintTimer);
    this.resize.disconnect();
    this.themeWatch.disconnect();
    this.colorScheme?.removeEventListener?.("change", this.applyTheme);
    for (const [event, fn] of this.subscriptions) this.model.off(event, fn);
    this.root.remove();
  }
}

// ---------------------------------------------------------------- static pieces

function markers() {
  const arrow = (kind) => s("marker", { id: `tl-arrow-${kind}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, [s("path", { d: "M0,1 L9,5 L0,9 z", class: `s-arrow-${kind}` })]);
  return s("defs", {}, [arrow("data"), arrow("grad"), arrow("cut")]);
}

/** What the shapes mean, for the panel when nothing is selected (never colour alone: every swatch has a word). */
function legend() {
  const item = (label, parts) => h("li", {}, [s("svg", { class: "tl-swatch", width: 46, height: 22, "aria-hidden": "true" }, parts.map(part)), h("span", { text: label })]);
  const box = (style, rx, inner) => [["r", 1, 2, 44, 18, rx, style, ""], ...(inner ? [["r", 3.5, 4.5, 39, 13, Math.max(rx - 2, 1), inner, ""]] : [])];
  return h("ul", { class: "tl-legend", "aria-label": "Legend" }, [
    item("leaf tensor (requires_grad, you made it)", box("box-leaf", 9, "inner-leaf")),
    item("parameter (nn.Parameter of a module)", box("box-param", 3, "inner-param")),
    item("intermediate (has a grad_fn)", box("box-intermediate", 9)),
    item("no grad: gradients never reach it", box("box-constant", 9)),
    item("operation, as the code wrote it", [["r", 1, 4, 44, 14, 7, "box-op", ""]]),
    item("∂loss/∂y: gradient that flowed through (not kept)", [["r", 1, 5, 44, 12, 6, "chip-flowed", ""]]),
    item("x.grad: gradient stored on a leaf", [["r", 1, 5, 44, 12, 6, "chip-stored", ""]]),
    item("gradient stops here (detach, no_grad…)", [["p", "M2,11 L44,11", "edge-cut", ""]]),
  ]);
}

export default {
  render({ model, el }) {
    const view = new GraphView(model, el);
    return () => view.destroy();
  },
};
