"""The story of a cell: building a model and stepping an optimizer as boxes of their own.

NOTE [the story of a cell]: a cell that builds a model and trains it runs three kinds of operations,
and only one of them is what the learner came to see. The initialisers a module's ``__init__`` runs
(``kaiming_uniform_``, ``fill_``, the ``torch.empty`` they fill) and the in-place updates of an
optimizer's ``step()`` would otherwise be drawn across the forward graph. :func:`tell_story` gives each
its own group, like a module's, whose path is a mark and a number:

- ``⚒0``, ``⚒1``...: one construction, the operations a constructor ran for one of the learner's
  variables (``head = nn.Linear(20, 3)``; a whole ``nn.Sequential(...)`` is one). The tensors it made
  and the cell uses later (the parameters and buffers, as initialised) stay outside the box, in
  their module, as leaves: when the box is collapsed its edges to them are not drawn (the box says
  what it made), so the forward graph starts where the learner's code starts.
- ``⚙s0``, ``⚙s1``...: one optimizer call (an OptimizerCall of the trace, ``opt.step()``), with the
  gradients it read and the new versions it wrote. Collapsed, the box takes no arrows from the
  parameters it updates (it names them; ``after`` still ranks it below the forward pass that used
  them), so version arrows never cross the forward graph.

Both are collapsed in the first view (NOTE [the first view] in groups.py). Expanded, a story has no
box: :func:`open_stories` draws every operation in it exactly as without this module. Operations
the learner called directly, ``nn.init.normal_(w)`` in the cell itself, are not a constructor's and
stay in the graph.
"""

from __future__ import annotations

from typing import Any

from .graph import Graph
from .labels import shape_text

BUILD_MARK = "⚒"
STEP_MARK = "⚙"


def is_story(path: str | None) -> bool:
    """A construction's or an optimizer call's group (the last part of a group path)."""
    last = str(path or "").rpartition(".")[2]
    return last.startswith((BUILD_MARK, STEP_MARK))


def variable_of(name: Any) -> str | None:
    """The variable a parameter or buffer belongs to: ``net.0.weight`` -> ``net``."""
    return str(name).split(".")[0].split("[")[0] if name else None


def _runs(ops: list[dict[str, Any]], tensors: dict[str, dict]) -> dict[int, str]:
    """Operation index -> its story group: consecutive constructor operations for one variable's
    model form one construction; each optimizer call is one group."""
    of: dict[int, str] = {}
    run, root, previous = -1, None, False
    for k, op in enumerate(ops):
        if op.get("optimizer"):
            of[k] = f"{STEP_MARK}{op['optimizer']}"
            previous = False
            continue
        if not op.get("constructor"):
            previous = False
            continue
        names = [variable_of((tensors.get(t) or {}).get("name")) for t in op.get("outputs") or ()]
        named = next((n for n in names if n), None)
        if not previous or (named and root and named != root):
            run, root = run + 1, None
        root = root or named
        of[k] = f"{BUILD_MARK}{run}"
        previous = True
    return of


