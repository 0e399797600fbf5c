"""Capture what a block of code does to tensors and gradients: ``trace()`` and the magic's runner.

How it observes (and why nothing is left behind):

* a ``TorchFunctionMode`` sees every torch call made while the block runs (``mul``, ``linear``,
  ``Tensor.backward``...), calls it unchanged and records plain facts about its inputs and outputs;
* global ``nn.Module`` forward hooks tell which module path ran an operation;
* during each backward pass only, a ``register_prehook`` on every autograd node of that pass records
  the gradient arriving at the node (see NOTE [intermediate gradients]).

All of them are removed in ``finally`` blocks. The tracer keeps weak references to tensors only, and
identifies autograd nodes by ``(id, sequence number)`` without holding them (nodes are not
weak-referenceable), so a learner's tensors and graphs are freed exactly as without tracing.

This module owns the mode, the tracer (set-up and tear-down, tensors, operations, cuts, backward
passes, errors, the finished Trace) and the two entry points. It consults ``_calls`` (what a torch call
is), ``_autograd_graph`` (node ids and edges) and ``_tracebacks`` (tracebacks without our frames).

NOTE [intermediate gradients]
PyTorch keeps ``.grad`` only for leaves (and tensors that ``retain_grad()``). The gradient that flows
into an intermediate ``y`` is the gradient the engine passes to ``y.grad_fn`` for ``y``'s
``output_nr``: a node pre-hook sees exactly that tuple of gradients before the node runs. Returning
``None`` from the hook leaves every gradient unchanged, and the hook is removed when the pass ends, so
no ``retain_grad`` or tensor hook ever touches a user tensor.

NOTE [gradients of in-place versions]
After ``y.mul_(3)`` one tensor has two autograd nodes: ``MulBackward0`` of ``x * 2`` made its first
version, the node of ``mul_`` its second (the op records it: ``op["nodes"][y] = node id``). They
receive different gradients (here 3 and 1), but ``grads`` has one slot per tensor: it keeps the last
one the engine hands over, the oldest version's (newer nodes run first). So for every tensor an
in-place op gave a new node, the pass also keeps ``node_grads``: node id -> the gradient that node
received; each version's box and the replay show their own.
"""

from __future__ import annotations

import re
import sys
import weakref
from contextlib import contextmanager, suppress
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from . import _facts
from ._autograd_graph import ACCUMULATE_GRAD, AutogradGraph, node_name
from ._calls import (
    BACKWARD,
    GRAD,
    SET_ATTRIBUTE,
    SET_REQUIRES_GRAD,
    SKIP,
    changed_in_place,
    classify,
    constant_repr,
    op_name,
    signature,
    tensors_in,
)
from ._leaf_gradients import LeafGradients
from ._model import Trace
from ._trace_end import TraceEnd
from ._tracebacks import clean_tracebacks, strip_dispatch_frames
from ._warnings import WarningRelocator

# NOTE [tracer frames]: while tracing, our frames sit between the learner's code and each torch call it
# makes. Tracebacks drop them and warnings look past them (_tracebacks.py, _warnings.py), both knowing
# them by file: this module's, and torch's dispatch to the mode. So every function that is on the stack
# while the learner's call runs (the mode's __torch_function__, the backward runner, the node pre-hooks
# the engine calls) lives here; what they only consult (_calls, _autograd_graph, _facts) has returned
# by then. _OUR_MODULES in _warnings.py names the same modules.
_OVERRIDES_FILE = sys.modules[TorchFunctionMode.__module__].__file__
_TRACER_FILES = (__file__,)
_TORCH_FILES = (_OVERRIDES_FILE,)

# NOTE [our reads are not the learner's calls]: the tracer reads tensors (grad_fn, values, .grad),
# and a tensor subclass with its own __torch_function__ would take those reads for calls of the
# learner's program (a teacher's logging subclass would log them). Our reads run with subclass
# dispatch off; the learner's calls never do.
_OWN_READS = torch._C.DisableTorchFunctionSubclass

_VERSION_ERROR = re.compile(r"output (\d+) of (\w+), is at version (\d+); expected version (\d+)")


