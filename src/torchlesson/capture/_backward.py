"""The backward half of a trace: every backward pass, the order the engine ran its nodes and the
gradient that flowed into every tensor.

The mode hands :meth:`Backward.run` every ``Tensor.backward``, ``torch.autograd.backward`` and
``torch.autograd.grad``. For that pass only, a pre-hook on every autograd node it can run records the
gradients arriving at the node; the hooks are removed when the pass ends, whatever happens.

NOTE [intermediate gradients]: PyTorch keeps ``.grad`` only for leaves (and tensors that
``retain_grad()``). The gradient that flows into an intermediate ``y`` is the gradient the engine passes
to ``y.grad_fn`` for ``y``'s ``output_nr``: a node pre-hook sees exactly that tuple of gradients before
the node runs. Returning ``None`` from the hook leaves every gradient unchanged, and the hook is removed
when the pass ends, so no ``retain_grad`` or tensor hook ever touches a user tensor.

NOTE [gradients of in-place versions]: after ``y.mul_(3)`` one tensor has two autograd nodes:
``MulBackward0`` of ``x * 2`` made its first version, the node of ``mul_`` its second (the op records
it: ``op["nodes"][y] = node id``). They receive different gradients (here 3 and 1), but ``grads`` has
one slot per tensor: it keeps the last one the engine hands over, the oldest version's (newer nodes run
first). So for every tensor an in-place op gave a new node, the pass also keeps ``node_grads``: node id
-> the gradient that node received; each version's box and the replay show their own.

This module's functions are on the stack while the learner's backward runs (NOTE [tracer frames] in
_frames.py).
"""

from __future__ import annotations

import re

import torch

from . import _facts
from ._autograd_graph import ACCUMULATE_GRAD
from ._calls import BACKWARD, GRAD, signature, tensors_in
from ._forward import Forward
from ._frames import Block
from ._leaf_gradients import LeafGradients
from ._recording import Recording, own_reads, storage_of

_VERSION_ERROR = re.compile(r"output (\d+) of (\w+), is at version (\d+); expected version (\d+)")


def _arguments(func, args, kwargs) -> dict:
    """The arguments of a backward call by name (``inspect.Signature.bind`` costs ~10 us a call)."""
    names = _PARAMETERS.get(func)
    if names is None:
        names = _PARAMETERS[func] = tuple(signature(func).parameters)
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


_PARAMETERS: dict = {}


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