def tell_story(trace: dict[str, Any], graph: Graph) -> dict[str, dict[str, Any]]:
    """Move the forward graph's construction and optimizer nodes into groups of their own (NOTE [the
    story of a cell]); returns each group's title, what its collapsed box says and its details rows."""
    ops = [op for op in trace.get("ops") or () if isinstance(op, dict)]
    tensors = {t["id"]: t for t in trace.get("tensors") or () if isinstance(t, dict) and "id" in t}
    of = _runs(ops, tensors)
    if not of:
        return {}
    op_index = {op.get("id"): k for k, op in enumerate(ops)}
    modules = trace.get("modules") or {}
    modules = (
        {m.get("path") for m in modules if isinstance(m, dict)} if isinstance(modules, list) else set(modules)
    )
    nodes = graph.nodes
    group_of: dict[int, str] = {}
    for v, node in enumerate(nodes):
        if node["kind"] == "op" and op_index.get(node["ref"]) in of:
            group_of[v] = of[op_index[node["ref"]]]
    into: list[list[int]] = [[] for _ in nodes]
    out_of: list[list[int]] = [[] for _ in nodes]
    for s, t, *_ in graph.edges:
        out_of[s].append(t)
        into[t].append(s)
    made: dict[str, list[int]] = {}  # a construction -> the tensors it made that the cell uses
    for v, node in enumerate(nodes):
        if node["kind"] != "tensor":
            continue
        at = graph.made_at.get(node["id"])
        born = of.get(at[0]) if at else None
        makers = {group_of.get(s) for s in into[v]}
        readers = {group_of.get(t) for t in out_of[v]}
        if into[v]:
            home = next(iter(makers)) if len(makers) == 1 else None
        else:
            home = born or (next(iter(readers)) if len(readers) == 1 else None)
        if not home:
            continue
        used_outside = bool(readers - {home})
        tensor = tensors.get(node["ref"]) or {}
        if home.startswith(BUILD_MARK) and (used_outside or (not out_of[v] and _is_state(tensor))):
            # made by a constructor, used by the cell: a parameter or buffer as initialised, a leaf
            made.setdefault(home, []).append(v)
            node["_plain"] = (node["group"], node["classes"], node["sublabel"])
            node["group"] = tensor.get("module") or _owner(tensor, modules) or node["group"]
            node["classes"] = [c for c in node["classes"] if c != "version"]
            node["sublabel"] = (node.get("sublabel") or "").rpartition(" · v")[0] or node.get("sublabel")
            node["built_by"] = home
            continue
        group_of[v] = home
    _after_the_forward(graph, group_of, op_index, out_of)
    for v, path in group_of.items():
        nodes[v]["_plain"] = (nodes[v]["group"], nodes[v]["classes"], nodes[v]["sublabel"])
        nodes[v]["group"] = path  # constructors and optimizers run outside any module's forward
        nodes[v]["story"] = path
    return _titles(trace, graph, tensors, made, group_of, ops)


def _after_the_forward(
    graph: Graph, group_of: dict[int, str], op_index: dict[Any, int], out_of: list[list[int]]
) -> None:
    """An optimizer call is ranked below what the cell computed before it (the loss), not only below
    the operations that read its parameters (NOTE [write after read] in graph.py)."""
    ops = sorted(
        (op_index[n["ref"]], v)
        for v, n in enumerate(graph.nodes)
        if n["kind"] == "op" and n["ref"] in op_index
    )
    started: set[str] = set()
    previous = None
    for _, v in ops:
        path = group_of.get(v)
        if path is None:
            previous = v
        elif path.startswith(STEP_MARK) and path not in started and previous is not None:
            started.add(path)
            pairs = [[t, v] for t in out_of[previous]]  # out_of: tell_story's edges by source
            graph.after += pairs
            graph.story_after[path] = pairs  # taken back if the call is opened


def open_stories(graph: Graph, opened: set[str]) -> None:
    """Draw the constructions and optimizer calls in ``opened`` exactly as without their groups:
    every operation where it ran, outside any box, as a learner who expands them expects."""
    dropped = {tuple(pair) for path, pairs in graph.story_after.items() if path in opened for pair in pairs}
    graph.after = [pair for pair in graph.after if tuple(pair) not in dropped]
    for node in graph.nodes:
        story = node.pop("story", None) or node.pop("built_by", None)
        plain = node.pop("_plain", None)
        if story not in opened or plain is None:
            continue
        group, node["classes"], node["sublabel"] = plain
        outer = str(node["group"] or "").split(".")
        outer = outer[: outer.index(story)] if story in outer else []  # a loop folded around it
        node["group"] = ".".join(p for p in [*outer, group or ""] if p) or None
        node["story_path"] = ".".join([*outer, story])  # its details can fold it back


def _owner(tensor: dict[str, Any], modules: set) -> str | None:
    """The module a buffer belongs to, by its name (``net.1.running_mean`` -> ``net.1``)."""
    owner = str(tensor.get("name") or "").rpartition(".")[0]
    return owner if owner in modules else None


def _is_state(tensor: dict[str, Any]) -> bool:
    """A module's parameter or buffer (``net.0.weight``, ``net.1.running_mean``)."""
    return bool(tensor.get("name")) and "." in str(tensor.get("name"))


