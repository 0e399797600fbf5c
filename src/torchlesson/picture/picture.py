"""One trace's picture: its views laid out once, their scenes, and what the widget and the static
fallback are sent.

NOTE [lay out once]: a display lays out each view once: the widget's state and the static
``text/html`` are made from the same scenes. Layouts are cached per (view, collapsed modules,
unfolded loops), so collapsing a module lays out again once, and picking another backward pass lays
out nothing (only the texts of the scene change).
"""

from __future__ import annotations

import json
import math
from typing import Any

from .index import Index
from .layout import layout
from .panel import details, replay, table
from .scene import build_scene
from .story import BUILD_MARK

VIEWS = ("forward", "autograd")
# NOTE [a budget for what a cell saves]: a saved notebook keeps the widget's state and the static
# fallback of every traced cell; together they stay under 1 MB per cell (the widget's code and CSS,
# about 70 KB, included). Past its share, a picture draws fewer nodes and says so in a banner.
STATE_BUDGET = 600_000
HTML_BUDGET = 300_000
MAX_NODES = 2000


class Picture:
    """The picture of one trace dict; cheap to keep, computes what is asked once."""

    def __init__(self, trace: dict[str, Any]) -> None:
        self.trace = trace
        self.index = Index(trace)
        self._layouts: dict[tuple, dict[str, Any]] = {}

    def layout(
        self, view: str, collapsed: Any = None, max_nodes: int = MAX_NODES, unfolded: Any = ()
    ) -> dict[str, Any]:
        key = (
            view,
            None if collapsed is None else tuple(sorted(collapsed)),
            max_nodes,
            tuple(sorted(unfolded)),
        )
        if key not in self._layouts:
            chosen = None if collapsed is None else list(collapsed)
            self._layouts[key] = layout(
                self.trace, view, chosen, max_nodes=max_nodes, unfolded=unfolded, story=True
            )
        return self._layouts[key]

    def passage(self, pass_index: int | None) -> dict | None:
        passes = self.index.passes
        if not passes:
            return None
        return passes[-1 if pass_index is None else max(0, min(pass_index, len(passes) - 1))]

    def scene(
        self,
        view: str,
        pass_index: int | None = None,
        collapsed: Any = None,
        max_nodes: int = MAX_NODES,
        unfolded: Any = (),
    ) -> dict[str, Any]:
        lay = self.layout(view, collapsed, max_nodes, unfolded)
        return build_scene(self.index, lay, self.passage(pass_index))

    def state(
        self, pass_index: int | None = None, collapsed: Any = None, unfolded: Any = ()
    ) -> dict[str, Any]:
        """What the widget draws: both views' scenes, with their replay, the details of everything
        they show, the table and the passes, all texts final (NOTE [what the browser gets]), within
        NOTE [a budget for what a cell saves]."""
        state = self._state(pass_index, collapsed, MAX_NODES, unfolded)
        return fit_budget(state, STATE_BUDGET, lambda cap: self._state(pass_index, collapsed, cap, unfolded))

    def _state(self, pass_index: int | None, collapsed: Any, max_nodes: int, unfolded: Any) -> dict[str, Any]:
        passage = self.passage(pass_index)
        number = (self.index.passes.index(passage) + 1) if passage is not None else 0
        views = {}
        refs: list[str] = []
        extras: dict[str, dict] = {}
        copies: dict[str, list[str]] = {}
        unfold_of: dict[str, str] = {}  # a folded box's ref -> its loop, which its details can unfold
        fold_back: dict[str, str] = {}  # a ref drawn in an opened construction or optimizer call -> it
        for view in VIEWS:
            lay = self.layout(view, collapsed, max_nodes, unfolded)
            scene = build_scene(self.index, lay, passage)
            scene["replay"] = replay(self.index, scene, passage, number)
            views[view] = scene
            groups = {n["id"]: n.get("group") or "" for n in lay["nodes"]}
            for n in lay["nodes"]:  # NOTE [the story of a cell]: an opened one folds back from its nodes
                if n.get("story_path"):
                    fold_back.setdefault(n["ref"], n["story_path"])
            for node in scene["nodes"]:
                refs += node.get("refs") or [node["ref"]]
                if node["id"] in lay["copies"]:
                    copies.setdefault(node["ref"], lay["copies"][node["id"]])
                    fold = next(
                        (p for p in reversed(groups[node["id"]].split(".")) if p in lay["folds"]), None
                    )
                    if fold:
                        unfold_of.setdefault(node["ref"], fold)
                if node["kind"] == "group":
                    extras[node["ref"]] = _group_details(
                        node["ref"], node["tip"][0], node["cls"], lay, unfolded
                    )
                    extras[node["ref"]]["actions"] = [{"label": "Open it", "toggle": node["ref"]}]
            for frame in scene["groups"]:
                label = frame["head"].removeprefix("▾ ")
                if frame["id"] not in extras:
                    extras[frame["id"]] = _group_details(frame["id"], label, [frame["style"]], lay, unfolded)
                    extras[frame["id"]]["actions"] = [
                        {"label": "Fold it into one box", "toggle": frame["id"]}
                    ]
        drawn = dict.fromkeys(r for r in refs if isinstance(r, str))
        # the other iterations of a folded box: a few of them get details of their own, to be picked
        for refs_of_copies in copies.values():
            refs += _sample(refs_of_copies)
        seen = dict.fromkeys(r for r in refs if isinstance(r, str))
        panel = {}
        for ref in seen:
            if ref in self.index.tensors or ref in self.index.ops or ref in self.index.nodes or ref in extras:
                panel[ref] = details(self.index, ref, passage, number, extras.get(ref))
                if ref in copies:
                    panel[ref]["rows"].append(_iterations(self.index, copies[ref], passage))
                if ref in unfold_of:
                    panel[ref]["actions"].append({"label": "Show its iterations", "unfold": unfold_of[ref]})
                if ref in fold_back:
                    what = "construction" if BUILD_MARK in fold_back[ref] else "optimizer call"
                    panel[ref]["actions"].append({"label": f"Fold the {what} back", "toggle": fold_back[ref]})
        tensors = [t.get("id") for t in self.index.tensor_list if t.get("id") in drawn]
        repeats = {ref: len(refs_of_copies) for ref, refs_of_copies in copies.items()}
        return json_safe(
            {
                "views": views,
                "details": panel,
                "table": table(self.index, tensors, passage, number, repeats),
                "passes": [
                    f"pass {k + 1} of {len(self.index.passes)}"
                    + (f" · line {p['line']}" if p.get("line") else "")
                    for k, p in enumerate(self.index.passes)
                ],
                "pass": number - 1 if number else None,
            }
        )


