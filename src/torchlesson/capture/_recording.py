"""The tracer's record of tensors: one record per tensor met, found again by identity; and the guard
that keeps the tracer's own failures out of the learner's code.

A record is a plain dict of facts (the schema's Tensor fields). The table holds a weak reference per
record, never the tensor: ``by_id`` maps ``id(tensor)`` to ``(weak reference, record)``, confirmed by
the reference, because an id is reused once its tensor dies (torch's ``WeakIdKeyDictionary`` costs
microseconds a lookup).

NOTE [our reads are not the learner's calls]: the tracer reads tensors (``grad_fn``, values, ``.grad``),
and whatever else observes torch calls would take those reads for calls of the learner's program: a
teacher's logging tensor subclass or ``TorchDispatchMode``, or an outer trace (a traced cell run from a
traced cell). :func:`own_reads` turns off torch function handling (modes and subclasses) and, when a
dispatch mode is active, Python dispatch; the values of a tensor subclass that handles its own
dispatch are not read at all (``_facts.summarize`` says "tensor subclass").

NOTE [the tracer never breaks the cell]: whatever fails in the tracer's own code (a tensor kind it
cannot read, a bug) stops the recording, not the learner's code: the torch call is made as without
tracing, every later one too, and the trace says where it stopped and why (``stopped``).

NOTE [uninitialised memory]: ``torch.empty`` and its kin hand out memory as they found it; its bits are
garbage (a NaN pattern, one run in six). The storages they return are remembered until something
writes into them, and a tensor on such a storage is summarised as "uninitialised", never as numbers.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch

from . import _facts
from ._autograd_graph import AutogradGraph, node_name

_len_dispatch_stack = torch._C._len_torch_dispatch_stack


def own_reads() -> Any:
    """A context in which the tracer's reads of tensors are invisible (NOTE [our reads are not the
    learner's calls])."""
    if _len_dispatch_stack():
        stack = contextlib.ExitStack()
        stack.enter_context(torch._C.DisableTorchFunction())
        stack.enter_context(torch._C._DisableTorchDispatch())
        return stack
    return torch._C.DisableTorchFunction()


def storage_of(tensor: torch.Tensor) -> int | None:
    """The address of a tensor's memory, or None for tensors without plain memory."""
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError, TypeError):  # sparse, nested, meta or subclass tensors
        return None


