"""What the tracer does once the block has run: read every tensor as the block left it, name the
tensors, and build the Trace.

``TraceEnd`` is a part of the tracer (``_capture._Tracer`` derives from it) kept in its own module:
nothing here runs while the learner's code does, so none of it is on the stack of a learner's torch
call (NOTE [tracer frames] in _capture.py). It reads the tracer's records (``_records``, ``_refs``,
``_passes``...) and the namespace the block ran in.
"""

from __future__ import annotations

import linecache
import weakref
from typing import Any

import torch
from torch.utils.weak import WeakIdKeyDictionary

from . import _facts
from ._calls import assignment_targets
from ._model import SCHEMA

# IPython's own history of inputs and outputs: not names the learner gave
_SHELL_VARIABLES = frozenset({"In", "Out"})
_MAX_ITEMS_NAMED = 256  # a longer list is data, not a handful of tensors to tell apart


def _lines(source: str) -> list[str]:
    """The block's lines, as line numbers count them (none for a source file too long to ship)."""
    lines = source.splitlines()
    return lines if len(lines) <= 2000 else []


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


class TraceEnd:
    """The end-of-block steps of the tracer (see the module docstring)."""

    def _finish(self) -> None:
        source = (
            self.source if self.source is not None else "".join(linecache.getlines(self._root_file or ""))
        )
        targets = assignment_targets(source) if source else {}
        # NOTE [the tracer never breaks the cell]: reading the block's end state is guarded too
        self._attempt(self._adopt_new_bindings, targets)
        named_modules = self._attempt(self._named_modules) or []
        names = self._attempt(self._names, named_modules) or {}
        last_on_line: dict[int, str] = {}
        for record in self._records:
            if record["created"] and record["line"] is not None:
                last_on_line[record["line"]] = record["id"]
        # (container, key, weak ref, version, shape, dtype): summaries made when the trace is first read
        pending: list[tuple] = []
        with torch.no_grad():
            for record, ref in zip(self._records, self._refs, strict=True):
                record["grad"] = None
                self._attempt(self._read_at_end, record, ref(), pending)
                path = names.get(record["id"])
                if path is not None:
                    record["name"] = path
                elif record["line"] in targets and last_on_line.get(record["line"]) == record["id"]:
                    record["name"] = targets[record["line"]]
                if record["is_parameter"]:
                    record["kind"] = "parameter"
                    if record["name"] and "." in record["name"]:
                        record["module"] = record["name"].rsplit(".", 1)[0]
                elif record["grad_fn"] is not None:
                    record["kind"] = "intermediate"
                elif record["requires_grad"]:
                    record["kind"] = "leaf"
                else:
                    record["kind"] = "constant"
        self._attempt(self.leaf_grads.release, pending)
        for passage in self._passes:  # a slot a stopped recording never filled
            for tensor_id, grad in passage["grads"].items():
                if grad is None:
                    record = self._slot(tensor_id)[0]
                    unread = _facts.placeholder(record["shape"], record["dtype"], "not kept")
                    passage["grads"][tensor_id] = unread
        self.trace._load(self._as_dict(source, named_modules), pending, self._deferred)
        # drop every reference the tracer still has
        self._root_frame = None
        self._before = WeakIdKeyDictionary()
        self._by_id = {}
        self._refs = []
        self._graph.release()

    def _attempt(self, step, *args):
        """``step(*args)`` at the block's end, even once recording stopped; a failure stops it."""
        try:
            return step(*args)
        except Exception as exc:
            self.stop(exc)
            return None

    def _read_at_end(self, record: dict, tensor: torch.Tensor | None, pending: list) -> None:
        """A tensor's facts, value and stored .grad as the block left them."""
        if tensor is None:
            if record["value"] is None:
                record["value"] = _facts.placeholder(record["shape"], record["dtype"], "freed")
            return
        self._facts_into(record, tensor)
        # read again even when no in-place op ran: `x.data -= ...` changes values without bumping
        # x's version counter
        record["value"] = self._summary_at_end(record, "value", tensor, pending)
        if tensor.is_leaf or tensor.retains_grad:
            grad = tensor.grad
            if grad is not None:
                record["grad"] = self._summary_at_end(record, "grad", grad, pending)

    def _summary_at_end(self, record: dict, key: str, tensor: torch.Tensor, pending: list) -> dict | None:
        """Small tensors are summarised now; big ones when the trace is first read (see Trace)."""
        if tensor.numel() <= _facts.MAX_VALUES:
            return _facts.summarize(tensor, deferred=self._deferred)
        shape, dtype = _facts.shape_of(tensor), _facts.dtype_name(tensor.dtype)
        pending.append((record, key, weakref.ref(tensor), _facts.version_of(tensor), shape, dtype))
        return None

    def _names(self, named_modules: list[tuple[str, torch.nn.Module]]) -> dict[str, str]:
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
        variables = [
            (var, value)
            for var, value in list(self._variables().items())
            if not var.startswith("_") and var not in _SHELL_VARIABLES
        ]
        named.extend((var, value) for var, value in variables if isinstance(value, torch.Tensor))
        named.extend(_tensors_kept_in(variables))
        for path, tensor in named:
            record = self._record_of(tensor)
            if record is not None:
                names.setdefault(record["id"], path)
        for path, tensor in named:
            grad = tensor.grad if tensor.is_leaf else None
            record = self._record_of(grad) if grad is not None else None
            if record is not None:
                names.setdefault(record["id"], f"{path}.grad")
        return names

    def _adopt_new_bindings(self, targets: dict[int, str]) -> None:
        """Tensors the block bound to a name without any op we could see (``torch.from_numpy``)."""
        starts: dict[str, int] = {}
        previous = None
        for line in sorted(targets):
            var = targets[line]
            if var != previous or line - 1 not in targets:
                starts[var] = line
            previous = var
        for var, value in list(self._variables().items()):
            if not isinstance(value, torch.Tensor) or var.startswith("_") or value in self._before:
                continue
            record = self._record_of(value)
            if record is None:
                self._new_tensor(value, starts.get(var), True)
            elif not record["created"] and not record["is_parameter"] and record["grad_fn"] is None:
                # first met as an input, yet bound to a new name by the block: the block made it
                record["created"] = True
                record["line"] = starts.get(var, record["line"])

    def _as_dict(self, source: str, named_modules: list[tuple[str, torch.nn.Module]]) -> dict:
        for record in self._records:
            del record["is_parameter"]  # a working field: "kind" says it in the schema
        modules = {path: type(module).__name__ for module, path in self._module_paths.items()}
        for var, module in named_modules:
            for path, sub in module.named_modules(prefix=var):
                modules.setdefault(path, type(sub).__name__)
        used = {op["module"] for op in self._ops} | {t["module"] for t in self._records}
        used.discard(None)
        modules = {p: c for p, c in modules.items() if any(u == p or u.startswith(p + ".") for u in used)}
        return {
            "schema": SCHEMA,
            "lines": _lines(source),
            "modules": dict(sorted(modules.items())),
            "tensors": self._records,
            "ops": self._ops,
            "autograd": self._graph.to_dict(),
            "backward": self._passes,
            "cuts": self._cuts,
            "error": self._error,
            "stopped": self.stopped,
            "truncated": self._truncated,
            "max_ops": self.max_ops,
            "op_count": self._op_count,
        }
