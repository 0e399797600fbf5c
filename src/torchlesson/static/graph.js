// torchlesson graph widget: draws the layout computed in Python (src/torchlesson/_layout.py: ranks
// and order; _placement.py: pixels; _graph.py: nodes and box sizes; _labels.py: texts) for a
// traced cell, replays backward in the order the engine ran it, and explains every tensor.
// Plain ES module for anywidget: no build step, no imports, DOM built with createElement(NS) and
// textContent only (tensor names and source lines are user text).
//
// Synced traits (src/torchlesson/_graph_widget.py): trace, layouts, view, selected, collapsed,
// pass_index. The replay step, pan and zoom are view-local.

const SVG_NS = "http://www.w3.org/2000/svg";
const STEP_MS = 900;
const ZOOM_MIN = 0.05;
const ZOOM_MAX = 4;
const TABLE_ROWS = 300;
// px per character of the 12px / 10.5px monospace fonts: the same budget _labels.py measures texts with
// and _graph.py sizes boxes with
const CHAR_W = 7.3;
const READABLE_ZOOM = 0.75; // below this the 10.5px facts are too small to read
const TOP_ROOM = 20;
const TILE = 600; // px of layout per tile (see GraphView.tile)
const FAR_ZOOM = 0.4; // below this zoom, text would be under 5px: boxes and edges only
const SETTLE_MS = 120; // a pan or zoom gesture has ended once no event came for this long
const SMALL_W = 6.3;
// a tensor's box: name and facts, then one row per gradient (NOTE [gradient rows] in _graph.py)
const TENSOR_H = 38;
const GRAD_ROW_H = 14;

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

// ---------------------------------------------------------------- formatting (torch-like)

const isNum = (v) => typeof v === "number";

/** A formatter for all values of one tensor, as torch prints them: `2.` / `0.5000` / `1.0000e-05`. */
function numberFormat(values, dtype = "float32") {
  if (/bool/.test(dtype)) return (v) => (v === true ? "True" : v === false ? "False" : String(v));
  if (/int|long|short|uint/.test(dtype)) return (v) => String(v);
  const finite = [values].flat(Infinity).filter((v) => isNum(v) && Number.isFinite(v));
  const mags = finite.map(Math.abs).filter((v) => v > 0);
  const big = mags.length ? Math.max(...mags) : 0;
  const small = mags.length ? Math.min(...mags) : 1;
  if (finite.every(Number.isInteger) && big < 1e8) return (v) => (isNum(v) ? `${v}.` : String(v));
  if (big >= 1e8 || small < 1e-4) {
    return (v) => (isNum(v) ? v.toExponential(4).replace(/e([+-])(\d)$/, "e$10$2") : String(v));
  }
  return (v) => (isNum(v) ? v.toFixed(4) : String(v));
}

/** Nested values as one line: `[[1., 2.], [3., 4.]]`, or a scalar. */
function valuesText(values, dtype, fmt = numberFormat(values, dtype)) {
  if (!Array.isArray(values)) return fmt(values);
  return `[${values.map((v) => valuesText(v, dtype, fmt)).join(", ")}]`;
}

/** Nested values with one row per line, like torch's repr of a matrix. */
function valuesBlock(values, dtype) {
  const fmt = numberFormat(values, dtype);
  if (!Array.isArray(values) || !values.some(Array.isArray)) return valuesText(values, dtype, fmt);
  const rows = values.map((row) => valuesText(row, dtype, fmt));
  return `[${rows.join(",\n ")}]`;
}

const shapeText = (shape) => (shape && shape.length ? `[${shape.join(", ")}]` : "[] scalar");
const pyBool = (v) => (v ? "True" : "False");
/** How many characters of `charW` px fit a box `w` px wide with _graph.py's 16 px of padding. */
const fits = (w, charW) => Math.floor((w - 15) / charW + 0.05);
const clip = (text, max) => (text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text);

/** A summary in at most `max` characters: its values when they fit, else its norm (as _labels.py
 *  writes it, so the text fits the box _graph.py made). Python drops the stats of a summary that
 *  has its values; the norm is then computed from them. */
function summaryText(summary, max = 48) {
  if (!summary) return "—";
  const values = summary.values;
  if (values !== undefined && values !== null) {
    const text = valuesText(values, summary.dtype);
    if (text.length <= max) return text;
  }
  let norm = summary.norm;
  if ((norm === undefined || norm === null) && values !== undefined && values !== null) {
    const flat = [values].flat(Infinity).filter(isNum);
    norm = Math.sqrt(flat.reduce((acc, v) => acc + v * v, 0));
  }
  if (norm === undefined || norm === null || !isNum(norm)) return `${shapeText(summary.shape)} (no stats)`;
  return `norm ${Number(norm.toPrecision(4))}`;
}

// ---------------------------------------------------------------- trace index

/** A summary with the facts Python left out because they are its tensor's (see _graph_widget.py). */
function fillSummary(summary, tensor) {
  if (!summary) return null;
  const own = tensor ? { shape: tensor.shape, dtype: tensor.dtype } : {};
  return { ...own, ...summary };
}

/** Lookups the drawing needs, rebuilt when `trace` changes. Fields Python left out at their
 *  default (NOTE [what the browser gets] in _graph_widget.py) are filled back in here. */
function indexTrace(trace) {
  const tensorList = (trace.tensors || []).map((t) => ({
    retains_grad: false,
    created: true,
    module: null,
    grad_fn: null,
    node: null,
    ...t,
    value: fillSummary(t.value, t),
    grad: fillSummary(t.grad, t),
  }));
  const tensors = new Map(tensorList.map((t) => [t.id, t]));
  const passes = (trace.backward || []).map((p) => ({
    ...p,
    grads: Object.fromEntries(Object.entries(p.grads || {}).map(([id, g]) => [id, fillSummary(g, tensors.get(id))])),
  }));
  const ops = new Map((trace.ops || []).map((o) => [o.id, o]));
  const nodes = new Map((trace.nodes || []).map((n) => [n.id, n]));
  return { trace, tensorList, tensors, ops, nodes, passes, lines: trace.lines || [] };
}

// unnamed tensors carry the label _labels.tensor_label gave them (compact_trace)
const tensorName = (t) => (t ? t.name || t.label : "?");

/** The gradient autograd node `ag` received for its tensor `t` in `pass`: its own where two nodes
 *  of one tensor ran (an in-place op made a new version: NOTE [gradients of in-place versions]). */
function receivedBy(pass, ag, t) {
  if (pass && pass.node_grads && ag && pass.node_grads[ag.id]) return pass.node_grads[ag.id];
  return t && pass && pass.grads ? pass.grads[t.id] : undefined;
}

/** The `∂loss/∂y` of a backward pass (torch.autograd.grad and several roots included); the root as
 *  _labels.root_label writes it. */
function gradLabel(index, pass, tensor, name = tensorName(tensor)) {
  const roots = (pass.root || []).map((id) => tensorName(index.tensors.get(id)));
  const root = roots.length === 1 ? roots[0] : "out";
  return `∂${root}/∂${name}`;
}

