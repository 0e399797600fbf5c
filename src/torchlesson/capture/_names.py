"""What each tensor is called: the variable that held it, or the expression that made it.

NOTE [names by identity]: a variable's name goes only to a tensor that variable really held. While the
block runs, each torch call tells which statement of the block is running (``passed``); when the block
moves on to another statement, the names that statement assigns are looked up in the block's variables,
and a tensor found there, by identity, was held by that name (``y = x * 2``; in a loop, each ``g`` of
``g = g * 1.0001``). At the block's end every variable is looked at once more. A line's assignment
target is never given to a tensor merely made on that line: ``head = nn.Linear(20, 3)`` makes tensors,
none of which ``head`` holds.

Names (the schema's ``name``): a parameter or buffer's path in a module variable; else the variable
that holds it at the end; else the last variable that held it; else its place in a list, tuple or dict
variable; else the ``.grad`` of any of these. Labels (``label``, what every picture shows): the name;
else the source text of the expression that made it (``enc(tokens).pow(2).mean()``, see
_expressions.py); else what made it where (``softmax in model.attn``). No two tensors share a label: a
name or text that several tensors have is numbered in the order they were made (``g (1)``, ``g (2)``),
the tensor that keeps the name at the end keeping it plain.
"""

from __future__ import annotations

import ast
import functools
import linecache
from typing import Any

import torch

from . import _expressions
from ._frames import Block, Site
from ._recording import Recording

# IPython's own history of inputs and outputs: not names the learner gave
_SHELL_VARIABLES = frozenset({"In", "Out"})
_MAX_ITEMS_NAMED = 256  # a longer list is data, not a handful of tensors to tell apart