class Backward:
    """The backward passes of one trace."""

    def __init__(self, rec: Recording, block: Block, forward: Forward, leaf_grads: LeafGradients):
        self.rec = rec
        self.block = block
        self.forward = forward
        self.leaf_grads = leaf_grads
        self.passes: list[dict] = []
        self._memo: dict = {}  # gradients of the running pass summarised so far (see summarize_shared)

    def run(self, func, kind: int, args, kwargs, caller):
        """Run a backward pass for the learner, observing it."""
        __tracebackhide__ = True
        rec = self.rec
        if rec.stopped is not None:
            return func(*args, **kwargs)
        rec.guarded(self.leaf_grads.flush)  # the engine may accumulate into a held .grad in place
        try:
            with own_reads():
                passage, handles, late, bound, line = self._begin(func, kind, args, kwargs, caller)
        except Exception as exc:  # NOTE [the tracer never breaks the cell] in _recording.py
            rec.stop(exc)
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            rec.guarded(self._note_error, exc, line)
            raise
        finally:
            for handle in handles:
                handle.remove()
            try:  # even once stopped: it fills the gradients the pass left to read late
                with own_reads():
                    self._end(passage, late)
            except Exception as exc:
                rec.stop(exc)
        if kind == GRAD:
            rec.guarded(self._note_returned_grads, passage, bound, result, line)
        return result

    def _begin(self, func, kind: int, args, kwargs, caller):
        """Record a backward pass's call and put a pre-hook on every node it can run."""
        forward, rec = self.forward, self.rec
        forward.settle()
        site = self.block.site(caller)
        line = site.line if site is not None else None
        if site is not None:
            forward.bindings.passed(site)
        bound = _arguments(func, args, kwargs)
        if func is torch.Tensor.backward:
            roots, gradient = [bound["self"]], bound.get("gradient")
        elif kind == GRAD:
            roots, gradient = bound["outputs"], bound.get("grad_outputs")
        else:
            roots, gradient = bound["tensors"], bound.get("grad_tensors")
        roots = list(tensors_in(roots))
        grads_given = list(tensors_in(gradient)) if gradient is not None else []
        passage = {
            "id": f"b{len(self.passes)}",
            "line": line,
            "kind": "grad" if kind == GRAD else "backward",
            "root": [forward.input_id(t, line) for t in roots],
            "gradient": _facts.summarize(grads_given[0], deferred=rec.deferred) if grads_given else None,
            "retain_graph": bool(bound.get("retain_graph") or bound.get("create_graph")),
            "create_graph": bool(bound.get("create_graph")),
            "order": [],
            "grads": {},
            "accumulated": [],
        }
        self.passes.append(passage)
        self._memo = {}
        handles: list = []
        # leaves whose flowed gradient is read from their .grad after the pass (NOTE [late leaf
        # gradients] in _leaf_gradients.py); torch.autograd.grad leaves every .grad as it was
        late: list[str] | None = [] if kind == BACKWARD else None

        def hook(node, record):
            handles.append(self._hook_node(node, record, passage, late))

        try:
            for tensor in roots:
                if tensor.grad_fn is not None:
                    rec.graph.register(tensor.grad_fn, line, visit=hook)
        except BaseException:
            for handle in handles:
                handle.remove()
            raise
        return passage, handles, late, bound, line

    def _end(self, passage: dict, late: list[str] | None) -> None:
        self._memo = {}
        for tensor_id in late or ():
            record, ref = self.rec.slot(tensor_id)
            self.leaf_grads.hold(passage["grads"], tensor_id, ref, record["shape"], record["dtype"])

    def _note_returned_grads(self, passage: dict, bound, result, line) -> None:
        inputs = list(tensors_in(bound["inputs"]))
        for tensor, grad in zip(inputs, result, strict=False):
            if grad is not None:
                tensor_id = self.forward.input_id(tensor, line)
                passage["grads"][tensor_id] = _facts.summarize(grad, deferred=self.rec.deferred)

    def _hook_node(self, node, record: dict, passage: dict, late: list[str] | None):
        node_id, outputs, grads = record["id"], record["outputs"], passage["grads"]
        rec = self.rec
        deferred, memo, rewritten = rec.deferred, self._memo, self.forward.rewritten
        is_leaf_node = record["name"] == ACCUMULATE_GRAD
        leaf_ref = rec.slot(outputs[0])[1] if is_leaf_node and late is not None else None

        def prehook(grad_outputs):
            # observe only: returning None keeps every gradient as it is
            if rec.stopped is not None:
                return
            try:
                with own_reads():
                    passage["order"].append(node_id)
                    for output_nr, tensor_id in outputs.items():
                        if output_nr >= len(grad_outputs) or grad_outputs[output_nr] is None:
                            continue
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
            except Exception as exc:  # an error here would fail the learner's backward
                rec.stop(exc)

        return node.register_prehook(prehook)

    def _note_error(self, exc: BaseException, line) -> None:
        match = _VERSION_ERROR.search(str(exc))
        modified_by = None
        ops = self.forward.ops
        if match:
            node_name, version = match.group(2), int(match.group(3))
            candidates = {
                out
                for node in self.rec.graph.nodes
                # the message names the forward op ("Sigmoid") or the node ("SigmoidBackward0")
                if node["name"] == node_name or node["name"].startswith(node_name + "Backward")
                for out in node["outputs"].values()
            }
            # the same memory, written through another tensor: a detached alias or a view of it
            memory = {
                storage_of(ref()) for ref in (self.rec.slot(t)[1] for t in candidates) if ref() is not None
            }
            memory.discard(None)
            for op in reversed(ops):
                if not op["inplace"]:
                    continue
                written = op.get("version", {})
                if any(written.get(t) == version for t in candidates) or (
                    op.get("_storage") in memory and version in written.values()
                ):
                    modified_by = op["id"]
                    break
            if modified_by is None:
                modified_by = next((op["id"] for op in reversed(ops) if op["inplace"]
                                    and set(op["outputs"]) & candidates), None)  # fmt: skip
        self.forward.op_error = {"exc": id(exc), "op_name": "backward", "line": line, "module": None,
                                 "inputs": [], "modified_by": modified_by}  # fmt: skip