/** The tensor a layout node stands for (tensor, autograd node, stored-grad node), or undefined. */
function tensorOf(index, node) {
  if (index.tensors.has(node.ref)) return index.tensors.get(node.ref);
  const ag = index.nodes.get(node.ref);
  return ag ? index.tensors.get(ag.tensor) : undefined;
}

/** Ids that mean the same thing across views: a tensor and its autograd node. */
function equivalentRefs(index, ref) {
  const refs = new Set([ref]);
  const t = index.tensors.get(ref);
  if (t && t.node) refs.add(t.node);
  const ag = index.nodes.get(ref);
  if (ag && ag.tensor) refs.add(ag.tensor);
  return refs;
}

/** A rounded label: `<g><rect/><text/></g>` at (x, y), text centred unless anchor is "start". */
function pill(cls, x, y, w, ht, text, anchor = "middle") {
  return s("g", { class: cls, transform: `translate(${x}, ${y})` }, [
    s("rect", { width: w, height: ht, rx: ht / 2 }),
    s("text", { x: anchor === "start" ? 4 : w / 2, y: ht / 2 + 3.6, "text-anchor": anchor, text }),
  ]);
}

/** A constant argument as the code passed it: `2`, or `requires_grad=True` for a keyword. */
const argText = (input) => (input.arg ? `${input.arg}=${input.value}` : String(input.value));

const sourceLine = (index, line) => (line ? (index.lines[line - 1] || "").trim() : "");

// ---------------------------------------------------------------- the view

class GraphView {
  constructor(model, host) {
    this.model = model;
    this.host = host;
    this.index = indexTrace(model.get("trace"));
    this.step = null; // null: overview (every gradient shown); k: the first k nodes of the pass ran
    this.timer = 0;
    this.frame = 0;
    this.zoom = { x: 0, y: 0, k: 1 };
    this.userMoved = false;
    this.wheelActive = false;
    this.pointers = new Map();
    this.reducedMotion = window.matchMedia?.("(prefers-reduced-motion: reduce)");
    this.build();
    this.redrawAll();
    this.subscriptions = [
      ["change:trace", () => ((this.index = indexTrace(model.get("trace"))), this.redrawAll())],
      ["change:layouts", () => this.draw()],
      ["change:view", () => ((this.userMoved = false), this.draw())],
      ["change:selected", () => this.paintSelection(true)],
      ["change:pass_index", () => ((this.step = null), this.stopTimer(), this.redrawAll())],
    ];
    for (const [event, fn] of this.subscriptions) model.on(event, fn);
    this.resize = new ResizeObserver(() => this.userMoved || this.fit());
    this.resize.observe(this.stage);
  }

  set(name, value) {
    this.model.set(name, value);
    this.model.save_changes();
  }

  get layout() {
    const layouts = this.model.get("layouts") || {};
    return layouts[this.model.get("view")] || { nodes: [], edges: [], groups: [], width: 0, height: 0 };
  }

  get pass() {
    return this.index.passes[this.model.get("pass_index")] || null;
  }

  // ------------------------------------------------------------ shell

