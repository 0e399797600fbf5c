"""Groups of nodes: modules (``model.0``) and folded loops (``↻12``), their titles, and collapsing them.

A node's ``group`` is a dotted path: the modules around it, outermost first, with the folded loops
it sits in (NOTE [folding loops] in fold.py) among them. A group drawn as a box can be collapsed to
one node (chosen by the learner, or automatically for big graphs); its edges are then rerouted to it.
"""

from __future__ import annotations

from typing import Any

from .fold import FOLD_MARK
from .graph import Graph
from .labels import MAX_SUBLABEL, shorten
from .story import BUILD_MARK, STEP_MARK, is_story

AUTO_COLLAPSE_NODES = 150  # above this many nodes, modules are collapsed when `collapsed` is None
FIRST_VIEW_BOXES = 25  # NOTE [the first view]
MAX_GROUP_LABEL = MAX_SUBLABEL  # `self_attn · MultiheadAttention` reads whole
# a module class that exists for torch's own bookkeeping, shown as the class a learner knows
KNOWN_AS = {"NonDynamicallyQuantizableLinear": "Linear"}


def prefixes(path: str | None) -> list[str]:
    """``"model.0.attn"`` -> ``["model", "model.0", "model.0.attn"]``."""
    if not path:
        return []
    parts = str(path).split(".")
    return [".".join(parts[: k + 1]) for k in range(len(parts))]


def common_prefix(a: list[str], b: list[str]) -> list[str]:
    """The modules two vertices share, from their :func:`prefixes` (a dummy on an edge between
    them is drawn inside these)."""
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    return a[:k]


def group_counts(nodes: list[dict[str, Any]]) -> dict[str, int]:
    """Nodes per module path; a node counts for its module and for every module around it."""
    counts: dict[str, int] = {}
    for node in nodes:
        for prefix in prefixes(node["group"]):
            counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def is_fold(path: str) -> bool:
    """A group made by folding a loop (NOTE [folding loops] in fold.py), not a module."""
    return path.rpartition(".")[2].startswith(FOLD_MARK)


def group_titles(
    counts: dict[str, int],
    types: dict[str, str],
    folds: dict[str, Any],
    stories: dict[str, dict[str, Any]] | None = None,
) -> dict[str, tuple[str, str]]:
    """path -> (the title of its box, what its collapsed node says): ``model.0 · Linear``, a
    folded loop's ``for step in range(300): × 300``, or a construction's or an optimizer call's
    (NOTE [the story of a cell] in story.py)."""
    titles = {}
    for path, count in counts.items():
        last = path.rpartition(".")[2]
        if is_story(path) and last in (stories or {}):
            titles[path] = (stories[last]["title"], stories[last]["sub"])
            continue
        if last.startswith(FOLD_MARK) and last in folds:
            fold = folds[last]
            titles[path] = (fold.label, f"{fold.repeats} iterations, {count} boxes each")
            continue
        module = ".".join(part for part in path.split(".") if not part.startswith(FOLD_MARK))
        kind = KNOWN_AS.get(str(types.get(module)), types.get(module))
        titles[path] = (f"{module} · {kind}" if kind else module, f"{count} nodes")
    return titles


def module_types(trace: dict[str, Any]) -> dict[str, str]:
    """Optional ``trace["modules"]``: ``{path: type}`` or ``[{"path", "type"}]``, for group labels."""
    modules = trace.get("modules") or {}
    if isinstance(modules, list):
        return {m["path"]: m.get("type") for m in modules if isinstance(m, dict) and "path" in m}
    return dict(modules) if isinstance(modules, dict) else {}


def first_view(nodes: list[dict[str, Any]], counts: dict[str, int]) -> set[str]:
    """NOTE [the first view]: what a cell's picture opens with. Constructions and optimizer calls
    are collapsed (NOTE [the story of a cell] in story.py), unless they are all the cell did;
    then, if more than ~25 boxes remain, modules are collapsed level by level, the deepest first,
    until the rest fits: a CNN or a Transformer layer reads as inputs -> the model's top-level
    children -> loss. Every box opens with a click; ``collapsed=[]`` draws every operation."""
    story = {p for p in counts if is_story(p)}
    if not any(n["kind"] == "op" and not is_story(n["group"]) for n in nodes):
        story = set()  # a cell that only builds a model, or only steps: that is what it is about

    def boxes(chosen: set[str]) -> int:
        heads, loose = set(), 0
        for node in nodes:
            head = next((p for p in prefixes(node["group"]) if p in chosen), None)
            if head is None:
                loose += 1
            else:
                heads.add(head)
        return loose + len(heads)

    def depth(path: str) -> int:
        return sum(1 for part in path.split(".") if not part.startswith((FOLD_MARK, BUILD_MARK, STEP_MARK)))

    modules = [p for p in counts if not is_story(p) and not is_fold(p)]
    chosen = story
    if len(nodes) > AUTO_COLLAPSE_NODES:  # a big graph keeps its old, innermost-first collapse
        chosen = story | auto_collapse(nodes, counts)
    for level in sorted({depth(p) for p in modules}, reverse=True):
        if boxes(chosen) <= FIRST_VIEW_BOXES:
            break
        chosen = story | {p for p in modules if depth(p) == level}
    return chosen