@functools.lru_cache(maxsize=16)
def statements(source: str) -> dict[int, tuple[int, tuple[str, ...]]]:
    """Line -> (first line of the innermost statement on it, the plain names that statement binds)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found: dict[int, tuple[int, tuple[str, ...]]] = {}
    stack: list[ast.AST] = [tree]
    while stack:  # outer statements first, so that inner ones take their lines
        node = stack.pop(0)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                header_end = _header_end(child)
                entry = (child.lineno, _bound_names(child))
                for line in range(child.lineno, header_end + 1):
                    found[line] = entry
                stack.append(child)
    return found


def _header_end(statement: ast.stmt) -> int:
    """The last line of a statement before its body (all of it for a simple statement)."""
    body = getattr(statement, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
        return max(statement.lineno, body[0].lineno - 1)
    return statement.end_lineno or statement.lineno


def _bound_names(statement: ast.stmt) -> tuple[str, ...]:
    targets: list[ast.AST] = []
    if isinstance(statement, ast.Assign):
        targets = list(statement.targets)
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        targets = [statement.target]
    elif isinstance(statement, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in statement.items if item.optional_vars is not None]
    names: list[str] = []
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.append(node.id)
    if hasattr(statement, "body"):  # a compound statement: only its header
        header = [getattr(statement, "test", None), getattr(statement, "iter", None)]
    else:
        header = [statement]
    for part in header:
        for node in ast.walk(part) if part is not None else ():
            if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                names.append(node.target.id)
    return tuple(dict.fromkeys(names))


class Bindings:
    """Which variables held which tensors while the block ran (NOTE [names by identity])."""

    def __init__(self, rec: Recording, block: Block) -> None:
        self.rec = rec
        self.block = block
        self._map: dict[int, tuple[int, tuple[str, ...]]] | None = None
        self._statement: tuple[int, tuple[str, ...]] | None = None
        self._where: tuple = (None, -1)  # (code, instruction) of the last call seen
        self._count = 0

    def source(self) -> str:
        """The block's source as Python compiled it (IPython's cell, or the file of the with block)."""
        return "".join(linecache.getlines(self.block.file)) if self.block.file else ""

    def passed(self, site: Site) -> None:
        """A torch call of the block ran at ``site``: if the block moved on to another statement, look
        at what the one before bound."""
        if self._map is None:
            self._map = statements(self.source())
        statement = self._map.get(site.line)
        code, lasti = site.frame.f_code, site.frame.f_lasti
        # another statement, or the same one run again (a loop went round: the instruction went back)
        if statement is not self._statement or (code is self._where[0] and lasti <= self._where[1]):
            self.check()
            self._statement = statement
        self._where = (code, lasti)

    def check(self) -> None:
        """Look up the names the current statement binds (they are bound once it has run)."""
        statement = self._statement
        if statement is None or not statement[1]:
            return
        variables = self.block.variables()
        for name in statement[1]:
            value = variables.get(name)
            if isinstance(value, torch.Tensor):
                record = self.rec.record_of(value)
                if record is not None:
                    held = record.setdefault("_held", [])
                    if not held or held[-1] != name:
                        held.append(name)
                        self._count += 1
                        record["_bound"] = self._count


def _tensors_kept_in(variables: list[tuple[str, Any]]):
    """``("xs[0]", tensor)`` for tensors one level inside a list, tuple or dict variable."""
    for var, value in variables:
        if isinstance(value, (list, tuple)) and len(value) <= _MAX_ITEMS_NAMED:
            for index, item in enumerate(value):
                if isinstance(item, torch.Tensor):
                    yield f"{var}[{index}]", item
        elif isinstance(value, dict) and len(value) <= _MAX_ITEMS_NAMED:
            for key, item in list(value.items()):
                if isinstance(item, torch.Tensor) and isinstance(key, (str, int)):
                    yield f"{var}[{key!r}]", item


def end_names(
    rec: Recording, variables: dict, named_modules: list[tuple[str, torch.nn.Module]]
) -> dict[str, str]:
    """Tensor id -> the parameter path or variable it is bound to after the block.

    Parameters and buffers are named by module path first (``model.0.weight``), so a loop variable
    left bound to one (``for p in model.parameters()``) does not rename it; then variables; then
    tensors kept in a list, tuple or dict variable (``xs[0]``, ``batch['x']``); then the ``.grad``
    tensors of all these (``model.0.weight.grad``, ``x.grad``), which optimizers read.
    """
    names: dict[str, str] = {}
    named: list[tuple[str, torch.Tensor]] = []
    for var, module in named_modules:
        named.extend(module.named_parameters(prefix=var))
        named.extend(module.named_buffers(prefix=var))
    plain = [
        (var, value)
        for var, value in list(variables.items())
        if not var.startswith("_") and var not in _SHELL_VARIABLES
    ]
    named.extend((var, value) for var, value in plain if isinstance(value, torch.Tensor))
    kept = list(_tensors_kept_in(plain))
    for path, tensor in named:
        record = rec.record_of(tensor)
        if record is not None:
            names.setdefault(record["id"], path)
    # a variable that held it beats its place in a list (``h`` over ``hidden[2]``)
    for record in rec.records:
        held = record.get("_held")
        if held and record["id"] not in names:
            names[record["id"]] = held[-1]
    for path, tensor in kept:
        record = rec.record_of(tensor)
        if record is not None:
            names.setdefault(record["id"], path)
    for path, tensor in [*named, *kept]:
        grad = tensor.grad if tensor.is_leaf else None
        record = rec.record_of(grad) if grad is not None else None
        if record is not None:
            names.setdefault(record["id"], f"{path}.grad")
    return names


def expressions(records: list[dict], ops: list[dict], lines: list[str], source: str) -> None:
    """Set each record's ``expression``, the source text of the block's instruction whose value it
    is, and each operation's ``source``, the text of the block's code that ran it.

    A tensor made by an operation the block called itself (``x.sum()``) is that instruction's value.
    One made inside a call of the block (``model(x)``, ``Square.apply(w)``) is the call's value when
    nothing else that call ran used it: the last layer's output, not the hidden ones.
    """
    used_at: dict[tuple, set[str]] = {}
    texts: dict[tuple, str | None] = {}
    for op in ops:
        at = op.get("_at")
        if at is not None:
            used_at.setdefault(at[:2], set()).update(i["tensor"] for i in op["inputs"] if "tensor" in i)
            if at[:2] not in texts:
                texts[at[:2]] = _text(at, {"line": op["line"], "made_by": op["name"]}, lines, source)
            op["source"] = texts[at[:2]]
        else:
            op["source"] = None
    made_at: dict[tuple, list[dict]] = {}
    for record in records:
        at = record.get("_at")
        if at is None:
            continue
        if at[2]:
            record["expression"] = _text(at, record, lines, source)
        else:
            made_at.setdefault(at[:2], []).append(record)
    for at, made in made_at.items():
        text = _text((*at, False), made[0], lines, source)
        results = [r for r in made if r["id"] not in used_at.get(at, ())]
        if len(results) == 1:
            results[0]["expression"] = text
        for record in made:
            record["_call"] = text  # what the block called: nn.Linear(20, 3) for its init's tensors


def _text(at: tuple, record: dict, lines: list[str], source: str) -> str | None:
    code, lasti, _ = at
    if _expressions.HAS_POSITIONS:
        return _expressions.instruction_text(code, lasti, lines)
    if record["line"] is None or not record.get("made_by"):
        return None
    return _expressions.text_on_line(record["made_by"], record["line"], lines, source)


def labels(records: list[dict]) -> None:
    """Give every record a ``label`` no other record has (see the module docstring)."""
    base: list[str] = []
    for record in records:
        if record["name"]:
            text = record["name"]
        elif record.get("expression"):
            text = _expressions.shorten(record["expression"])
        else:
            text = _made_where(record)
        base.append(text)
    counts: dict[str, int] = {}
    for text in base:
        counts[text] = counts.get(text, 0) + 1
    # the tensor that keeps a name at the end keeps it plain; every other one is numbered
    plain = {}
    for record, text in zip(records, base, strict=True):
        if counts[text] > 1 and record.get("_final"):
            plain[text] = record["id"]
    seen: dict[str, int] = {}
    taken = set(base)
    for record, text in zip(records, base, strict=True):
        if counts[text] == 1 or plain.get(text) == record["id"]:
            record["label"] = text
            continue
        number = seen.get(text, 0)
        while True:
            number += 1
            label = f"{text} ({number})"
            if label not in taken:
                break
        seen[text] = number
        taken.add(label)
        record["label"] = label


def _made_where(record: dict) -> str:
    made_by, module, line = record.get("made_by"), record.get("module"), record.get("line")
    if record.get("output_of"):
        return f"{record['output_of']} output"
    if made_by and module:
        return f"{made_by} in {module}"
    if made_by and record.get("_call"):
        return f"{made_by} in {_expressions.shorten(record['_call'], 40)}"
    if made_by and line is not None:
        return f"{made_by} at line {line}"
    if line is not None:
        return f"tensor at line {line}"
    return "tensor"