  build() {
    const button = (text, label, onclick, extra = {}) =>
      h("button", { type: "button", class: "tl-btn", "aria-label": label, title: label, onclick, ...extra }, [text]);
    this.viewButtons = ["forward", "autograd"].map((view) =>
      button(view === "forward" ? "Forward" : "Autograd", `${view === "forward" ? "Forward" : "Autograd"} view`, () =>
        this.set("view", view),
      ),
    );
    this.passPicker = h("select", { class: "tl-select", "aria-label": "Backward pass", onchange: (e) => this.set("pass_index", Number(e.target.value)) });
    this.playButton = button("", "Play the backward pass", () => this.togglePlay());
    this.stepButton = button("", "Run the next node of the backward pass", () => this.advance());
    this.stepButton.append(icon("step"), "Step");
    this.resetButton = button("", "Back to the start of the backward pass", () => this.resetReplay());
    this.resetButton.append(icon("reset"), "Reset");
    this.toolbar = h("div", { class: "tl-toolbar", role: "toolbar", "aria-label": "Graph controls" }, [
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

    this.svg = s("svg", { class: "tl-svg", role: "img", "aria-roledescription": "computational graph" });
    this.viewport = s("g", { class: "tl-viewport" });
    this.layers = {};
    for (const name of ["groups", "edges", "nodes", "overlay"]) this.viewport.append((this.layers[name] = s("g", { class: `tl-${name}` })));
    this.svg.append(markers(), this.viewport);
    this.tooltip = h("div", { class: "tl-tooltip", role: "tooltip", hidden: true });
    this.caption = h("div", { class: "tl-caption", "aria-live": "polite" });
    this.hint = h("div", { class: "tl-hint", "aria-hidden": "true", text: "Ctrl + scroll to zoom, or click the graph first" });
    this.stage = h("div", { class: "tl-stage", tabindex: 0, "aria-label": "Graph: drag to pan, + and − to zoom, 0 to fit, arrows to move" }, [
      this.svg,
      this.tooltip,
      this.hint,
    ]);
    this.panel = h("aside", { class: "tl-panel", "aria-label": "Details", "aria-live": "polite" });
    this.tableBox = h("details", { class: "tl-table" });
    this.root = h("div", { class: "torchlesson-graph" }, [
      this.toolbar,
      this.banners,
      h("div", { class: "tl-main" }, [h("div", { class: "tl-stage-col" }, [this.stage, this.caption]), this.panel]),
      this.tableBox,
    ]);
    this.root.addEventListener("keydown", keepKeys);
    this.host.append(this.root);
    this.listen();
  }

  /** Everything that depends on the trace or the pass: the table, then the graph. */
  redrawAll() {
    this.drawTable();
    this.draw();
  }

  // ------------------------------------------------------------ drawing

  draw() {
    const layout = this.layout;
    const view = this.model.get("view");
    for (const b of this.viewButtons) b.setAttribute("aria-pressed", String(b.textContent.toLowerCase() === view));
    for (const layer of Object.values(this.layers)) layer.replaceChildren();
    this.nodeEls = new Map();
    this.edgeEls = [];
    this.hovered = null;
    const nodes = layout.nodes.map((n) => ({ ref: n.id, sublabel: null, group: null, classes: [], ...n }));
    this.layoutNodes = new Map(nodes.map((n) => [n.id, n]));
    this.adjacency(layout);
    const groups = [...(layout.groups || [])].filter((g) => !g.collapsed).sort((a, b) => (a.depth || 0) - (b.depth || 0));
    for (const group of groups) this.layers.groups.append(this.drawGroup(group));
    this.tiles = new Map();
    for (const edge of layout.edges) {
      const el = this.drawEdge(edge);
      this.edgeEls.push([edge, el]);
      const xs = edge.points.map((p) => p[0]);
      const ys = edge.points.map((p) => p[1]);
      this.tile(edge.points[0], [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)]).edges.append(el);
    }
    for (const node of nodes) {
      const el = this.drawNode(node);
      this.nodeEls.set(node.id, el);
      const box = [node.x - node.w / 2, node.y - node.h / 2 - 2 * TOP_ROOM, node.x + node.w / 2 + 10, node.y + node.h / 2 + 20];
      this.tile([node.x, node.y], box).nodes.append(el);
    }
    this.svg.setAttribute("aria-label", `${view} graph with ${layout.nodes.length} nodes`);
    this.svg.classList.toggle("view-forward", view === "forward");
    // one height for both views, so switching views does not make the notebook jump
    const tallest = Math.max(...Object.values(this.model.get("layouts") || {}).map((l) => l.height || 0), 0);
    this.stage.style.height = `${Math.round(Math.min(Math.max(tallest + TOP_ROOM + 24, 220), 580))}px`;
    this.runOrder();
    this.drawBanners(layout);
    this.drawToolbar();
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
   *  level of detail stays: hiding tiles or all text restyles thousands of nodes, which took frames
   *  of 150 ms when a wheel zoom crossed FAR_ZOOM. The settled pass does that once. */
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
    // one class on the svg; the CSS hides the text of its descendants
    if (far !== this.far) this.svg.classList.toggle("tl-far", (this.far = far));
  }

  drawGroup(group) {
    const header = s("g", {
      class: "tl-group-header",
      tabindex: 0,
      role: "button",
      "aria-expanded": "true",
      "aria-label": `Module ${group.label}: collapse`,
      "data-group": group.id,
    }, [
      s("rect", { x: group.x, y: group.y, width: group.w, height: 19, rx: 6 }),
      s("text", { x: group.x + 8, y: group.y + 13.5, text: clip(`▾ ${group.label}`, Math.floor((group.w - 12) / 6.4)) }),
    ]);
    return s("g", { class: ["tl-group", `depth-${group.depth || 0}`] }, [
      s("rect", { class: "tl-group-box", x: group.x, y: group.y, width: group.w, height: group.h, rx: 8 }),
      header,
    ]);
  }

  drawEdge(edge) {
    const d = edgePath(edge.points);
    const cls = ["tl-edge", `kind-${edge.kind}`];
    const g = s("g", { class: cls, "data-source": edge.source, "data-target": edge.target }, [
      s("path", { d, "marker-end": `url(#tl-arrow-${edge.kind === "cut" || edge.kind === "grad" ? edge.kind : "edge"})` }),
    ]);
    if (edge.label) {
      const [mx, my] = midpoint(edge.points);
      const text = `✂ ${edge.label}`;
      const w = text.length * 6.6 + 12;
      g.append(
        s("g", { class: "tl-edge-label", transform: `translate(${mx}, ${my})` }, [
          s("rect", { x: -w / 2, y: -9, width: w, height: 18, rx: 9 }),
          s("text", { y: 4, "text-anchor": "middle", text }),
        ]),
      );
    }
    return g;
  }

  drawNode(node) {
    const { x, y, w, h: ht } = node;
    const classes = ["tl-node", `kind-${node.kind}`, ...(node.classes || [])];
    const g = s("g", { class: classes, "data-id": node.id, transform: `translate(${x - w / 2}, ${y - ht / 2})` });
    const tensor = tensorOf(this.index, node);
    if (node.kind === "tensor") this.drawTensor(g, node, tensor);
    else if (node.kind === "op") this.drawOp(g, node);
    else if (node.kind === "group") this.drawCollapsedGroup(g, node);
    else this.drawGradNode(g, node, tensor);
    return g;
  }

  /** A tensor: name and kind tag, shape · dtype and device, then the gradient rows (see gradRows). */
  drawTensor(g, node, t) {
    const { w, h: ht } = node;
    const kind = t ? t.kind : "intermediate";
    const boxy = kind === "parameter";
    g.classList.add(`t-${kind}`);
    g.append(s("rect", { class: "tl-box", width: w, height: ht, rx: boxy ? 3 : 9 }));
    if (kind === "leaf" || kind === "parameter") g.append(s("rect", { class: "tl-inner", x: 3, y: 3, width: w - 6, height: ht - 6, rx: boxy ? 2 : 7 }));
    const name = clip(node.label, fits(w, CHAR_W));
    g.append(s("text", { class: "tl-name", x: 8, y: 16, text: name }));
    const tag = { leaf: "leaf", parameter: "param", constant: "no grad" }[kind];
    const room = w - 16 - name.length * CHAR_W;
    if (tag && room >= tag.length * 6 + 14) g.append(pill("tl-tag", w - tag.length * 6 - 16, 5, tag.length * 6 + 10, 13, tag));
    const device = t ? t.device : "";
    const sub = node.sublabel || "";
    const badge = device && (sub.length + device.length) * SMALL_W + 30 <= w;
    g.append(s("text", { class: "tl-sub", x: 8, y: 31, text: clip(sub, fits(w, SMALL_W)) }));
    if (badge) g.append(pill(["tl-device", !device.startsWith("cpu") && "accel"], w - device.length * 5.8 - 15, 22, device.length * 5.8 + 8, 12, device));
    if (t && t.requires_grad) {
      g.append(s("g", { class: "tl-rg", transform: `translate(${w - 1}, 1)` }, [s("circle", { r: 7.5 }), s("text", { y: 3.5, "text-anchor": "middle", text: "∂" })]));
    }
    if (t) this.gradRows(g, node, t);
  }

  /** The gradient that flowed into a tensor in this pass (outlined, dashed) and the .grad it
   *  stores (filled): in the rows the layout made below the name and facts (NOTE [gradient rows] in
   *  _graph.py: one per gradient of the last pass), else as tabs above the box (another pass can
   *  reach a tensor the last one did not). A tensor an in-place op rewrote shows on each box the
   *  gradient its own autograd node received (`grad_node`; NOTE [gradients of in-place versions]),
   *  and its .grad on its first box only. */
  gradRows(g, node, t) {
    const version = (node.classes || []).includes("version");
    const pass = this.pass;
    const rows = [];
    // a box of an in-place-rewritten tensor shows what its own node received (none without a node)
    const flowed = "grad_node" in node ? pass?.node_grads?.[node.grad_node] : receivedBy(pass, null, t);
    // the node's own label: inside a module box that is the short name (`weight`), as _graph.py sized it
    const room = fits(node.w, SMALL_W);
    const line = (label, summary) => `${label} = ${summaryText(summary, room - label.length - 3)}`;
    if (flowed) rows.push(["flowed", line(gradLabel(this.index, pass, t, node.label), flowed)]);
    if (t.grad && !version) rows.push(["stored", line(`${node.label}.grad`, t.grad)]);
    const inside = Math.max(0, Math.floor((node.h - TENSOR_H) / GRAD_ROW_H));
    let row = 0;
    let above = 0;
    for (const [kind, text] of rows) {
      if (row < inside) {
        const y = TENSOR_H - 1 + GRAD_ROW_H * row++;
        g.append(pill(["tl-chip", `chip-${kind}`], 3, y, node.w - 6, 13, clip(text, fits(node.w, SMALL_W)), "start"));
        continue;
      }
      // a tab on the top edge, right-aligned so a module box's title on the left stays readable
      const shown = clip(text, fits(node.w - 14, SMALL_W));
      const width = Math.min(node.w - 14, shown.length * SMALL_W + 10);
      g.append(pill(["tl-chip", "tl-tab", `chip-${kind}`], node.w - 12 - width, -14 * ++above - 1, width, 13, shown, "start"));
    }
  }

  drawOp(g, node) {
    const { w, h: ht } = node;
    const op = this.index.ops.get(node.ref);
    const error = this.errorFor(node);
    g.append(s("rect", { class: "tl-box", width: w, height: ht, rx: Math.min(ht / 2, 14) }));
    const label = `${error ? "✕ " : ""}${node.label}`;
    const sub = node.sublabel || "";
    if (node.warning) {
      // the in-place op a backward failed on: the op, its other arguments where it has a row for
      // them, then the warning in red (_graph.py adds a row for it)
      const rows = [[label, "tl-op", CHAR_W], ...(sub && ht >= 46 ? [[sub, "tl-sub", SMALL_W]] : []), [node.warning, "tl-warning", SMALL_W]];
      rows.forEach(([text, cls, charW], k) => g.append(s("text", { class: cls, x: w / 2, y: 15 + 13 * k, "text-anchor": "middle", text: clip(text, fits(w, charW)) })));
    } else if (error && sub) {
      // a failing op has no outputs, so nothing is drawn below it: its input shapes go there
      g.append(s("text", { class: "tl-op", x: w / 2, y: ht / 2 + 4.5, "text-anchor": "middle", text: clip(label, Math.floor((w - 10) / CHAR_W)) }));
      g.append(s("text", { class: "tl-sub tl-error-sub", x: w / 2, y: ht + 13, "text-anchor": "middle", text: `inputs ${sub}` }));
    } else if (ht >= 34 && sub) {
      // two rows (_graph.py makes an op with a sublabel that tall): the op, then its other arguments
      g.append(s("text", { class: "tl-op", x: w / 2, y: ht / 2 - 3, "text-anchor": "middle", text: clip(label, Math.floor((w - 10) / CHAR_W)) }));
      g.append(s("text", { class: "tl-sub", x: w / 2, y: ht / 2 + 10, "text-anchor": "middle", text: clip(sub, fits(w, SMALL_W)) }));
    } else {
      // one row: the extra arguments only when they fit whole (a clipped "(inplace=…" would mislead)
      const both = `${label} ${sub}`;
      const text = sub && both.length <= fits(w, CHAR_W) ? both : label;
      g.append(s("text", { class: "tl-op", x: w / 2, y: ht / 2 + 4.5, "text-anchor": "middle", text: clip(text, fits(w, CHAR_W)) }));
    }
    if (op && op.inplace && ht >= 20) g.append(s("title", { text: "in-place: changes its input tensor (version bump)" }));
  }

  /** Autograd view: grad_fn nodes (name, then the tensor they belong to) and x.grad nodes. */
  drawGradNode(g, node, t) {
    const { w, h: ht } = node;
    g.append(s("rect", { class: "tl-box", width: w, height: ht, rx: node.kind === "grad" ? 3 : 6 }));
    const ag = this.index.nodes.get(node.ref);
    let sub = node.sublabel;
    if (!sub && t && node.kind === "grad_fn") sub = tensorName(t);
    if (ag && ag.earlier) sub = `${sub ? `${sub} · ` : ""}earlier cell`;
    const two = Boolean(sub) && ht >= 28;
    g.append(s("text", { class: node.kind === "grad" ? "tl-name" : "tl-fn", x: w / 2, y: two ? ht / 2 - 2.5 : ht / 2 + 4.5, "text-anchor": "middle", text: clip(node.label, Math.floor((w - 10) / CHAR_W)) }));
    if (two) g.append(s("text", { class: "tl-sub", x: w / 2, y: ht / 2 + 10.5, "text-anchor": "middle", text: clip(sub, Math.floor((w - 10) / SMALL_W)) }));
  }

  drawCollapsedGroup(g, node) {
    const { w, h: ht } = node;
    assign(g, { tabindex: 0, role: "button", "aria-expanded": "false", "aria-label": `Module ${node.label}: expand`, "data-group": node.ref });
    g.append(
      s("rect", { class: "tl-stack", x: 6, y: -6, width: w - 6, height: ht, rx: 7 }),
      s("rect", { class: "tl-stack", x: 3, y: -3, width: w - 3, height: ht, rx: 7 }),
      s("rect", { class: "tl-box", width: w, height: ht, rx: 7 }),
      s("text", { class: "tl-name", x: 8, y: 16, text: clip(node.label, fits(w, CHAR_W)) }),
      s("text", { class: "tl-sub", x: 8, y: 31, text: clip(node.sublabel || "collapsed", fits(w, SMALL_W)) }),
      // a "+" badge on the corner: this box opens (the stacked cards say it holds several nodes)
      s("g", { class: "tl-expand", transform: `translate(${w - 1}, 1)` }, [s("circle", { r: 7.5 }), s("path", { d: "M-3.5,0 H3.5 M0,-3.5 V3.5" })]),
    );
  }

  errorFor(node) {
    const error = this.index.trace.error;
    if (!error) return null;
    const mine = (node.classes || []).includes("error") || (error.op && error.op === node.ref);
    return mine ? error : null;
  }

  drawBanners(layout) {
    const trace = this.index.trace;
    const items = [];
    if (trace.error) {
      const e = trace.error;
      const where = e.line ? ` on line ${e.line}` : "";
      const code = sourceLine(this.index, e.line);
      items.push(["error", "✕", `${e.type}${where}: ${e.message}`, code]);
      const culprit = e.modified_by ? this.index.ops.get(e.modified_by) : null;
      if (culprit) {
        // where PyTorch's message does not say: the in-place op that changed a tensor backward saved
        const at = culprit.line ? ` on line ${culprit.line}` : "";
        const show = () => (this.set("view", "forward"), this.set("selected", culprit.id));
        items.push(["error", "✎", `A tensor backward needed was modified in place by ${culprit.name}${at} (outlined in red):`, sourceLine(this.index, culprit.line), ["Show it", show]]);
      }
    }
    const note = layout.note || "";
    if (trace.stopped) {
      const { type, message, op_count: count } = trace.stopped;
      items.push(["warn", "!", `The tracer stopped recording after ${count} operations (${type}${message ? `: ${message}` : ""}): what came later is not drawn. The cell itself ran to the end unchanged.`]);
    }
    if (trace.truncated && !note.includes("recorded")) items.push(["warn", "!", `Only the first ${trace.max_ops} operations were recorded; the cell itself ran to the end. Use %%autograd_trace --max-ops N to record more.`]);
    if (layout.note || layout.omitted) items.push(["info", "i", layout.note || `${layout.omitted} nodes are not drawn.`]);
    for (const cut of trace.cuts || []) {
      const t = this.index.tensors.get(cut.tensor);
      items.push(["cut", "✂", `Gradient stops at ${tensorName(t)} (${cut.reason}${cut.line ? `, line ${cut.line}` : ""}): nothing flows back through it.`]);
    }
    if (!this.index.passes.length) items.push(["info", "i", "This cell ran no backward pass: no gradients to show yet. Call .backward() on a scalar to see them flow."]);
    this.banners.replaceChildren(
      ...items.map(([kind, icon, text, code, action]) =>
        h("div", { class: ["tl-banner", `tl-${kind}`], role: kind === "error" ? "alert" : "note" }, [
          h("span", { class: "tl-icon", "aria-hidden": "true", text: icon }),
          h("span", { text }),
          code ? h("code", { text: code }) : null,
          action ? h("button", { type: "button", class: "tl-link", text: action[0], onclick: action[1] }) : null,
        ]),
      ),
    );
  }

  drawToolbar() {
    const passes = this.index.passes;
    const current = this.model.get("pass_index");
    this.passPicker.hidden = passes.length < 2;
    this.passPicker.replaceChildren(
      ...passes.map((p, i) => h("option", { value: i, selected: i === current, text: `pass ${i + 1} of ${passes.length}${p.line ? ` · line ${p.line}` : ""}` })),
    );
    const none = !passes.length;
    for (const b of [this.playButton, this.stepButton, this.resetButton]) b.disabled = none;
    if (none) this.playButton.title = "This cell ran no backward pass";
  }

  // ------------------------------------------------------------ table

  drawTable(showAll = false) {
    const tensors = this.index.tensorList;
    const pass = this.pass;
    const heads = ["name", "shape", "dtype", "device", "requires_grad", "is_leaf", "grad_fn", ".grad"];
    if (pass) heads.push(`gradient in (pass ${this.model.get("pass_index") + 1})`);
    const rows = (showAll ? tensors : tensors.slice(0, TABLE_ROWS)).map((t) => {
      const cells = [tensorName(t), shapeText(t.shape), t.dtype, t.device, pyBool(t.requires_grad), pyBool(t.is_leaf), t.grad_fn || "—", summaryText(t.grad, 44)];
      if (pass) cells.push(pass.grads && pass.grads[t.id] ? summaryText(pass.grads[t.id], 44) : "—");
      const cell = (c, i) => h(i ? "td" : "th", { scope: i ? null : "row", title: c.length > 40 ? c : null, text: c });
      return h("tr", { tabindex: 0, "data-id": t.id, "aria-selected": "false" }, cells.map(cell));
    });
    this.rowEls = new Map(rows.map((r) => [r.dataset.id, r]));
    const more = tensors.length > rows.length ? h("button", { type: "button", class: "tl-btn", text: `Show all ${tensors.length} tensors`, onclick: () => this.drawTable(true) }) : null;
    this.tableBox.open = this.tableBox.dataset.touched ? this.tableBox.open : tensors.length <= 40;
    this.tableBox.replaceChildren(
      h("summary", { text: `Tensors (${tensors.length})` }),
      h("div", { class: "tl-table-scroll" }, [
        h("table", {}, [h("thead", {}, [h("tr", {}, heads.map((x) => h("th", { scope: "col", text: x })))]), h("tbody", {}, rows)]),
      ]),
      ...(more ? [more] : []),
    );
    if (this.layoutNodes) this.paintSelection(false);
  }

  // ------------------------------------------------------------ selection

  adjacency(layout) {
    this.succ = new Map();
    this.pred = new Map();
    for (const e of layout.edges) {
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
    const refs = selected ? equivalentRefs(this.index, selected) : new Set();
    const chosen = [...this.layoutNodes.values()].filter((n) => refs.has(n.ref)).map((n) => n.id);
    const up = this.reach(chosen, this.pred);
    const down = this.reach(chosen, this.succ);
    const any = chosen.length > 0;
    this.svg.classList.toggle("has-selection", any);
    for (const [id, el] of this.nodeEls || []) {
      el.classList.toggle("tl-sel", chosen.includes(id));
      el.classList.toggle("tl-rel", any && (up.has(id) || down.has(id)));
    }
    for (const [edge, el] of this.edgeEls || []) {
      const on = (up.has(edge.source) && up.has(edge.target)) || (down.has(edge.source) && down.has(edge.target));
      el.classList.toggle("tl-rel", any && on);
    }
    for (const [id, row] of this.rowEls || []) {
      const on = refs.has(id);
      row.setAttribute("aria-selected", String(on));
      if (on && fromModel) {
        const box = row.closest(".tl-table-scroll");
        if (box && (row.offsetTop < box.scrollTop || row.offsetTop > box.scrollTop + box.clientHeight - 30)) box.scrollTop = row.offsetTop - 30;
      }
    }
    if (fromModel && chosen.length) this.reveal(this.layoutNodes.get(chosen[0]));
    this.showDetails(selected);
  }

  select(ref) {
    this.set("selected", ref && ref === this.model.get("selected") ? null : ref || null);
  }

  // ------------------------------------------------------------ details panel

  showDetails(ref) {
    const index = this.index;
    const parts = [];
    const row = (key, value) => (value === null || value === undefined || value === "" ? null : [h("dt", { text: key }), h("dd", {}, [value])]);
    const codeLine = (line) => (line ? h("span", {}, [`line ${line}: `, h("code", { text: sourceLine(index, line) })]) : null);
    const link = (id) => h("button", { type: "button", class: "tl-link", text: tensorName(index.tensors.get(id)), onclick: () => this.set("selected", id) });
    const summaryBlock = (summary) => {
      if (!summary) return "—";
      if (summary.values !== undefined && summary.values !== null) return h("pre", { class: "tl-values", text: valuesBlock(summary.values, summary.dtype) });
      const fmt = numberFormat([summary.min, summary.max, summary.mean, summary.std, summary.norm]);
      const stats = ["min", "max", "mean", "std", "norm"].filter((k) => summary[k] !== null && summary[k] !== undefined);
      if (!stats.length) return `${shapeText(summary.shape)} (no statistics)`;
      return h("span", { class: "tl-stats" }, stats.map((k) => h("span", {}, [h("b", { text: k }), ` ${fmt(summary[k])}`])));
    };
    const t = index.tensors.get(ref);
    const op = index.ops.get(ref);
    const ag = index.nodes.get(ref);
    const group = !t && !op && !ag && ref ? (this.layout.groups || []).find((g) => g.id === ref) || [...this.layoutNodes.values()].find((n) => n.ref === ref) : null;
    if (t) {
      const pass = this.pass;
      parts.push(h("h3", {}, [tensorName(t), h("span", { class: "tl-kind", text: t.kind })]));
      const facts = [
        row("shape", shapeText(t.shape)),
        row("dtype", t.dtype),
        row("device", t.device),
        row("requires_grad", pyBool(t.requires_grad)),
        row("is_leaf", pyBool(t.is_leaf)),
        row("grad_fn", t.grad_fn || "None"),
        t.retains_grad ? row("retains_grad", "True") : null,
        row("line", codeLine(t.line)),
        row("module", t.module),
        t.created === false ? row("origin", "existed before this cell") : null,
        row("value", summaryBlock(t.value)),
      ];
      if (pass) {
        const flowed = pass.grads && pass.grads[t.id];
        const passName = index.passes.length > 1 ? `, pass ${this.model.get("pass_index") + 1}` : "";
        const what = h("div", { class: "tl-dd-note", text: `${gradLabel(index, pass, t)}${passName}: flowed through, not kept` });
        facts.push(row("gradient in", h("div", {}, [what, flowed ? summaryBlock(flowed) : "none reached it"])));
      }
      const none = t.is_leaf ? "None" : "None: autograd keeps no .grad on a non-leaf (call .retain_grad() to keep it)";
      facts.push(row("stored .grad", h("div", {}, [h("div", { class: "tl-dd-note", text: `${tensorName(t)}.grad after the cell` }), t.grad ? summaryBlock(t.grad) : none])));
      parts.push(h("dl", {}, facts.flat().filter(Boolean)));
    } else if (op) {
      parts.push(h("h3", {}, [op.name, h("span", { class: "tl-kind", text: op.inplace ? "in-place op" : "op" })]));
      const inputs = h("span", {}, (op.inputs || []).flatMap((i, k) => [k ? ", " : "", i.tensor ? link(i.tensor) : h("code", { text: argText(i) })]));
      const outputs = h("span", {}, (op.outputs || []).flatMap((id, k) => [k ? ", " : "", link(id)]));
      parts.push(h("dl", {}, [row("line", codeLine(op.line)), row("inputs", inputs), row("outputs", outputs), row("module", op.module), row("grad mode", op.grad_enabled === false ? "off (no_grad / inference_mode): no graph recorded" : "on")].flat().filter(Boolean)));
    } else if (ag) {
      const owner = index.tensors.get(ag.tensor);
      const pass = this.pass;
      const at = pass ? (pass.order || []).indexOf(ag.id) : -1;
      const received = receivedBy(pass, ag, owner);
      parts.push(h("h3", {}, [ag.name, h("span", { class: "tl-kind", text: "autograd node" })]));
      parts.push(h("dl", {}, [
        row(ag.name === "AccumulateGrad" ? "stores into" : "grad_fn of", owner ? link(owner.id) : null),
        row("built", ag.earlier ? "by an earlier cell" : "by this cell"),
        row("line", owner ? codeLine(owner.line) : null),
        row("ran", at >= 0 ? `step ${at + 1} of ${pass.order.length} in pass ${this.model.get("pass_index") + 1}` : pass ? "not in this pass" : null),
        row("gradient in", at >= 0 && received ? summaryBlock(received) : null),
      ].flat().filter(Boolean)));
    } else if (group) {
      parts.push(h("h3", {}, [group.label, h("span", { class: "tl-kind", text: "module" })]));
      parts.push(h("p", { text: "Click the module's header (or press Enter on it) to collapse or expand it." }));
    } else {
      parts.push(h("h3", { text: "Details" }), h("p", { class: "tl-muted", text: "Click a node or a table row to see its facts. Drag to pan; hover for a quick look." }), legend());
    }
    const err = index.trace.error;
    if (err && op && op.id === err.modified_by) {
      const changed = (op.outputs || []).map((id) => tensorName(index.tensors.get(id))).join(", ");
      parts.push(h("div", { class: "tl-banner tl-error" }, [h("span", { text: `This op modified ${changed} in place, a tensor backward needed: the backward on line ${err.line} failed (${err.type}).` })]));
    }
    if (err && ref && (ref === err.op || (op && op.id === err.op))) {
      parts.push(h("div", { class: "tl-banner tl-error" }, [h("span", { text: `${err.type}: ${err.message}` })]));
      if (err.inputs) parts.push(h("p", { text: `inputs: ${err.inputs.map((i) => `${shapeText(i.shape)} ${i.dtype} ${i.device}`).join(" · ")}` }));
    }
    this.panel.replaceChildren(...parts);
  }

  // ------------------------------------------------------------ replay

  /** Position in the pass's order at which each layout node's gradient arrives (Infinity: never). */
  runOrder() {
    const pass = this.pass;
    const pos = new Map((pass ? pass.order || [] : []).map((id, i) => [id, i]));
    const accumulated = new Set(pass ? pass.accumulated || [] : []);
    const tensorPos = (t) => (t && t.node && pos.has(t.node) ? pos.get(t.node) : Infinity);
    this.when = new Map();
    for (const node of this.layoutNodes.values()) {
      let at = Infinity;
      if (pos.has(node.ref)) at = pos.get(node.ref);
      else if (node.kind === "tensor") at = tensorPos(this.index.tensors.get(node.ref));
      else if (node.kind === "grad") {
        const t = tensorOf(this.index, node);
        at = t && accumulated.has(t.id) ? tensorPos(t) : Infinity;
      } else if (node.kind === "op") {
        const op = this.index.ops.get(node.ref);
        for (const out of op ? op.outputs : []) at = Math.min(at, tensorPos(this.index.tensors.get(out)));
      } else if (node.kind === "group") {
        for (const t of this.index.tensors.values()) if (t.module && (t.module === node.ref || t.module.startsWith(`${node.ref}.`))) at = Math.min(at, tensorPos(t));
      }
      this.when.set(node.id, at);
    }
  }

  paintReplay() {
    const pass = this.pass;
    const total = pass ? (pass.order || []).length : 0;
    const step = this.step;
    const replaying = step !== null;
    this.svg.classList.toggle("replaying", replaying);
    for (const [id, el] of this.nodeEls) {
      const at = this.when.get(id);
      el.classList.toggle("tl-ran", replaying && at < step);
      el.classList.toggle("tl-cur", replaying && at === step - 1);
    }
    for (const [edge, el] of this.edgeEls) {
      const a = this.when.get(edge.source);
      const b = this.when.get(edge.target);
      el.classList.toggle("tl-ran", replaying && a < step && b < step);
      el.classList.toggle("tl-cur", replaying && Math.max(a, b) === step - 1 && a < step && b < step);
    }
    this.playButton.replaceChildren(icon(this.timer ? "pause" : "play"), this.timer ? "Pause" : "Play");
    this.playButton.setAttribute("aria-label", this.timer ? "Pause the replay" : "Play the backward pass");
    this.playButton.setAttribute("aria-pressed", String(Boolean(this.timer)));
    this.stepButton.disabled = !total || (replaying && step >= total);
    this.caption.replaceChildren(...this.captionParts(pass, step, total));
    this.callout(replaying && step > 0 ? pass.order[step - 1] : null);
  }

  /** A bubble beside the node that just ran, with the gradient it received (both views). */
  callout(agId) {
    this.layers.overlay.replaceChildren();
    const ag = agId && this.index.nodes.get(agId);
    const t = ag && this.index.tensors.get(ag.tensor);
    if (!t) return;
    const node = [...this.layoutNodes.values()].find((n) => n.ref === agId || (n.kind === "tensor" && n.ref === t.id));
    if (!node) return;
    const pass = this.pass;
    const grad = receivedBy(pass, ag, t);
    const label = gradLabel(this.index, pass, t);
    const text = clip(`${label} = ${summaryText(grad, 56 - label.length)}`, 60);
    const w = text.length * SMALL_W + 16;
    const x = node.x + node.w / 2 + 12;
    this.layers.overlay.append(
      s("g", { class: "tl-callout", transform: `translate(${x}, ${node.y})` }, [
        s("path", { d: `M-9,0 L1,-6 L1,6 z` }),
        s("rect", { x: 0, y: -11, width: w, height: 22, rx: 6 }),
        s("text", { x: 8, y: 4, text }),
      ]),
    );
  }

  captionParts(pass, step, total) {
    if (!pass) return [];
    const passName = this.index.passes.length > 1 ? ` (pass ${this.model.get("pass_index") + 1})` : "";
    if (step === null) return [h("span", { class: "tl-muted", text: `Gradients after ${pass.kind === "grad" ? "torch.autograd.grad" : "backward()"} on line ${pass.line}${passName}. ▶ Play replays it node by node, in the order the engine ran them.` })];
    if (step === 0) return [h("b", { text: `Step 0 of ${total}` }), ` · backward${passName} not started: press ▶ Play or ⏭ Step.`];
    const ag = this.index.nodes.get(pass.order[step - 1]);
    const t = ag ? this.index.tensors.get(ag.tensor) : undefined;
    const grad = receivedBy(pass, ag, t);
    const what = !ag
      ? `${pass.order[step - 1]} ran`
      : ag.name === "AccumulateGrad"
        ? `AccumulateGrad added ${gradLabel(this.index, pass, t)} = ${summaryText(grad)} into ${tensorName(t)}.grad`
        : `${ag.name} received ${t ? `${gradLabel(this.index, pass, t)} = ${summaryText(grad)}` : "its gradient"} and passed it on`;
    const done = step >= total ? " · done" : "";
    return [h("b", { text: `Step ${step} of ${total}` }), ` · ${what}${done}`];
  }

  advance() {
    const total = this.pass ? this.pass.order.length : 0;
    if (!total) return;
    if (this.step === null || this.step >= total) this.step = 0;
    this.step += 1;
    if (this.step >= total) this.stopTimer();
    this.paintReplay();
  }

  togglePlay() {
    if (this.timer) return (this.stopTimer(), this.paintReplay());
    const total = this.pass ? this.pass.order.length : 0;
    if (!total) return;
    if (this.step === null || this.step >= total) this.step = 0;
    if (this.reducedMotion && this.reducedMotion.matches) {
      this.step = total; // no animation: every node at once, each still showing its step number in the caption
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
    this.settleTimer = 0;
    this.settled = !gesture;
    if (gesture) this.settleTimer = setTimeout(() => ((this.settled = true), this.requestFrame()), SETTLE_MS);
    this.requestFrame();
  }

  requestFrame() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.paintTransform());
  }

  paintTransform() {
    this.frame = 0;
    // layout reads first, then writes: no layout is forced between the two
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
   *  forward view), else the topmost node (the autograd view's root). Centring the whole width
   *  instead showed an MLP step's optimizer updates with the model cut off on both sides; the left
   *  edge instead showed 4 of 100 inputs of a `torch.cat` and not the cat. */
  storyStart() {
    let first = null;
    let firstAt = Infinity;
    let top = null;
    for (const n of this.layoutNodes.values()) {
      const at = n.kind === "op" && /^o\d+$/.test(n.ref) ? Number(n.ref.slice(1)) : Infinity;
      if (at < firstAt) [first, firstAt] = [n, at];
      if (n.kind !== "group" && (!top || n.y < top.y || (n.y === top.y && n.x < top.x))) top = n;
    }
    return first || top;
  }

  /** Show the whole graph (`all`, the Fit button), or, on first sight, the whole graph only while
   *  its text stays readable, else the top of it at a readable zoom, across from where its story
   *  starts (see storyStart). */
  fit(all = false) {
    const layout = this.layout;
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    if (!W || !H || !layout.width) return;
    const pad = 12;
    const top = TOP_ROOM; // stored-.grad tabs may sit above the first rank
    const height = layout.height + top;
    let k = Math.min((W - 2 * pad) / layout.width, (H - 2 * pad) / height, 1.25);
    if (!all && k < READABLE_ZOOM) k = Math.min(1, Math.max(READABLE_ZOOM, (W - 2 * pad) / layout.width));
    const y = height * k <= H - 2 * pad ? (H - height * k) / 2 : pad;
    let x = (W - layout.width * k) / 2;
    if (layout.width * k > W - 2 * pad) {
      const start = this.storyStart();
      const centred = start ? W / 2 - start.x * k : pad;
      x = Math.min(pad, Math.max(W - pad - layout.width * k, centred)); // no empty margin beyond an edge
    }
    this.wheelDelta = 0; // a wheel zoom not yet painted would move the fitted view
    this.zoom = { k, x, y: y + top * k };
    this.applyTransform();
  }

  /** Scale by `factor` about the stage point (cx, cy), which stays under the cursor. */
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

  /** Pan so that a node is in view (after a selection from the table). */
  reveal(node) {
    if (!node) return;
    const { x, y, k } = this.zoom;
    const sx = node.x * k + x;
    const sy = node.y * k + y;
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    if (sx > 20 && sx < W - 20 && sy > 20 && sy < H - 20) return;
    this.zoom = { k, x: W / 2 - node.x * k, y: H / 2 - node.y * k };
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
      if (!this.pointers.has(e.pointerId)) return this.hover(e);
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
    const group = target.closest?.("[data-group]");
    if (group) return this.toggleGroup(group.dataset.group);
    const nodeEl = target.closest?.(".tl-node");
    if (!nodeEl) return this.set("selected", null);
    const node = this.layoutNodes.get(nodeEl.dataset.id);
    if (node) this.select(node.ref);
  }

  toggleGroup(path) {
    const now = new Set((this.layout.groups || []).filter((g) => g.collapsed).map((g) => g.id));
    for (const n of this.layoutNodes.values()) if (n.kind === "group") now.add(n.ref);
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
    // a wheel notch (~100 px) zooms by about 1.27x; a pinch (ctrl + small deltas) smoothly. The
    // events of one frame add up into one zoom, painted (and the stage measured) in that frame.
    const delta = Math.max(-60, Math.min(60, e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY));
    this.wheelDelta = (this.wheelDelta || 0) + delta;
    this.wheelAt = [e.clientX, e.clientY];
    this.userMoved = true;
    this.applyTransform(true);
  }

  key(e) {
    const group = e.target.closest?.("[data-group]");
    if (group && (e.key === "Enter" || e.key === " ")) return (e.preventDefault(), this.toggleGroup(group.dataset.group));
    const moves = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] };
    if (moves[e.key]) return (e.preventDefault(), this.panBy(...moves[e.key]));
    if (e.key === "+" || e.key === "=") return this.zoomBy(1.25);
    if (e.key === "-") return this.zoomBy(1 / 1.25);
    if (e.key === "0") return this.fit(true);
    if (e.key === "Escape") return this.set("selected", null);
  }

