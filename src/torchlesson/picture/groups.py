"""Groups of nodes: modules (``model.0``) and folded loops (``↻12``), their titles, and collapsing them.

A node's ``group`` is a dotted path: the modules around it, outermost first, with the folded loops
it sits in (NOTE [folding loops] in fold.py) among them. A group drawn as a box can be collapsed to
one node (chosen by the learner, or automatically for big graphs); its edges are then rerouted to it.
"""

from __future__ import annotations

from typing import Any

from .fold import FOLD_MARK
from .graph import Graph
from .labels import MAX_LABEL, shorten

AUTO_COLLAPSE_NODES = 150  # above this many nodes, modules are collapsed when `collapsed` is None


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
    counts: dict[str, int], types: dict[str, str], folds: dict[str, Any]
) -> dict[str, tuple[str, str]]:
    """path -> (the title of its box, what its collapsed node says): ``model.0 · Linear``, or a
    folded loop's ``for step in range(300): × 300``."""
    titles = {}
    for path, count in counts.items():
        last = path.rpartition(".")[2]
        if last.startswith(FOLD_MARK) and last in folds:
            fold = folds[last]
            titles[path] = (fold.label, f"{fold.repeats} iterations, {count} boxes each")
            continue
        module = ".".join(part for part in path.split(".") if not part.startswith(FOLD_MARK))
        titles[path] = (f"{module} · {types[module]}" if types.get(module) else module, f"{count} nodes")
    return titles


def module_types(trace: dict[str, Any]) -> dict[str, str]:
    """Optional ``trace["modules"]``: ``{path: type}`` or ``[{"path", "type"}]``, for group labels."""
    modules = trace.get("modules") or {}
    if isinstance(modules, list):
        return {m["path"]: m.get("type") for m in modules if isinstance(m, dict) and "path" in m}
    return dict(modules) if isinstance(modules, dict) else {}


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
            out.add(
                gid,
                "group",
                head,
                shorten(label, MAX_LABEL),
                sub or f"{counts[head]} nodes",
                classes=["group", "collapsed", *(["fold"] if is_fold(head) else [])],
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
    for s, t, kind, label in graph.edges:
        key = (mapping[s], mapping[t], kind)
        if mapping[s] != mapping[t] and key not in seen:
            seen.add(key)
            out.edges.append([mapping[s], mapping[t], kind, label])
    out.after = [[mapping[s], mapping[t]] for s, t in graph.after if mapping[s] != mapping[t]]
    return out, heads