class _Recorder(TorchFunctionMode):
    """The torch function mode; all state lives on the tracer it reports to."""

    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.tracer = tracer
        self.kinds: dict[Any, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        __tracebackhide__ = True
        if kwargs is None:
            kwargs = {}
        try:
            kind = self.kinds[func]
        except (KeyError, TypeError):
            kind = classify(func)
            with suppress(TypeError):
                self.kinds[func] = kind
        tracer = self.tracer
        if kind == SKIP or tracer.stopped is not None:
            return func(*args, **kwargs)
        if kind in (BACKWARD, GRAD):
            return tracer.run_backward(func, kind, args, kwargs)
        try:
            with _OWN_READS():
                line, direct, grad_enabled = tracer.before_call(func, kind, args, kwargs)
        except Exception as exc:  # NOTE [the tracer never breaks the cell]
            tracer.stop(exc)
            return func(*args, **kwargs)
        if kind == SET_ATTRIBUTE:
            return func(*args, **kwargs)
        try:
            out = func(*args, **kwargs)
        except BaseException as exc:
            tracer.guarded(tracer.op_failed, func, args, kwargs, line, exc)
            raise
        if kind == SET_REQUIRES_GRAD:
            tracer.guarded(tracer.requires_grad_set, args, line)
        else:
            tracer.guarded(tracer.record_op, func, args, kwargs, out, line, grad_enabled, direct)
        return out


def _stored_as_is(leaf: torch.Tensor | None, grad: torch.Tensor) -> bool:
    """Will the leaf's ``.grad`` hold exactly ``grad`` after this pass? (NOTE [late leaf gradients])

    Yes when it has no gradient yet and no hook may change what is stored; only big gradients are
    worth the wait (small ones are copied in microseconds).
    """
    return (
        leaf is not None
        and grad.numel() > _facts.MAX_VALUES
        and grad.layout == torch.strided
        and leaf.grad is None
        and not leaf._post_accumulate_grad_hooks
    )


class _Tracer(TraceEnd):
    """Installs the observers on ``__enter__``, removes every one on ``__exit__``, builds the Trace
    (the end-of-block steps are in _trace_end.py)."""

    def __init__(self, *, max_ops: int = 5000, namespace: dict | None = None, source: str | None = None):
        if not isinstance(max_ops, int) or max_ops < 1:
            raise ValueError(f"max_ops must be a positive integer, not {max_ops!r}")
        self.max_ops = max_ops
        self.namespace = namespace
        self.source = source
        self.trace = Trace()
        self._active = False

    # ------------------------------------------------------------------ set-up and tear-down
    def __enter__(self) -> Trace:
        if self._active:
            raise RuntimeError("this trace is already running")
        self._active = True
        # id(tensor) -> (weak reference, record): a plain dict, confirmed by the reference because an
        # id is reused once its tensor dies (torch's WeakIdKeyDictionary costs microseconds a lookup)
        self._by_id: dict[int, tuple[weakref.ref, dict]] = {}
        self._records: list[dict] = []
        self._refs: list[weakref.ref | None] = []
        self._ops: list[dict] = []
        self._passes: list[dict] = []
        self._cuts: list[dict] = []
        self._op_count = 0
        self._truncated = False
        self._op_error: dict | None = None
        self._error: dict | None = None
        self._module_stack: list[str] = []
        self._deferred: list[dict] = []  # small summaries whose statistics are computed when read
        self.leaf_grads = LeafGradients(self._deferred)  # NOTE [late leaf gradients]
        self.stopped: dict | None = None  # NOTE [the tracer never breaks the cell]
        self._rewritten: set[str] = set()  # tensors an in-place op gave a new autograd node
        self._module_paths: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._handles: list[Any] = []
        self._graph = AutogradGraph(self._leaf_record)
        if self.namespace is None:
            # the Python API: the block's own frame is "the cell"; its variables name the tensors
            self._root_frame = sys._getframe(1)
            self._root_code = self._root_frame.f_code
            self._root_file = self._root_code.co_filename
        else:
            self._root_frame = None
            self._root_code = None
            self._root_file = None
        # tensors already bound before the block: not "made by it" when found bound afterwards
        self._before: WeakIdKeyDictionary = WeakIdKeyDictionary()
        for value in list(self._variables().values()):
            if isinstance(value, torch.Tensor):
                self._before[value] = True
        mode = _Recorder(self)
        try:
            from torch.nn.modules import module as nn_module

            self._handles.append(nn_module.register_module_forward_pre_hook(self._module_enter))
            self._handles.append(nn_module.register_module_forward_hook(self._module_exit, always_call=True))
            self._handles.append(WarningRelocator((*_TRACER_FILES, *_TORCH_FILES)))
            mode.__enter__()
        except BaseException:
            self._remove_observers()
            raise
        self._mode = mode
        return self.trace

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._mode.__exit__(None, None, None)
        finally:
            self._remove_observers()
        if exc is not None:
            strip_dispatch_frames(tb, _TRACER_FILES, _TORCH_FILES)
            self.note_exception(exc)
        with _OWN_READS():
            self._finish()
        self._active = False

    # ------------------------------------------------------------------ our own failures
    def stop(self, exc: Exception) -> None:
        """NOTE [the tracer never breaks the cell]: whatever fails in the tracer's own code (a tensor
        kind it cannot read, a bug) stops the recording, not the learner's code: the torch call is
        made as without tracing, every later one too, and the trace says where it stopped and why.
        """
        if self.stopped is None:
            message = str(exc).strip()
            message = message.splitlines()[0][:300] if message else ""
            self.stopped = {"type": type(exc).__name__, "message": message, "op_count": self._op_count}

    def guarded(self, record, *args) -> None:
        """``record(*args)``, a step of recording that must not raise into the learner's code."""
        if self.stopped is not None:
            return
        try:
            with _OWN_READS():
                record(*args)
        except Exception as exc:
            self.stop(exc)

    def before_call(self, func, kind: int, args, kwargs) -> tuple[int | None, bool, bool]:
        """Before a torch call runs: read the held gradients it could change; where it was called."""
        if self.leaf_grads:
            if kind == SET_ATTRIBUTE:
                self.leaf_grads.flush()
            else:
                self.leaf_grads.flush_touching(changed_in_place(func, args, kwargs))
        if kind == SET_ATTRIBUTE or self._truncated:  # past --max-ops record_op only counts
            return None, False, False
        line, direct = self.cell_line(3)  # learner's call -> __torch_function__ -> here -> cell_line
        return line, direct, torch.is_grad_enabled()

    def _remove_observers(self) -> None:
        handles, self._handles = self._handles, []
        for handle in reversed(handles):
            handle.remove()

    # ------------------------------------------------------------------ where in the cell
    def _is_block(self, frame) -> bool:
        """Is ``frame`` the traced block itself: the ``with`` block's frame, or the cell's top level?"""
        if self._root_code is not None:
            return frame.f_code is self._root_code
        # IPython 7.32-7.34 and 8.1-8.4 name a cell's top-level code "<cell line: N>"; a function's
        # code cannot have a name that starts with "<"
        name = frame.f_code.co_name
        return frame.f_globals is self.namespace and (name == "<module>" or name.startswith("<cell line:"))

    def cell_line(self, caller: int = 2) -> tuple[int | None, bool]:
        """(line of the learner's code that led to this call, called directly from that code?).

        ``caller``: how many frames up the learner's call is (2: our caller's caller).
        """
        frame = sys._getframe(caller)
        depth = 0
        while frame is not None:
            if self._is_block(frame):
                return frame.f_lineno, depth == 0
            if frame.f_code.co_filename != _OVERRIDES_FILE:
                depth += 1
            frame = frame.f_back
        return None, False

    # ------------------------------------------------------------------ modules
    def _module_enter(self, module, args) -> None:
        try:
            path = self._module_paths.get(module)  # no tensor is read here: no _OWN_READS needed
            if path is None:
                path = self._resolve_module_path(module)
        except Exception as exc:  # NOTE [the tracer never breaks the cell]
            self.stop(exc)
            path = type(module).__name__
        self._module_stack.append(path)

    def _module_exit(self, module, args, output) -> None:
        if self._module_stack:
            path = self._module_stack.pop()
            self.guarded(self._note_module_output, path, output)

    def _note_module_output(self, path: str, output) -> None:
        for tensor in tensors_in(output):
            record = self._record_of(tensor)
            # made inside this very module (not passed through, as nn.Identity does)
            if record is not None and record["module"] == path and record["output_of"] is None:
                record["output_of"] = path

    def _resolve_module_path(self, module) -> str:
        for var, value in self._named_modules():
            for sub_path, sub in value.named_modules(prefix=var):
                self._module_paths.setdefault(sub, sub_path)
        path = self._module_paths.get(module)
        if path is None:
            parent = self._module_stack[-1] if self._module_stack else None
            path = f"{parent}.{type(module).__name__}" if parent else type(module).__name__
            self._module_paths[module] = path
        return path

    def _variables(self) -> dict:
        if self.namespace is not None:
            return self.namespace
        return self._root_frame.f_locals if self._root_frame is not None else {}

    def _named_modules(self) -> list[tuple[str, torch.nn.Module]]:
        """The modules bound to variables, biggest first: a submodule also bound to a variable of its
        own (``act = nn.Tanh(); model = nn.Sequential(..., act, ...)``) is named by its place in the
        model (``model.1``), since first names win."""
        found = [
            (var, value)
            for var, value in list(self._variables().items())
            if isinstance(value, torch.nn.Module) and not var.startswith("_")
        ]
        return sorted(found, key=lambda item: -sum(1 for _ in item[1].modules()))

    # ------------------------------------------------------------------ tensors and nodes
    def _slot(self, tensor_id: str) -> tuple[dict, weakref.ref]:
        """The record and weak reference of the tensor ``tensor_id`` (``t7``: the 8th recorded)."""
        index = int(tensor_id[1:])
        return self._records[index], self._refs[index]

    def _record_of(self, tensor: torch.Tensor) -> dict | None:
        entry = self._by_id.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return entry[1]
        return None

    def _tensor_id(self, tensor: torch.Tensor, line: int | None, created: bool | None = None) -> str:
        record = self._record_of(tensor)
        if record is None:
            record = self._new_tensor(tensor, line, created)
        return record["id"]

    def _new_tensor(self, tensor: torch.Tensor, line: int | None, created: bool | None) -> dict:
        grad_fn = tensor.grad_fn
        if created is None:
            # a tensor first met as an input: made in this cell only if its node is new
            created = grad_fn is not None and not self._graph.made_before(grad_fn)
        record = {
            "id": f"t{len(self._records)}",
            "name": None,
            "line": line,
            "created": created,
            "module": self._module_stack[-1] if self._module_stack and created else None,
            "made_by": None,  # the operation that made it, when we saw it
            "output_of": None,  # the module whose forward made and returned it
            "node": None,
            "value": None,
        }
        self._facts_into(record, tensor)
        if tensor.numel() <= _facts.MAX_VALUES:
            record["value"] = _facts.summarize(tensor, deferred=self._deferred)
        ref = weakref.ref(tensor)
        self._by_id[id(tensor)] = (ref, record)
        self._records.append(record)
        self._refs.append(ref)
        if grad_fn is not None:
            self._graph.register(grad_fn, line)
            self._graph.link_output(grad_fn, tensor.output_nr, record)
        return record

    def _leaf_record(self, tensor: torch.Tensor) -> dict:
        """The record of a leaf the autograd graph reached, made when the block never used it."""
        record = self._record_of(tensor)
        return record if record is not None else self._new_tensor(tensor, None, False)

    @staticmethod
    def _facts_into(record: dict, tensor: torch.Tensor) -> None:
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

    # ------------------------------------------------------------------ operations
    def record_op(self, func, args, kwargs, out, line, grad_enabled: bool, direct: bool) -> None:
        self._op_count += 1
        if self._op_count > self.max_ops:
            self._truncated = True
            return
        name, inplace, reflected = op_name(func)
        if reflected and len(args) >= 2:
            args = (args[1], args[0], *args[2:])
        inputs: list[dict] = []
        input_tensors: list[torch.Tensor] = []
        for value in args:
            found = list(tensors_in(value))
            if found:
                for tensor in found:
                    input_tensors.append(tensor)
                    inputs.append({"tensor": self._tensor_id(tensor, line)})
            else:
                text = constant_repr(value)
                if text is not None:
                    inputs.append({"value": text})
        for key, value in kwargs.items():
            if key == "out":
                continue
            found = list(tensors_in(value))
            for tensor in found:
                input_tensors.append(tensor)
                inputs.append({"tensor": self._tensor_id(tensor, line), "arg": key})
            if not found and value is not None:
                inputs.append({"value": constant_repr(value), "arg": key})
        written = kwargs.get("out")
        outputs: list[str] = []
        op = {"id": f"o{len(self._ops)}", "name": name, "line": line, "inputs": inputs, "outputs": outputs,
              "grad_enabled": grad_enabled, "inference_mode": torch.is_inference_mode_enabled(),
              "module": self._module_stack[-1] if self._module_stack else None,
              "inplace": inplace or written is not None}  # fmt: skip
        self._ops.append(op)
        targets = list(tensors_in(written)) if written is not None else []
        if inplace and input_tensors and not targets:
            targets = [input_tensors[0]]
        if targets:
            op["version"] = {}
            for tensor in targets:
                record = self._record_of(tensor) or self._new_tensor(tensor, line, None)
                if name == "requires_grad_" and record["requires_grad"] and not tensor.requires_grad:
                    self._cuts.append({"tensor": record["id"], "source": None, "op": op["id"],
                                       "reason": "requires_grad_(False)", "line": line})  # fmt: skip
                self._facts_into(record, tensor)
                if tensor.grad_fn is not None:
                    self._graph.register(tensor.grad_fn, line)
                    node_id = self._graph.link_output(tensor.grad_fn, tensor.output_nr, record)
                    # NOTE [gradients of in-place versions]
                    op.setdefault("nodes", {})[record["id"]] = node_id
                    self._rewritten.add(record["id"])
                outputs.append(record["id"])
                op["version"][record["id"]] = _facts.version_of(tensor)
        else:
            for tensor in tensors_in(out):
                record = self._record_of(tensor)
                if record is None:
                    record = self._new_tensor(tensor, line, True)
                    record["made_by"] = name
                outputs.append(record["id"])
        if direct:
            self._find_cut(op, name, input_tensors, out, grad_enabled)

    def _find_cut(self, op: dict, name: str, inputs: list[torch.Tensor], out, grad_enabled: bool) -> None:
        """Where gradient flow stops, for operations the learner's own code called."""
        source = next((t for t in inputs if t.requires_grad), None)
        if source is None:
            return
        produced = [t for t in tensors_in(out) if not t.requires_grad]
        if not produced:
            return
        if name in ("detach", "detach_"):
            reason = "detach"
        elif name == "requires_grad_":
            reason = "requires_grad_(False)"
        elif not grad_enabled:
            reason = "inference_mode" if torch.is_inference_mode_enabled() else "no_grad"
        elif not (produced[0].is_floating_point() or produced[0].is_complex()):
            reason = "integer dtype"
        else:
            return
        source_id = self._record_of(source)["id"]
        for tensor in produced:
            self._cuts.append({"tensor": self._record_of(tensor)["id"], "source": source_id,
                               "reason": reason, "line": op["line"], "op": op["id"]})  # fmt: skip

    def requires_grad_set(self, args, line) -> None:
        tensor, value = args[0], args[1]
        record = self._record_of(tensor)
        if record is None:
            record = self._new_tensor(tensor, line, None)
        self._facts_into(record, tensor)
        if not value:
            self._cuts.append({"tensor": record["id"], "source": None, "reason": "requires_grad_(False)",
                               "line": line, "op": None})  # fmt: skip

    def op_failed(self, func, args, kwargs, line, exc: BaseException) -> None:
        if self._op_error is not None and self._op_error["exc"] == id(exc):
            return  # already recorded by an inner operation
        name, _, reflected = op_name(func)
        tensors = [t for v in (*args, *kwargs.values()) for t in tensors_in(v)]
        if reflected:
            tensors.reverse()
        self._op_error = {
            "exc": id(exc),
            "op_name": name,
            "line": line,
            "module": self._module_stack[-1] if self._module_stack else None,
            "inputs": [dict(_facts.describe_input(t), tensor=self._tensor_id(t, line)) for t in tensors],
        }

    # ------------------------------------------------------------------ backward passes
    def run_backward(self, func, kind: int, args, kwargs):
        __tracebackhide__ = True
        if self.stopped is not None:
            return func(*args, **kwargs)
        self.guarded(self.leaf_grads.flush)  # the engine may accumulate into a held .grad in place
        if self._truncated:  # past --max-ops nothing more is recorded, backward passes included
            self._op_count += 1
            return func(*args, **kwargs)
        try:
            with _OWN_READS():
                passage, handles, late, bound, line = self._begin_pass(func, kind, args, kwargs)
        except Exception as exc:  # NOTE [the tracer never breaks the cell]
            self.stop(exc)
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self.guarded(self._note_backward_error, exc, line)
            raise
        finally:
            for handle in handles:
                handle.remove()
            try:  # even once stopped: it fills the gradients the pass left to read late
                with _OWN_READS():
                    self._end_pass(passage, late)
            except Exception as exc:
                self.stop(exc)
        if kind == GRAD:
            self.guarded(self._note_returned_grads, passage, bound, result, line)
        return result

    def _begin_pass(self, func, kind: int, args, kwargs):
        """Record a backward pass's call and put a pre-hook on every node it can run."""
        line, _ = self.cell_line()
        bound = signature(func).bind(*args, **kwargs).arguments
        if func is torch.Tensor.backward:
            roots, gradient = [bound["self"]], bound.get("gradient")
        elif kind == GRAD:
            roots, gradient = bound["outputs"], bound.get("grad_outputs")
        else:
            roots, gradient = bound["tensors"], bound.get("grad_tensors")
        roots = list(tensors_in(roots))
        grads_given = list(tensors_in(gradient)) if gradient is not None else []
        passage = {
            "id": f"b{len(self._passes)}",
            "line": line,
            "kind": "grad" if kind == GRAD else "backward",
            "root": [self._tensor_id(t, line) for t in roots],
            "gradient": _facts.summarize(grads_given[0], deferred=self._deferred) if grads_given else None,
            "retain_graph": bool(bound.get("retain_graph") or bound.get("create_graph")),
            "create_graph": bool(bound.get("create_graph")),
            "order": [],
            "grads": {},
            "accumulated": [],
        }
        self._passes.append(passage)
        self._pass_memo: dict = {}  # gradients of this pass summarised so far (see summarize_shared)
        handles: list = []
        # leaves whose flowed gradient is read from their .grad after the pass (NOTE [late leaf
        # gradients]); torch.autograd.grad leaves every .grad as it was
        late: list[str] | None = [] if kind == BACKWARD else None

        def hook(node, record):
            handles.append(self._hook_node(node, record, passage, late))

        try:
            for tensor in roots:
                if tensor.grad_fn is not None:
                    self._graph.register(tensor.grad_fn, line, visit=hook)
        except BaseException:
            for handle in handles:
                handle.remove()
            raise
        return passage, handles, late, bound, line

    def _end_pass(self, passage: dict, late: list[str] | None) -> None:
        self._pass_memo = {}
        for tensor_id in late or ():
            record, ref = self._slot(tensor_id)
            self.leaf_grads.hold(passage["grads"], tensor_id, ref, record["shape"], record["dtype"])

    def _note_returned_grads(self, passage: dict, bound, result, line) -> None:
        inputs = list(tensors_in(bound["inputs"]))
        for tensor, grad in zip(inputs, result, strict=False):
            if grad is not None:
                tensor_id = self._tensor_id(tensor, line)
                passage["grads"][tensor_id] = _facts.summarize(grad, deferred=self._deferred)

    def _hook_node(self, node, record: dict, passage: dict, late: list[str] | None):
        node_id, outputs, grads = record["id"], record["outputs"], passage["grads"]
        deferred, memo, rewritten = self._deferred, self._pass_memo, self._rewritten
        is_leaf_node = record["name"] == ACCUMULATE_GRAD
        leaf_ref = self._slot(outputs[0])[1] if is_leaf_node and late is not None else None

        def prehook(grad_outputs):
            # observe only: returning None keeps every gradient as it is
            if self.stopped is None:
                try:
                    with _OWN_READS():
                        observe(grad_outputs)
                except Exception as exc:  # an error here would fail the learner's backward
                    self.stop(exc)

        def observe(grad_outputs):
            passage["order"].append(node_id)
            for output_nr, tensor_id in outputs.items():
                if output_nr < len(grad_outputs) and grad_outputs[output_nr] is not None:
                    grad = grad_outputs[output_nr]
                    if is_leaf_node:
                        passage["accumulated"].append(tensor_id)
                        if leaf_ref is not None and _stored_as_is(leaf_ref(), grad):
                            grads[tensor_id] = None  # in the pass's order; filled after it
                            late.append(tensor_id)
                            continue
                    summary = _facts.summarize_shared(grad, memo, deferred=deferred)
                    if tensor_id in rewritten:  # NOTE [gradients of in-place versions]
                        passage.setdefault("node_grads", {})[node_id] = summary
                    grads[tensor_id] = summary

        return node.register_prehook(prehook)

    def _note_backward_error(self, exc: BaseException, line) -> None:
        match = _VERSION_ERROR.search(str(exc))
        modified_by = None
        if match:
            node_name, version = match.group(2), int(match.group(3))
            candidates = {
                out
                for node in self._graph.nodes
                # the message names the forward op ("Sigmoid") or the node ("SigmoidBackward0")
                if node["name"] == node_name or node["name"].startswith(node_name + "Backward")
                for out in node["outputs"].values()
            }
            for op in reversed(self._ops):
                if op["inplace"] and any(op.get("version", {}).get(t) == version for t in candidates):
                    modified_by = op["id"]
                    break
            if modified_by is None:
                modified_by = next((op["id"] for op in reversed(self._ops) if op["inplace"]
                                    and set(op["outputs"]) & candidates), None)  # fmt: skip
        self._op_error = {"exc": id(exc), "op_name": "backward", "line": line, "module": None, "inputs": [],
                          "modified_by": modified_by}  # fmt: skip

    # ------------------------------------------------------------------ the end
    def note_exception(self, exc: BaseException) -> None:
        """The block raised ``exc``: describe it, with the failing operation when we saw it."""
        error = {"type": type(exc).__name__, "message": str(exc).strip(), "line": self._error_line(exc),
                 "op": None, "op_name": None, "inputs": []}  # fmt: skip
        op_error = self._op_error
        if op_error is not None and op_error["exc"] == id(exc):
            error.update({k: v for k, v in op_error.items() if k != "exc"})
            if op_error["line"] is not None:
                error["line"] = op_error["line"]
        self._error = error

    def _error_line(self, exc: BaseException) -> int | None:
        """The block's line in the traceback (the innermost, if the block appears more than once)."""
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if self._is_block(tb.tb_frame):
                line = tb.tb_lineno
            tb = tb.tb_next
        return line


def trace(max_ops: int = 5000) -> _Tracer:
    """Record what the code in a ``with`` block does to tensors and gradients.

    The block runs exactly as without tracing; afterwards the returned :class:`Trace` holds plain
    facts (``to_dict()``), draws itself in a notebook, and keeps no tensor alive.

    >>> import torch, torchlesson
    >>> with torchlesson.trace() as t:
    ...     x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ...     (x * 2).sum().backward()
    >>> t.tensor("x")["grad"]["values"]
    [2.0, 2.0, 2.0]
    """
    return _Tracer(max_ops=max_ops)


@contextmanager
def _numbered_as(shell, outer):
    """Compile the cell under the number of the cell that holds the magic.

    IPython names a cell's code after an execution count (``Cell In[3]`` in tracebacks, the file
    name warnings show), and IPython 9 counts a cell before running it, so the inner ``run_cell``
    would name the learner's code after the next cell (``In[4]``). Only the name changes: the count
    the learner's code can read stays IPython's.
    """
    number = getattr(outer, "execution_count", None)
    compiler = shell.compile
    if number is None or "cache" in vars(compiler):
        yield
        return
    cache = compiler.cache

    def cache_as_outer(transformed_code, _number=0, *args, **kwargs):
        return cache(transformed_code, number, *args, **kwargs)

    compiler.cache = cache_as_outer
    try:
        yield
    finally:
        del compiler.cache


def run_cell_traced(shell, cell: str, *, max_ops: int = 5000) -> Trace:
    """Run a notebook cell through IPython exactly as usual, traced; used by ``%%autograd_trace``.

    The cell's output, display, traceback and success or failure are IPython's own: the cell runs
    with ``shell.run_cell``, and a failure is handed on to the cell that holds the magic so the
    notebook stops there as it would without us.
    """
    outer = shell.displayhook.exec_result
    tracer = _Tracer(max_ops=max_ops, namespace=shell.user_ns, source=cell)
    with (
        tracer as result_trace,
        clean_tracebacks(shell, _TRACER_FILES, _TORCH_FILES),
        _numbered_as(shell, outer),
    ):
        result = shell.run_cell(cell, store_history=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            tracer.note_exception(error)
    shell.displayhook.exec_result = outer
    if error is not None and outer is not None:
        outer.error_in_exec = error
    return result_trace