  hover(e) {
    const nodeEl = e.target.closest?.(".tl-node");
    const node = nodeEl && this.layoutNodes.get(nodeEl.dataset.id);
    if (!node) return ((this.tooltip.hidden = true), (this.hovered = null));
    if (this.hovered !== node.id) {
      this.hovered = node.id;
      this.tooltip.replaceChildren(...this.tooltipLines(node).map((text, i) => h(i ? "div" : "strong", { text })));
    }
    this.tooltip.hidden = false;
    const rect = this.stage.getBoundingClientRect();
    const left = Math.min(e.clientX - rect.left + 14, rect.width - 240);
    this.tooltip.style.transform = `translate(${Math.max(4, left)}px, ${e.clientY - rect.top + 14}px)`;
  }

  tooltipLines(node) {
    const index = this.index;
    const t = tensorOf(index, node);
    const op = index.ops.get(node.ref);
    if (node.kind === "op" && op) {
      const ins = (op.inputs || []).map((i) => (i.tensor ? tensorName(index.tensors.get(i.tensor)) : argText(i))).join(", ");
      return [`${op.name}(${ins})`, `line ${op.line}: ${sourceLine(index, op.line)}`, op.module ? `in ${op.module}` : null, node.warning].filter(Boolean);
    }
    if (node.kind === "group") return [node.label, "collapsed module: click to expand"];
    if (!t) return [node.label];
    const head = node.kind === "tensor" ? tensorName(t) : `${node.label} · ${tensorName(t)}`;
    return [
      head,
      `${shapeText(t.shape)} · ${t.dtype} · ${t.device}`,
      `requires_grad=${pyBool(t.requires_grad)} · is_leaf=${pyBool(t.is_leaf)}`,
      t.grad_fn ? `grad_fn=${t.grad_fn}` : null,
      t.line ? `line ${t.line}: ${sourceLine(index, t.line)}` : null,
    ].filter(Boolean);
  }

