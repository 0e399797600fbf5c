"""The forward half of a trace: every torch call the block makes, recorded as an operation.

For each call the mode hands over, :meth:`Forward.before_call` finds where it came from (one walk up
the stack, ``_frames.Block.site``) and :meth:`Forward.record_op` records the operation once it has run:
its inputs (tensors by record, constants by a short repr), its outputs, in-place writes with their
version counter, and where gradient flow stops (cuts). It also names the module or custom
``autograd.Function`` that ran each call (NOTE [modules from the stack] in _frames.py) and folds each
call of ``torch.compile``'d code into one operation (NOTE [compiled calls]).

NOTE [optimizer calls]: every call of an optimizer's ``step`` or ``zero_grad`` made by the block is one
entry of ``optimizer_calls``: which optimizer (the variable that holds it), its learning rate, the
operations it ran, and, for ``step``, the 2-norm of each parameter it updated before and after (how far
the step moved it); for ``zero_grad(set_to_none=True)``, whose ``p.grad = None`` is no operation, the
gradients it cleared. The operations carry the entry's id (``optimizer``), so a picture can fold them.

NOTE [compiled calls]: dynamo traces the function it compiles, and a function mode on the stack along
with it, so while ``torch.compiler.is_compiling()`` the mode steps aside (the handler's first line) and
the compiled graph has no trace of us. When compiled code runs, the mode sees whatever torch calls it
makes (none for inductor's kernels, aten overloads for aot_eager): none of that is the learner's program.
So every call made under a ``torch._dynamo`` frame is folded into one operation per compiled call,
``compiled f`` (``compiled model`` for a module), with the call's tensor arguments as inputs; its outputs
are the tensors first met afterwards whose autograd node was made while it ran (autograd numbers nodes in
order, so the range of sequence numbers a call spans tells). A function mode also becomes part of
dynamo's guards, so the first traced call of a compiled function compiles it once more; the learner's
results do not change.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from . import _facts
from ._calls import (
    SET_ATTRIBUTE,
    changed_in_place,
    constant_repr,
    op_name,
    tensors_in,
)
from ._frames import _APPLY, Block, Site, local
from ._leaf_gradients import LeafGradients
from ._names import Bindings
from ._recording import Recording, storage_of

# NOTE [uninitialised memory]: operations that hand out memory as they found it
_UNINITIALISED = frozenset(
    ("empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "empty_permuted", "resize_")
)
_next_sequence_nr = torch._C._autograd._get_sequence_nr if hasattr(torch._C, "_autograd") else lambda: 0


class Call:
    """What the forward recorder knows of a torch call before it runs."""

    __slots__ = ("at", "constructor", "direct", "grad_enabled", "in_function", "line", "module", "optimizer")

    def __init__(self, site: Site | None, module: str | None, in_function: bool, grad_enabled: bool) -> None:
        self.constructor = None
        self.optimizer: dict | None = None  # the optimizer call (step, zero_grad) it is part of
        if site is None:
            self.line, self.direct, self.at = None, False, None
        else:
            self.line, self.direct = site.line, site.direct
            # the block's instruction that led here: its source text names what it made (_names.py)
            self.at = (site.frame.f_code, site.frame.f_lasti, site.direct)
            if site.constructor is not None:
                self.constructor = _constructed(local(site.constructor, "self"))
        self.module = module
        self.in_function = in_function  # a custom autograd.Function's forward is running it
        self.grad_enabled = grad_enabled


_IN_COMPILED = object()  # before_call's answer for calls that run inside compiled code
_GRAD = torch._C.TensorBase.grad  # the descriptor whose __set__ is `x.grad = ...`


def _is_parameter(tensor: torch.Tensor) -> bool:
    return isinstance(tensor, torch.nn.Parameter) or (tensor.is_leaf and tensor.requires_grad)


# the first steps of a training loop say how far they moved each parameter; later ones only which
# parameters they updated (a norm reads every number of a parameter, twice per step)
MEASURED_STEPS = 10


def _constructed(instance: Any) -> str | None:
    """The class of a module or optimizer whose ``__init__`` is running (``Linear``), else None."""
    if isinstance(instance, (torch.nn.Module, torch.optim.Optimizer)):
        return type(instance).__name__
    return None


class Forward:
    """Operations, cuts, module paths and compiled calls of one trace."""

    def __init__(self, rec: Recording, block: Block, leaf_grads: LeafGradients, bindings: Bindings):
        self.rec = rec
        self.block = block
        self.leaf_grads = leaf_grads
        self.bindings = bindings
        self.ops: list[dict] = []
        self.cuts: list[dict] = []
        self.rewritten: set[str] = set()  # tensors an in-place op gave a new autograd node
        self.op_error: dict | None = None
        self.module_classes: dict[str, str] = {}  # path -> class name, for every path that ran a call
        self._module_paths: dict[int, tuple[weakref.ref, str]] = {}
        self._compiled: dict | None = None  # the compiled call running now (NOTE [compiled calls])
        self._compiled_key: Any = None
        self._finished_compiled: list[dict] = []  # compiled calls whose outputs may still be met
        self._made_in_function: list[tuple[dict, weakref.ref]] = []
        self.optimizer_calls: list[dict] = []  # NOTE [optimizer calls]
        self._optimizer_key: Any = None
        self._steps_measured = 0

    # ------------------------------------------------------------------ before the call runs
    def before_call(self, func, kind: int, args, kwargs, caller) -> Call | object | None:
        """Before a torch call runs: read the held gradients it could change; where it was called."""
        rec = self.rec
        if self.leaf_grads:
            if kind == SET_ATTRIBUTE:
                self.leaf_grads.flush()
            else:
                self.leaf_grads.flush_touching(changed_in_place(func, args, kwargs))
        if kind == SET_ATTRIBUTE:
            if func.__self__ is _GRAD and len(args) == 2 and args[1] is None:
                self._grad_cleared(args[0], self.block.site(caller))
            return None
        site = self.block.site(caller)
        if site is None:
            rec.current_module = rec.current_constructor = None
            return Call(None, None, False, torch.is_grad_enabled())
        if site.compiled is not None:
            self._enter_compiled(site)
            return _IN_COMPILED
        if self._compiled is not None:
            self._leave_compiled()
        in_function = False
        module = None
        if site.scopes:
            module, in_function = self._scope_path(site.scopes)
        if self._made_in_function and not in_function:
            self.refresh_function_outputs()
        self.bindings.passed(site)
        call = Call(site, module, in_function, torch.is_grad_enabled())
        if site.optimizer is not None:
            self._in_optimizer(site, call, func, args, kwargs)
        else:
            self._optimizer_key = None
        rec.current_module = module
        rec.current_constructor = call.constructor
        return call

    # ------------------------------------------------------------------ modules and Functions
    def _scope_path(self, scopes: list) -> tuple[str, bool]:
        """The path of the innermost module or autograd.Function running the call (``model.0``,
        ``model.0.Square``), and whether a Function's forward is on the way."""
        in_function = any(frame.f_code is _APPLY for frame in scopes)
        frame = scopes[0]
        if frame.f_code is _APPLY:
            cls = local(frame, "cls")
            name = getattr(cls, "__name__", "Function")
            parent = self._scope_path(scopes[1:])[0] if len(scopes) > 1 else None
            path = f"{parent}.{name}" if parent else name
            self.module_classes.setdefault(path, "autograd.Function")
            return path, True
        module = local(frame, "self")
        entry = self._module_paths.get(id(module))
        if entry is not None and entry[0]() is module:
            return entry[1], in_function
        return self._resolve_module(module, scopes), in_function

    def _resolve_module(self, module: torch.nn.Module, scopes: list) -> str:
        """A module's path: its place under a module variable of the block (``model.0``), else its
        class under the module that called it (``model.Linear``), else its class."""
        paths = self._module_paths
        for var, value in self.named_modules():
            for sub_path, sub in value.named_modules(prefix=var):
                if id(sub) not in paths or paths[id(sub)][0]() is not sub:
                    paths[id(sub)] = (weakref.ref(sub), sub_path)
                    self.module_classes.setdefault(sub_path, type(sub).__name__)
        entry = paths.get(id(module))
        if entry is not None and entry[0]() is module:
            return entry[1]
        parent = self._scope_path(scopes[1:])[0] if len(scopes) > 1 else None
        name = type(module).__name__
        path = f"{parent}.{name}" if parent else name
        paths[id(module)] = (weakref.ref(module), path)
        self.module_classes.setdefault(path, name)
        return path

    def named_modules(self) -> list[tuple[str, torch.nn.Module]]:
        """The modules bound to variables, biggest first: a submodule also bound to a variable of its
        own (``act = nn.Tanh(); model = nn.Sequential(..., act, ...)``) is named by its place in the
        model (``model.1``), since first names win."""
        found = [
            (var, value)
            for var, value in list(self.block.variables().items())
            if isinstance(value, torch.nn.Module) and not var.startswith("_")
        ]
        return sorted(found, key=lambda item: -sum(1 for _ in item[1].modules()))

    def refresh_function_outputs(self) -> None:
        """NOTE [Function outputs]: a custom ``autograd.Function`` makes its outputs in ``forward``, with
        grad mode off; autograd gives them their ``grad_fn`` after ``forward`` returns. Once the
        Function's call is over, the facts of what it made are read again."""
        made, self._made_in_function = self._made_in_function, []
        rec = self.rec
        for record, ref in made:
            tensor = ref()
            if tensor is None:
                continue
            rec.facts_into(record, tensor)
            grad_fn = tensor.grad_fn
            if grad_fn is not None and record["node"] is None:
                rec.graph.register(grad_fn, record["line"])
                rec.graph.link_output(grad_fn, tensor.output_nr, record)

    # ------------------------------------------------------------------ NOTE [compiled calls]
    def _enter_compiled(self, site: Site) -> None:
        key = (id(site.compiled), site.frame.f_code, site.frame.f_lasti)
        if self._compiled is not None and key == self._compiled_key:
            return
        if self._compiled is not None:
            self._leave_compiled()
        rec = self.rec
        rec.op_count += 1
        if rec.op_count > rec.max_ops:
            self.truncate()
            return
        frame = site.compiled
        fn = local(frame, "fn")
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, torch.nn.Module):
            name = self._scope_path_of(owner)
        else:
            name = getattr(fn, "__name__", None) or type(fn).__name__
        arguments = (*(local(frame, "args") or ()), *(local(frame, "kwargs") or {}).values())
        inputs = [{"tensor": rec.tensor_id(t, site.line)} for value in arguments for t in tensors_in(value)]
        op = {"id": f"o{len(self.ops)}", "name": f"compiled {name}", "line": site.line, "inputs": inputs,
              "outputs": [], "grad_enabled": torch.is_grad_enabled(),
              "inference_mode": torch.is_inference_mode_enabled(), "module": None, "inplace": False,
              "compiled": name, "_at": (site.frame.f_code, site.frame.f_lasti, True),
              "_seq": [_next_sequence_nr(), None]}  # fmt: skip
        self.ops.append(op)
        self._compiled, self._compiled_key = op, key

    def _scope_path_of(self, module: torch.nn.Module) -> str:
        entry = self._module_paths.get(id(module))
        if entry is not None and entry[0]() is module:
            return entry[1]
        return self._resolve_module(module, [])

    def _leave_compiled(self) -> None:
        op, self._compiled, self._compiled_key = self._compiled, None, None
        if op is not None:
            op["_seq"][1] = _next_sequence_nr()
            self._finished_compiled.append(op)

    def made_by_compiled_call(self, tensor: torch.Tensor, record: dict) -> None:
        """A tensor first met after a compiled call: its output if its node was made during the call."""
        grad_fn = tensor.grad_fn
        if grad_fn is None or not self._finished_compiled:
            return
        seq = grad_fn._sequence_nr()
        for op in reversed(self._finished_compiled):
            start, end = op["_seq"]
            if start <= seq < end:
                op["outputs"].append(record["id"])
                record.update(created=True, made_by=op["name"], line=op["line"], _at=op["_at"])
                return

    def truncate(self) -> None:
        """``max_ops`` reached: from now on calls are only counted (the mode's first test), so the
        gradients held to read late are read now."""
        self.rec.truncated = True
        self.leaf_grads.flush()

    def settle(self) -> None:
        """The block ended: close a compiled call still open, read what Functions made."""
        if self._compiled is not None:
            self._leave_compiled()
        if self._made_in_function:
            self.refresh_function_outputs()

    # ------------------------------------------------------------------ NOTE [optimizer calls]
    def _in_optimizer(self, site: Site, call: Call, func, args, kwargs) -> None:
        """A call made by an optimizer (``opt.step()``, ``opt.zero_grad()``) or its constructor."""
        frame = site.optimizer
        method = frame.f_code.co_name
        instance = local(frame, "self")
        if method == "wrapper":  # step() runs inside torch's profiling wrapper(*args, **kwargs)
            method = getattr(local(frame, "func"), "__name__", method)
            if instance is None:
                instance = next(iter(local(frame, "args") or ()), None)
        if not isinstance(instance, torch.optim.Optimizer):
            return
        if method == "__init__":
            call.constructor = type(instance).__name__
            return
        entry = self._optimizer_call(instance, method, site)
        call.optimizer = entry
        if method == "step" and func is not None:
            updated = entry["updated"]
            measured = entry["measured"]
            for tensor in changed_in_place(func, args, kwargs):
                if _is_parameter(tensor):
                    tensor_id = self.input_id(tensor, site.line)
                    before = _facts.norm_of(tensor) if measured else None
                    updated.setdefault(tensor_id, {"before": before, "after": None})

    def _optimizer_call(self, instance: torch.optim.Optimizer, method: str, site: Site) -> dict:
        """The entry of the optimizer call running now: a new one once anything else ran between."""
        key = (id(instance), method, site.frame.f_code, site.frame.f_lasti)
        if key == self._optimizer_key:
            return self.optimizer_calls[-1]
        self._optimizer_key = key
        group = instance.param_groups[0] if instance.param_groups else {}
        lr = group.get("lr")
        entry = {
            "id": f"s{len(self.optimizer_calls)}",
            "optimizer": self._variable_of(instance) or type(instance).__name__,
            "class": type(instance).__name__,
            "method": method,
            "line": site.line,
            "lr": float(lr) if isinstance(lr, (int, float, torch.Tensor)) else None,
            "ops": [],
            "updated": {},
            "cleared": [],
            "measured": method == "step" and self._steps_measured < MEASURED_STEPS,
        }
        self._steps_measured += entry["measured"]
        self.optimizer_calls.append(entry)
        return entry

    def _variable_of(self, instance: Any) -> str | None:
        return next(
            (var for var, value in list(self.block.variables().items())
             if value is instance and not var.startswith("_")),
            None,
        )  # fmt: skip

    def _grad_cleared(self, tensor: torch.Tensor, site: Site | None) -> None:
        """``p.grad = None``: when ``opt.zero_grad()`` does it, its entry lists the tensor."""
        if site is None or site.optimizer is None:
            return
        call = Call(site, None, False, torch.is_grad_enabled())
        self._in_optimizer(site, call, None, (), {})
        if call.optimizer is not None:
            call.optimizer["cleared"].append(self.input_id(tensor, site.line))

    # ------------------------------------------------------------------ after the call ran
    def record_op(self, func, args, kwargs, out, call: Call) -> None:
        rec = self.rec
        rec.op_count += 1
        if rec.op_count > rec.max_ops:
            self.truncate()
            return
        name, inplace, reflected = op_name(func)
        if reflected and len(args) >= 2:
            args = (args[1], args[0], *args[2:])
        line = call.line
        inputs: list[dict] = []
        input_tensors: list[torch.Tensor] = []
        for value in args:
            found = list(tensors_in(value))
            if found:
                for tensor in found:
                    input_tensors.append(tensor)
                    inputs.append({"tensor": self.input_id(tensor, line)})
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
                inputs.append({"tensor": self.input_id(tensor, line), "arg": key})
            if not found and value is not None:
                inputs.append({"value": constant_repr(value), "arg": key})
        written = kwargs.get("out")
        outputs: list[str] = []
        op = {"id": f"o{len(self.ops)}", "name": name, "line": line, "inputs": inputs, "outputs": outputs,
              "grad_enabled": call.grad_enabled, "inference_mode": torch.is_inference_mode_enabled(),
              "module": call.module, "inplace": inplace or written is not None, "_at": call.at}  # fmt: skip
        if call.constructor is not None:
            op["constructor"] = call.constructor
        if call.optimizer is not None:
            op["optimizer"] = call.optimizer["id"]
            call.optimizer["ops"].append(op["id"])
        self.ops.append(op)
        targets = list(tensors_in(written)) if written is not None else []
        if inplace and input_tensors and not targets:
            targets = [input_tensors[0]]
        if rec.uninitialised and targets and name != "resize_":
            rec.mark_written(targets)  # NOTE [uninitialised memory]
        if name in _UNINITIALISED:
            rec.mark_uninitialised(targets or list(tensors_in(out)))
        if targets:
            self._record_writes(op, name, targets, line)
            if call.optimizer is not None and call.optimizer["measured"]:
                updated = call.optimizer["updated"]
                for tensor in targets:
                    record = rec.record_of(tensor)
                    if record is not None and record["id"] in updated:
                        updated[record["id"]]["after"] = _facts.norm_of(tensor)
        else:
            for tensor in tensors_in(out):
                record = rec.record_of(tensor)
                if record is None:
                    record = rec.new_tensor(tensor, line, True)
                    record["made_by"] = name
                    record["_at"] = call.at  # the block's instruction: its text names the tensor
                    if call.in_function:
                        self._made_in_function.append((record, rec.slot(record["id"])[1]))
                outputs.append(record["id"])
        if call.direct:
            self._find_cut(op, name, input_tensors, out, call.grad_enabled)

    def input_id(self, tensor: torch.Tensor, line: int | None) -> str:
        rec = self.rec
        record = rec.record_of(tensor)
        if record is None:
            record = rec.new_tensor(tensor, line, None)
            if self._finished_compiled:
                self.made_by_compiled_call(tensor, record)
        return record["id"]

    def _record_writes(self, op: dict, name: str, targets: list[torch.Tensor], line: int | None) -> None:
        rec = self.rec
        op["version"] = {}
        for tensor in targets:
            record = rec.record_of(tensor) or rec.new_tensor(tensor, line, None)
            if name == "requires_grad_" and record["requires_grad"] and not tensor.requires_grad:
                self.cuts.append({"tensor": record["id"], "source": None, "op": op["id"],
                                  "reason": "requires_grad_(False)", "line": line})  # fmt: skip
            rec.facts_into(record, tensor)
            if tensor.grad_fn is not None:
                rec.graph.register(tensor.grad_fn, line)
                node_id = rec.graph.link_output(tensor.grad_fn, tensor.output_nr, record)
                # NOTE [gradients of in-place versions] in _backward.py
                op.setdefault("nodes", {})[record["id"]] = node_id
                self.rewritten.add(record["id"])
            op["outputs"].append(record["id"])
            op["version"][record["id"]] = _facts.version_of(tensor)
            op["_storage"] = storage_of(tensor)  # a failing backward may name another tensor on it

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
        rec = self.rec
        source_id = rec.record_of(source)["id"]
        for tensor in produced:
            self.cuts.append({"tensor": rec.record_of(tensor)["id"], "source": source_id,
                              "reason": reason, "line": op["line"], "op": op["id"]})  # fmt: skip

    def requires_grad_set(self, args, call: Call) -> None:
        tensor, value = args[0], args[1]
        rec = self.rec
        record = rec.record_of(tensor)
        if record is None:
            record = rec.new_tensor(tensor, call.line, None)
        rec.facts_into(record, tensor)
        if not value:
            self.cuts.append({"tensor": record["id"], "source": None, "reason": "requires_grad_(False)",
                              "line": call.line, "op": None})  # fmt: skip

    def op_failed(self, func, args, kwargs, call: Call, exc: BaseException) -> None:
        if self.op_error is not None and self.op_error["exc"] == id(exc):
            return  # already recorded by an inner operation
        name, _, reflected = op_name(func)
        tensors = [t for v in (*args, *kwargs.values()) for t in tensors_in(v)]
        if reflected:
            tensors.reverse()
        line = call.line if isinstance(call, Call) else None
        self.op_error = {
            "exc": id(exc),
            "op_name": name,
            "line": line,
            "module": call.module if isinstance(call, Call) else None,
            "inputs": [dict(_facts.describe_input(t), tensor=self.rec.tensor_id(t, line)) for t in tensors],
        }