def _sample(items: list[str]) -> list[str]:
    """The first three and the last two: the iterations a folded box's details list."""
    return items if len(items) <= 5 else [*items[:3], *items[-2:]]


def _iterations(index: Index, copies: list[str], passage: dict | None) -> dict[str, Any]:
    """The details row of a folded box: its copies in every iteration, a few of them to pick."""
    text: list[Any] = [f"× {len(copies)}: this box is iteration {len(copies)}, the last. Iterations "]
    shown = _sample(copies)
    for k, ref in enumerate(shown):
        number = copies.index(ref) + 1
        text += [", " if k else "", {"text": str(number), "ref": ref}]
        if k == 2 and len(copies) > 5:
            text.append(", …")
    return {"key": "iterations", "text": [*text, "."]}


def _group_details(path: str, label: str, cls: list[str], lay: dict, unfolded: Any) -> dict[str, Any]:
    """What the details panel says of a module or a folded loop, and what it lets the learner do."""
    story = (lay.get("stories") or {}).get(path.rpartition(".")[2])
    if story is not None:  # NOTE [the story of a cell] in story.py
        return {"label": label, "cls": cls, **{k: story[k] for k in ("kind", "about", "rows")}}
    fold = lay.get("folds", {}).get(path.rpartition(".")[2])
    if fold is None:
        return {
            "label": label,
            "cls": cls,
            "about": "Click its header (or press Enter on it) to collapse or expand it.",
        }
    about = (
        f"These lines ran {fold['repeats']} times; the box shows the last iteration. Click its header to "
        "fold it into one box, or show its iterations one by one."
    )
    return {
        "label": label,
        "cls": [*cls, "fold"],
        "about": about,
        "action": {"label": "Show its iterations", "unfold": path.rpartition(".")[2]},
    }


def fit_budget(built: Any, budget: int, again: Any) -> Any:
    """``built`` if its JSON fits ``budget`` bytes, else ``again(cap)`` with a node cap that makes it
    fit (estimated from its size; halved until it does)."""
    size = len(json.dumps(built, separators=(",", ":")))
    if size <= budget:
        return built
    drawn = max(len(v["nodes"]) for v in (built["views"].values() if "views" in built else [built]))
    cap = max(10, int(drawn * budget / size * 0.9))
    while True:
        built = again(cap)
        if cap <= 10 or len(json.dumps(built, separators=(",", ":"))) <= budget:
            return built
        cap //= 2


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as the string the trace schema uses (JSON has no NaN),
    so that the state always serialises (NOTE [the display is total])."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