  destroy() {
    this.stopTimer();
    cancelAnimationFrame(this.frame);
    clearTimeout(this.settleTimer);
    clearTimeout(this.hintTimer);
    this.resize.disconnect();
    for (const [event, fn] of this.subscriptions) this.model.off(event, fn);
    this.root.remove();
  }
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

// ---------------------------------------------------------------- geometry and static pieces

/** A smooth path through the layout's polyline: a vertical S-curve for two points, rounded corners otherwise. */
function edgePath(points) {
  if (!points || points.length < 2) return "";
  const [x0, y0] = points[0];
  if (points.length === 2) {
    const [x1, y1] = points[1];
    const dy = (y1 - y0) / 2;
    return `M${x0},${y0} C${x0},${y0 + dy} ${x1},${y1 - dy} ${x1},${y1}`;
  }
  let d = `M${x0},${y0}`;
  for (let i = 1; i < points.length - 1; i++) {
    const [x, y] = points[i];
    const [nx, ny] = points[i + 1];
    d += ` Q${x},${y} ${(x + nx) / 2},${(y + ny) / 2}`;
  }
  const [xl, yl] = points[points.length - 1];
  return `${d} L${xl},${yl}`;
}

const ICONS = {
  play: "M4,2.5 L13,8 L4,13.5 z",
  pause: "M4,3 h3 v10 h-3 z M9,3 h3 v10 h-3 z",
  step: "M3,2.5 L10,8 L3,13.5 z M11,3 h2.5 v10 h-2.5 z",
  reset: "M8,3 a5,5 0 1 1 -4.6,3 M2.5,2.5 v4 h4",
};

/** A 16px icon drawn as a path (no icon font: classrooms go offline and fonts lack ⏭). */
function icon(name) {
  return s("svg", { class: ["tl-icon-svg", `icon-${name}`], width: 14, height: 14, viewBox: "0 0 16 16", "aria-hidden": "true" }, [s("path", { d: ICONS[name] })]);
}

function midpoint(points) {
  if (points.length === 2) return [(points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2];
  return points[Math.floor(points.length / 2)];
}

function markers() {
  const arrow = (id) =>
    s("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse", class: id }, [
      s("path", { d: "M0,1 L9,5 L0,9 z" }),
    ]);
  return s("defs", {}, [arrow("tl-arrow-edge"), arrow("tl-arrow-grad"), arrow("tl-arrow-cut")]);
}

/** What the shapes mean, for the panel when nothing is selected (never colour alone: every swatch has a word). */
function legend() {
  const item = (cls, label, draw) => h("li", {}, [s("svg", { class: "tl-swatch", width: 46, height: 22, "aria-hidden": "true" }, [s("g", { class: cls }, draw())]), h("span", { text: label })]);
  const box = (rx, inner) => () => [
    s("rect", { class: "tl-box", x: 1, y: 2, width: 44, height: 18, rx }),
    inner ? s("rect", { class: "tl-inner", x: 3.5, y: 4.5, width: 39, height: 13, rx: Math.max(rx - 2, 1) }) : null,
  ];
  const chip = (rx) => () => [s("rect", { x: 1, y: 5, width: 44, height: 12, rx })];
  return h("ul", { class: "tl-legend", "aria-label": "Legend" }, [
    item("tl-node kind-tensor t-leaf", "leaf tensor (requires_grad, you made it)", box(9, true)),
    item("tl-node kind-tensor t-parameter", "parameter (nn.Parameter of a module)", box(3, true)),
    item("tl-node kind-tensor t-intermediate", "intermediate (has a grad_fn)", box(9)),
    item("tl-node kind-tensor t-constant", "no grad: gradients never reach it", box(9)),
    item("tl-node kind-op", "operation, as the code wrote it", () => [s("rect", { class: "tl-box", x: 1, y: 4, width: 44, height: 14, rx: 7 })]),
    item("tl-chip chip-flowed", "∂loss/∂y: gradient that flowed through (not kept)", chip(6)),
    item("tl-chip chip-stored", "x.grad: gradient stored on a leaf", chip(2)),
    item("tl-edge kind-cut", "gradient stops here (detach, no_grad…)", () => [s("path", { d: "M2,11 L44,11" })]),
  ]);
}

export default {
  render({ model, el }) {
    const view = new GraphView(model, el);
    return () => view.destroy();
  },
};