def auto_collapse(nodes: list[dict[str, Any]], counts: dict[str, int]) -> set[str]:
    """Collapse the innermost modules first, then their parents, until ~150 nodes remain."""
    height = dict.fromkeys(counts, 0)
    for path in sorted(counts, key=lambda p: -p.count(".")):
        parent = path.rpartition(".")[0]
        if parent:
            height[parent] = max(height[parent], height[path] + 1)
    chosen: set[str] = set()
    for level in range(max(height.values(), default=-1) + 1):
        chosen = {p for p, h in height.items() if h <= level}
        heads = {
            next(p for p in prefixes(n["group"]) if p in chosen)
            for n in nodes
            if any(p in chosen for p in prefixes(n["group"]))
        }
        inside = sum(1 for n in nodes if any(p in chosen for p in prefixes(n["group"])))
        if len(nodes) - inside + len(heads) <= AUTO_COLLAPSE_NODES:
            break
    return chosen


def _story_class(path: str) -> list[str]:
    last = path.rpartition(".")[2]
    return ["build"] if last.startswith(BUILD_MARK) else (["step"] if last.startswith(STEP_MARK) else [])


def collapse(
    graph: Graph, collapsed: set[str], counts: dict[str, int], titles: dict[str, tuple[str, str]]
) -> tuple[Graph, list[str]]:
    """Replace each outermost collapsed module (or folded loop) by one node of kind "group";
    reroute its edges. ``titles``: path -> (label, what its collapsed node says under it)."""
    out, heads = Graph(), []
    mapping: list[int] = []
    for node in graph.nodes:
        head = next((p for p in prefixes(node["group"]) if p in collapsed and p in counts), None)
        if head is None:
            out.index[node["id"]] = len(out.nodes)
            mapping.append(len(out.nodes))
            out.nodes.append(node)
            continue
        gid = "group:" + head
        if gid not in out.index:
            heads.append(head)
            label, sub = titles.get(head) or (head, None)
            parent = head.rpartition(".")[0]
            if len(label) > MAX_GROUP_LABEL and parent and label.startswith(parent + "."):
                # drawn in its parent's box: named from there, so that its class stays readable
                label = label[len(parent) + 1 :]
            out.add(
                gid,
                "group",
                head,
                shorten(label, MAX_GROUP_LABEL),
                sub or f"{counts[head]} nodes",
                classes=["group", "collapsed", *(["fold"] if is_fold(head) else []), *_story_class(head)],
                group=head.rpartition(".")[0] or None,
                h=38,
                line=node["line"],
            )
        group_node = out.nodes[out.index[gid]]
        for mark in ("error", "modified"):
            if mark in node["classes"] and mark not in group_node["classes"]:
                group_node["classes"] = [*group_node["classes"], mark]
        mapping.append(out.index[gid])
    seen = set()
    # NOTE [the story of a cell] in story.py: a collapsed construction says what it made (its
    # leaves start the graph) and a collapsed optimizer call which parameters it updated
    built = {out.index["group:" + h] for h in heads if h.rpartition(".")[2].startswith(BUILD_MARK)}
    stepped = {out.index["group:" + h] for h in heads if h.rpartition(".")[2].startswith(STEP_MARK)}
    for s, t, kind, label in graph.edges:
        key = (mapping[s], mapping[t], kind)
        if mapping[s] in built or (mapping[t] in stepped and mapping[s] not in stepped):
            continue
        if mapping[s] != mapping[t] and key not in seen:
            seen.add(key)
            out.edges.append([mapping[s], mapping[t], kind, label])
    out.after = [[mapping[s], mapping[t]] for s, t in graph.after if mapping[s] != mapping[t]]
    return out, heads
