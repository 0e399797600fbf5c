"""What the tracer does once the block has run: read every tensor as the block left it, name it, and
build the trace's plain data.

Nothing here runs while the learner's code does. Every step is guarded (NOTE [the tracer never breaks
the cell] in _recording.py): a step that fails stops the recording, and the trace is still whole.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch

from . import _facts, _names
from ._recording import own_reads

if TYPE_CHECKING:
    from ._tracer import Tracer

MAX_LINES = 2000  # a longer source file's lines are not shipped with the trace


def finish(tracer: Tracer) -> tuple[dict, list]:
    """The trace's data and the summaries left to read when it is first read (see ``Trace``)."""
    with own_reads():
        return _finish(tracer)


def _finish(tracer: Tracer) -> tuple[dict, list]:
    rec, block, forward, bindings = tracer.rec, tracer.block, tracer.forward, tracer.bindings
    rec.attempt(forward.settle)
    rec.attempt(bindings.check)
    compiled_source = bindings.source()
    if tracer.source is not None:  # IPython drops a cell's leading blank lines before it compiles it
        source_lines = tracer.source.splitlines()
        while source_lines and not source_lines[0].strip():
            source_lines.pop(0)
    else:
        source_lines = compiled_source.splitlines()
    compiled_lines = compiled_source.splitlines() or source_lines
    rec.attempt(_adopt_new_bindings, tracer, compiled_source or "\n".join(source_lines))
    named_modules = rec.attempt(forward.named_modules) or []
    variables = block.variables()
    names = rec.attempt(_names.end_names, rec, variables, named_modules) or {}
    final = rec.attempt(_final_names, rec, variables) or set()
    # (container, key, weak ref, version, shape, dtype): summaries made when the trace is first read
    pending: list[tuple] = []
    with torch.no_grad():
        for record, ref in zip(rec.records, rec.refs, strict=True):
            record["grad"] = None
            rec.attempt(_read_at_end, rec, record, ref(), pending)
            record["name"] = names.get(record["id"])
            record["_final"] = record["id"] in final
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
    rec.attempt(tracer.leaf_grads.release, pending)
    for passage in tracer.backward.passes:  # a slot a stopped recording never filled
        for tensor_id, grad in passage["grads"].items():
            if grad is None:
                record = rec.slot(tensor_id)[0]
                passage["grads"][tensor_id] = _facts.placeholder(record["shape"], record["dtype"], "not kept")
    rec.attempt(_outputs_of_modules, rec.records, forward.ops, tracer.backward.passes)
    for record in rec.records:
        record["expression"] = None
    rec.attempt(_names.expressions, rec.records, forward.ops, compiled_lines, compiled_source)
    _names.labels(rec.records)
    data = _as_dict(tracer, source_lines, named_modules)
    block.release()
    rec.release()
    return data, pending


def _final_names(rec, variables: dict) -> set[str]:
    """Ids of the tensors a variable holds at the block's end (they keep a shared name plain)."""
    final = set()
    for var, value in list(variables.items()):
        if isinstance(value, torch.Tensor) and not var.startswith("_"):
            record = rec.record_of(value)
            if record is not None:
                final.add(record["id"])
    return final


def _read_at_end(rec, record: dict, tensor: torch.Tensor | None, pending: list) -> None:
    """A tensor's facts, value and stored .grad as the block left them."""
    if tensor is None:
        if record["value"] is None:
            record["value"] = _facts.placeholder(record["shape"], record["dtype"], "freed")
        return
    rec.facts_into(record, tensor)
    # read again even when no in-place op ran: `x.data -= ...` changes values without bumping
    # x's version counter
    record["value"] = _summary_at_end(rec, record, "value", tensor, pending)
    if tensor.is_leaf or tensor.retains_grad:
        grad = tensor.grad
        if grad is not None:
            record["grad"] = _summary_at_end(rec, record, "grad", grad, pending)


