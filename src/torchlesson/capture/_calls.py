"""What a torch call is, as the tracer records it: its name, its kind, and its arguments.

The torch function mode hands the tracer a torch callable and its arguments. This module answers the
questions asked of them without looking at any tracer state: how torch spells the operation (Python
operators arrive as dunders, see NOTE [operator names]), whether the call is an operation of the
learner's program at all, which tensors its arguments hold, how a constant argument reads, and which
variable a line of the block assigns.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import re
from collections.abc import Iterator
from typing import Any

import torch

# how a torch callable is treated by the mode
SKIP, OP, BACKWARD, GRAD, SET_REQUIRES_GRAD, SET_ATTRIBUTE, ESCAPE = range(7)

# calls that read or print a tensor, configure torch or mark a profiler range (optimizers do, in
# ``step``): not operations of the learner's program
_SKIP_NAMES = frozenset(
    """__repr__ __str__ __format__ __len__ __bool__ __hash__ __index__ __int__ __float__ __complex__
    __array_wrap__ __reduce_ex__ __deepcopy__ __dir__ __contains__ __iter__ __reversed__
    __getstate__ __setstate__ __get__ __set__ __delete__ __torch_function__ size dim numel nelement
    ndimension stride is_contiguous tolist item element_size storage_offset
    _is_view is_floating_point is_complex is_signed get_device register_hook retain_grad
    register_post_accumulate_grad_hook _set_grad_enabled is_set_to is_shared is_pinned has_names
    _base _version _record_function_enter _record_function_enter_new _record_function_exit
    _record_function_exit._RecordFunction""".split()
)

# calls that hand out a tensor's memory to code that can write it without moving the tensor's version
# counter (``x.grad.numpy()[:] = 0``): not operations either, but held gradients that share that
# memory are read first (NOTE [late leaf gradients] in _leaf_gradients.py)
_ESCAPE_NAMES = frozenset(
    "numpy __array__ __dlpack__ data_ptr untyped_storage storage _typed_storage __array_interface__".split()
)

# NOTE [operator names]: Python operators arrive as dunders; name them as torch does
_REFLECTED = {
    "__rsub__": "sub", "__rdiv__": "div", "__rtruediv__": "div", "__rfloordiv__": "floor_divide",
    "__rpow__": "pow", "__rmatmul__": "matmul", "__rmod__": "remainder", "__radd__": "add",
    "__rmul__": "mul", "__rand__": "bitwise_and", "__ror__": "bitwise_or", "__rxor__": "bitwise_xor",
}  # fmt: skip
_DUNDER = {
    "__truediv__": "div", "__floordiv__": "floor_divide", "__mod__": "remainder",
    "__getitem__": "getitem", "__setitem__": "setitem_", "__invert__": "bitwise_not",
    "__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor",
    "__lshift__": "bitwise_left_shift", "__rshift__": "bitwise_right_shift",
}  # fmt: skip
_INPLACE_DUNDER = re.compile(r"^__i(\w+)__$")


_NAMES: dict[Any, tuple[str, bool, bool]] = {}


def op_name(func: Any) -> tuple[str, bool, bool]:
    """(name as torch spells it, in place?, reflected operands?), remembered per torch callable."""
    try:
        return _NAMES[func]
    except (KeyError, TypeError):
        pass
    named = _spell(func)
    with contextlib.suppress(TypeError):  # an unhashable callable is named every time
        _NAMES[func] = named
    return named


def _spell(func: Any) -> tuple[str, bool, bool]:
    name = getattr(func, "__name__", None) or type(func).__name__
    if name in _REFLECTED:
        return _REFLECTED[name], False, True
    if name in _DUNDER:
        name = _DUNDER[name]
    else:
        match = _INPLACE_DUNDER.match(name)
        if match and match.group(1) not in ("nit", "ter", "nstancecheck"):
            name = _DUNDER.get(f"__{match.group(1)}__", match.group(1)) + "_"
        elif name.startswith("__") and name.endswith("__"):
            name = name[2:-2]
    inplace = name.endswith("_") and not name.endswith("__")
    return name, inplace, False


def classify(func: Any) -> int:
    """How the mode treats a torch callable: one of SKIP, OP, BACKWARD, GRAD, SET_REQUIRES_GRAD,
    SET_ATTRIBUTE (``x.grad = None``, ``x.data = y``: not an operation, yet it can change a tensor) and
    ESCAPE (``x.numpy()``: not an operation, yet what it returns can change the tensor's memory)."""
    if func is torch.Tensor.backward or func is torch.autograd.backward:
        return BACKWARD
    if func is torch.autograd.grad:
        return GRAD
    name = getattr(func, "__name__", "")
    if name == "__set__":
        is_requires_grad = getattr(func, "__self__", None) is torch.Tensor.requires_grad
        return SET_REQUIRES_GRAD if is_requires_grad else SET_ATTRIBUTE
    if name in _SKIP_NAMES:
        return SKIP
    if name in _ESCAPE_NAMES:
        return ESCAPE
    return OP


@functools.cache
def signature(func) -> inspect.Signature:
    return inspect.signature(func)


def changed_in_place(func: Any, args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensors a call is about to write into: ``self`` of an in-place method (``x.add_(y)``, every
    tensor of the first list for ``torch._foreach_mul_``), ``out=``, and every tensor argument of a
    fused optimizer kernel (``torch._fused_adam_`` writes its state and may unscale the gradients)."""
    name, inplace, _ = op_name(func)
    targets = list(tensors_in(kwargs["out"])) if kwargs.get("out") is not None else []
    if inplace and args:
        if name.startswith("_fused_"):
            targets.extend(t for value in args for t in tensors_in(value))
        else:
            targets.extend(tensors_in(args[0]))
    return targets


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Tensors directly in a value, or one level into lists/tuples/dicts (``torch.cat([a, b])``)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, torch.Tensor):
                yield item
            elif isinstance(item, (list, tuple)):
                yield from (x for x in item if isinstance(x, torch.Tensor))
    elif isinstance(value, dict):
        yield from (x for x in value.values() if isinstance(x, torch.Tensor))


def constant_repr(value: Any) -> str | None:
    """How a non-tensor argument reads in the trace (``2``, ``1:3``, ``torch.float32``), kept short."""
    if value is None:
        return None
    if isinstance(value, slice):
        parts = ["" if p is None else repr(p) for p in (value.start, value.stop, value.step)]
        return ":".join(parts[:2] if value.step is None else parts)
    simple = (bool, int, float, complex, str, torch.dtype, torch.device, torch.Size)
    if isinstance(value, simple) or (
        isinstance(value, (list, tuple)) and len(value) <= 8 and not any(tensors_in(value))
    ):
        text = repr(value)
    elif value is Ellipsis:
        text = "..."
    else:
        text = type(value).__name__
    return text if len(text) <= 48 else text[:45] + "..."


@functools.lru_cache(maxsize=16)
def assignment_targets(source: str) -> dict[int, str]:
    """Line -> the simple name assigned on that line (``y = x * 2`` -> {2: "y"})."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    targets: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            target = node.target
        else:
            continue
        if isinstance(target, ast.Name):
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                targets.setdefault(line, target.id)
    return targets