class Recording:
    """Tensor records, the counters of a trace and its guard."""

    def __init__(self, max_ops: int, namespace_tensors: list[torch.Tensor]) -> None:
        self.max_ops = max_ops
        self.op_count = 0
        self.truncated = False  # past max_ops: operations are only counted
        self.stopped: dict | None = None  # NOTE [the tracer never breaks the cell]
        self.records: list[dict] = []
        self.refs: list[weakref.ref] = []
        self.by_id: dict[int, tuple[weakref.ref, dict]] = {}
        self.deferred: list[dict] = []  # small summaries whose statistics are computed when read
        self.uninitialised: set[int] = set()  # NOTE [uninitialised memory]
        self.current_module: str | None = None  # the module running the call being recorded
        self.current_constructor: str | None = None  # the module or optimizer being built, if any
        self.graph = AutogradGraph(self.leaf_record)
        # tensors bound before the block: not "made by it" when found bound afterwards
        self.before = {id(t): weakref.ref(t) for t in namespace_tensors}

    # ------------------------------------------------------------------ the guard
    def stop(self, exc: BaseException) -> None:
        """Stop recording, once (NOTE [the tracer never breaks the cell])."""
        if self.stopped is None:
            message = str(exc).strip()
            message = message.splitlines()[0][:300] if message else ""
            self.stopped = {"type": type(exc).__name__, "message": message, "op_count": self.op_count}

    def guarded(self, record, *args) -> Any:
        """``record(*args)``, a step of recording that must not raise into the learner's code."""
        if self.stopped is not None:
            return None
        try:
            with own_reads():
                return record(*args)
        except Exception as exc:
            self.stop(exc)
            return None

    def attempt(self, step, *args) -> Any:
        """``step(*args)`` at the block's end, even once recording stopped; a failure stops it."""
        try:
            return step(*args)
        except Exception as exc:
            self.stop(exc)
            return None

    # ------------------------------------------------------------------ tensors
    def slot(self, tensor_id: str) -> tuple[dict, weakref.ref]:
        """The record and weak reference of the tensor ``tensor_id`` (``t7``: the 8th recorded)."""
        index = int(tensor_id[1:])
        return self.records[index], self.refs[index]

    def record_of(self, tensor: torch.Tensor) -> dict | None:
        entry = self.by_id.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return entry[1]
        return None

    def existed_before(self, tensor: torch.Tensor) -> bool:
        ref = self.before.get(id(tensor))
        return ref is not None and ref() is tensor

    def tensor_id(self, tensor: torch.Tensor, line: int | None, created: bool | None = None) -> str:
        record = self.record_of(tensor)
        if record is None:
            record = self.new_tensor(tensor, line, created)
        return record["id"]

    def new_tensor(self, tensor: torch.Tensor, line: int | None, created: bool | None) -> dict:
        grad_fn = tensor.grad_fn
        if created is None:
            # a tensor first met as an input: made in this block if its node is new, or if a
            # constructor running in the block holds it (nn.Linear's weight, first met being initialised)
            created = (grad_fn is not None and not self.graph.made_before(grad_fn)) or (
                self.current_constructor is not None and not self.existed_before(tensor)
            )
        record = {
            "id": f"t{len(self.records)}",
            "name": None,
            "line": line,
            "created": created,
            "module": self.current_module if created else None,
            "made_by": None,  # the operation that made it, when we saw it
            "output_of": None,  # the module whose forward made and returned it
            "node": None,
            "value": None,
        }
        self.facts_into(record, tensor)
        if tensor.numel() <= _facts.MAX_VALUES:
            record["value"] = self.summary(tensor)
        ref = weakref.ref(tensor)
        self.by_id[id(tensor)] = (ref, record)
        self.records.append(record)
        self.refs.append(ref)
        if grad_fn is not None:
            self.graph.register(grad_fn, line)
            self.graph.link_output(grad_fn, tensor.output_nr, record)
        return record

    def summary(self, tensor: torch.Tensor) -> dict:
        """A small tensor's summary now (its statistics when read), or "uninitialised"."""
        if self.is_uninitialised(tensor):
            shape, dtype = _facts.shape_of(tensor), _facts.dtype_name(tensor.dtype)
            return _facts.placeholder(shape, dtype, "uninitialised")
        return _facts.summarize(tensor, deferred=self.deferred)

    def is_uninitialised(self, tensor: torch.Tensor) -> bool:
        """Does the tensor lie on memory nothing wrote since torch.empty handed it out?"""
        return bool(self.uninitialised) and storage_of(tensor) in self.uninitialised

    def leaf_record(self, tensor: torch.Tensor) -> dict:
        """The record of a leaf the autograd graph reached, made when the block never used it."""
        record = self.record_of(tensor)
        return record if record is not None else self.new_tensor(tensor, None, False)

    @staticmethod
    def facts_into(record: dict, tensor: torch.Tensor) -> None:
        # runs for every tensor the block makes: plain assignments, no intermediate dicts
        grad_fn = tensor.grad_fn
        record["shape"] = _facts.shape_of(tensor)
        record["dtype"] = _facts.dtype_name(tensor.dtype)
        record["device"] = _facts.device_name(tensor.device)
        record["requires_grad"] = tensor.requires_grad
        record["is_leaf"] = tensor.is_leaf
        record["retains_grad"] = tensor.retains_grad
        record["grad_fn"] = node_name(grad_fn) if grad_fn is not None else None
        record["version"] = _facts.version_of(tensor)
        record["is_parameter"] = isinstance(tensor, torch.nn.Parameter)

    # ------------------------------------------------------------------ NOTE [uninitialised memory]
    def mark_uninitialised(self, tensors) -> None:
        for tensor in tensors:
            address = storage_of(tensor)
            if address:
                self.uninitialised.add(address)

    def mark_written(self, tensors) -> None:
        for tensor in tensors:
            self.uninitialised.discard(storage_of(tensor))

    def release(self) -> None:
        """Drop every reference to the learner's objects (the block ended)."""
        self.by_id = {}
        self.refs = []
        self.before = {}
        self.uninitialised = set()
        self.graph.release()