def _summary_at_end(rec, record: dict, key: str, tensor: torch.Tensor, pending: list) -> dict | None:
    """Small tensors are summarised now; big ones when the trace is first read (see Trace)."""
    shape, dtype = _facts.shape_of(tensor), _facts.dtype_name(tensor.dtype)
    if rec.is_uninitialised(tensor):
        return _facts.placeholder(shape, dtype, "uninitialised")
    if tensor.numel() <= _facts.MAX_VALUES:
        return _facts.summarize(tensor, deferred=rec.deferred)
    pending.append((record, key, weakref.ref(tensor), _facts.version_of(tensor), shape, dtype))
    return None


def _adopt_new_bindings(tracer: Tracer, source: str) -> None:
    """Tensors the block bound to a name without any op we could see (``torch.from_numpy``): made on
    the line that assigns the name (the last one, if several do)."""
    rec = tracer.rec
    assigned: dict[str, int] = {}
    for _, (start, names) in sorted(_names.statements(source).items()):
        for name in names:
            assigned[name] = start
    for var, value in list(tracer.block.variables().items()):
        if not isinstance(value, torch.Tensor) or var.startswith("_") or rec.existed_before(value):
            continue
        record = rec.record_of(value)
        if record is None:
            rec.new_tensor(value, assigned.get(var), True)
        elif not record["created"] and not record["is_parameter"] and record["grad_fn"] is None:
            # first met as an input, yet bound to a new name by the block
            record["created"] = True
            record["line"] = assigned.get(var, record["line"])


def _outputs_of_modules(records: list[dict], ops: list[dict], passes: list[dict]) -> None:
    """``output_of``: a tensor a module's call made and handed out: used outside that module, a
    backward pass's root, or kept by a variable (NOTE [modules from the stack] in _frames.py)."""
    by_id = {r["id"]: r for r in records}
    used_outside: set[str] = set()
    for op in ops:
        where = op["module"] or ""
        for item in op["inputs"]:
            record = by_id.get(item.get("tensor"))
            made_in = record["module"] if record is not None else None
            if made_in and not (where == made_in or where.startswith(made_in + ".")):
                used_outside.add(record["id"])
    roots = {t for passage in passes for t in passage["root"]}
    for record in records:
        if record["module"] and record["made_by"] and not record["is_parameter"]:
            rid = record["id"]
            if rid in used_outside or rid in roots or record["name"] or record.get("_held"):
                record["output_of"] = record["module"]


def _as_dict(tracer: Tracer, lines: list[str], named_modules) -> dict:
    rec, forward = tracer.rec, tracer.forward
    for record in rec.records:
        for key in ("is_parameter", "_at", "_held", "_bound", "_final", "_call"):
            record.pop(key, None)
    for entry in forward.optimizer_calls:
        del entry["measured"]
    for op in forward.ops:
        op.pop("_at", None)
        op.pop("_seq", None)
        op.pop("_storage", None)
    modules = dict(forward.module_classes)
    for var, module in named_modules:
        for path, sub in module.named_modules(prefix=var):
            modules.setdefault(path, type(sub).__name__)
    used = {op["module"] for op in forward.ops} | {t["module"] for t in rec.records}
    used.discard(None)
    modules = {p: c for p, c in modules.items() if any(u == p or u.startswith(p + ".") for u in used)}
    return {
        "schema": tracer.SCHEMA,
        "lines": lines if len(lines) <= MAX_LINES else [],
        "modules": dict(sorted(modules.items())),
        "tensors": rec.records,
        "ops": forward.ops,
        "autograd": rec.graph.to_dict(),
        "backward": tracer.backward.passes,
        "cuts": forward.cuts,
        "optimizer_calls": forward.optimizer_calls,
        "error": tracer.error,
        "stopped": rec.stopped,
        "truncated": rec.truncated,
        "max_ops": rec.max_ops,
        "op_count": rec.op_count,
    }