def _titles(
    trace: dict[str, Any],
    graph: Graph,
    tensors: dict[str, dict],
    made: dict[str, list[int]],
    group_of: dict[int, str],
    ops: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    lines = [str(line) for line in trace.get("lines") or ()]
    calls = {c.get("id"): c for c in trace.get("optimizer_calls") or () if isinstance(c, dict)}
    out: dict[str, dict[str, Any]] = {}
    first_line: dict[str, Any] = {}
    for v in sorted(group_of):
        first_line.setdefault(group_of[v], graph.nodes[v].get("line"))
    for path, line in first_line.items():
        if path.startswith(BUILD_MARK):
            code = lines[line - 1].strip() if isinstance(line, int) and 0 < line <= len(lines) else ""
            outputs = [tensors.get(graph.nodes[v]["ref"]) or {} for v in made.get(path, ())]
            names = [str(t.get("name") or t.get("label") or "?") for t in outputs]
            listed = ", ".join(
                f"{n} {shape_text(t.get('shape'))}" for n, t in zip(names, outputs, strict=True)
            )
            sub = f"made {', '.join(names)}" if names else "made no tensor the cell uses"
            if len(sub) > 40:
                params = sum(1 for t in outputs if t.get("kind") == "parameter")
                rest = len(outputs) - params
                counted = [f"{params} parameter{'s' * (params != 1)}"] * bool(params)
                counted += [f"{rest} buffer{'s' * (rest != 1)}"] * bool(rest)
                sub = "made " + ", ".join(counted)
            out[path] = {
                "title": code or f"built on line {line}",
                "sub": sub,
                "kind": "construction",
                "about": "What a constructor ran to initialise the model: folded into this box, so "
                "the parameters start as leaves. Open it to see every operation.",
                "rows": [("made", listed or "nothing the cell uses later"), ("line", _code(lines, line))],
            }
            continue
        call = calls.get(path[len(STEP_MARK) :]) or {}
        read = {
            str(tensors[i["tensor"]].get("name")): tensors[i["tensor"]]
            for op in ops
            if op.get("optimizer") == call.get("id")
            for i in op.get("inputs") or ()
            if isinstance(i, dict) and i.get("tensor") in tensors
        }
        out[path] = _step_titles(call, tensors, read, line, lines)
    return out


def _code(lines: list[str], line: Any) -> str | None:
    if isinstance(line, int) and 0 < line <= len(lines):
        return f"line {line}: {lines[line - 1].strip()}"
    return None


def _step_titles(
    call: dict[str, Any], tensors: dict[str, dict], read: dict[str, dict], line: Any, lines: list[str]
) -> dict[str, Any]:
    """``opt.step() · SGD`` / ``6 parameters updated, lr=0.1``, and a row per parameter: its norm
    before and after, and the gradient the update read (``read``: the step's inputs by name)."""
    owner = call.get("optimizer") or call.get("class") or "optimizer"
    method = call.get("method") or "step"
    updated = call.get("updated") or {}
    count = len(updated) if method == "step" else len(call.get("cleared") or ())
    lr = call.get("lr")
    if method == "step":
        sub = f"{count} parameter{'s' * (count != 1)} updated" + (
            f", lr={lr:g}" if isinstance(lr, float) else ""
        )
    else:
        sub = f"{count} gradient{'s' * (count != 1)} cleared"
    rows: list[tuple[str, Any]] = []
    for tid, norms in list(updated.items())[:12]:
        name = str((tensors.get(tid) or {}).get("name") or (tensors.get(tid) or {}).get("label") or tid)
        before, after = (norms or {}).get("before"), (norms or {}).get("after")
        grad = ((read.get(f"{name}.grad") or {}).get("value") or {}).get("norm")
        if isinstance(before, float) and isinstance(after, float):
            text = f"norm {before:.4g} → {after:.4g}"
        else:
            text = "updated (norms are read for the first 10 steps of a cell)"
        if isinstance(grad, float):
            text += f", from a gradient of norm {grad:.4g}"
        rows.append((name, text))
    if len(updated) > 12:
        rows.append(("…", f"and {len(updated) - 12} more parameters"))
    rows.append(("line", _code(lines, call.get("line") or line)))
    return {
        "title": f"{owner}.{method}() · {call.get('class') or 'optimizer'}",
        "sub": sub,
        "kind": "optimizer step",
        "about": "The optimizer's in-place updates, one box per call. Open it to see every update.",
        "rows": rows,
    }
