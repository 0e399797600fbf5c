"""Tensor -> plain facts (shape, dtype, device, value summaries), without perturbing anything.

Everything here runs under ``torch.no_grad()`` on a ``detach()``-ed view: reading facts never builds
graph, never bumps a version counter and never keeps the tensor alive.
"""

from __future__ import annotations

import functools
import math
import weakref
from typing import Any

import numpy as np
import torch

#: tensors with at most this many elements carry all their values in a summary
MAX_VALUES = 64


@functools.cache
def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


@functools.cache
def device_name(device: torch.device) -> str:
    """``device(type='cuda', index=0)`` -> ``"cuda:0"``; ``cpu`` and ``meta`` stay short."""
    return str(device)


def shape_of(tensor: torch.Tensor) -> list[int | str]:
    """``[2, 3]``; a nested tensor's ragged sizes read as strings (``[2, "j1", 3]``, or ``"*"`` where
    torch cannot say), so the shape stays JSON."""
    try:
        return [size if isinstance(size, int) else str(size) for size in tensor.shape]
    except RuntimeError:  # a strided nested tensor has no sizes, only a size per regular dimension
        shape: list[int | str] = []
        for dim in range(tensor.dim()):
            try:
                shape.append(int(tensor.size(dim)))
            except RuntimeError:
                shape.append("*")
        return shape


def _json_number(value: float | int | bool) -> float | int | bool | str:
    """Floats that JSON cannot carry (nan, inf) become strings a learner can still read."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _json_values(values: Any) -> Any:
    if isinstance(values, list):
        return [_json_values(v) for v in values]
    if isinstance(values, complex):
        return str(values)
    return _json_number(values)


def _flat(values: Any) -> list:
    stack, out = [values], []
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _stats_from_list(flat: list[float]) -> dict[str, Any]:
    n = len(flat)
    if any(math.isnan(v) for v in flat):  # as torch: a NaN anywhere makes every statistic NaN
        return dict.fromkeys(("min", "max", "mean", "std", "norm"), math.nan)
    if not all(math.isfinite(v) for v in flat):
        return {"min": min(flat), "max": max(flat), "mean": sum(flat) / n, "std": math.nan, "norm": math.inf}
    mean = math.fsum(flat) / n
    var = math.fsum((v - mean) ** 2 for v in flat) / (n - 1) if n > 1 else 0.0
    norm = math.sqrt(math.fsum(v * v for v in flat))
    return {"min": min(flat), "max": max(flat), "mean": mean, "std": math.sqrt(var), "norm": norm}


def summarize(tensor: torch.Tensor, *, deferred: list | None = None) -> dict[str, Any]:
    """A JSON-safe summary of a tensor's value.

    ``{shape, dtype, numel, values, min, max, mean, std, norm}``; ``values`` (nested lists) only when
    ``numel <= MAX_VALUES``. Stats are ``None`` where they do not apply (empty, meta, complex or
    sparse tensors).

    With ``deferred`` (a list), a small tensor's values are copied now and its statistics are left
    for :func:`complete` (the summary is appended to ``deferred``): copying 64 numbers is cheap,
    computing statistics in Python is not, and the tracer does this for every tensor.

    >>> summarize(torch.tensor([1.0, 2.0]))["mean"]
    1.5
    """
    # NOTE [our reads are not the learner's calls] in _recording.py
    if dispatches_itself(type(tensor)) and not tensor.is_nested:
        return placeholder(shape_of(tensor), dtype_name(tensor.dtype), "tensor subclass")
    # a detached tensor builds no graph, so no grad-mode switch is needed (it costs microseconds)
    t = tensor.detach()
    if t.is_quantized:  # its integers stand for these numbers; a float copy, the tensor is untouched
        t = t.dequantize()
    numel = t.numel()
    summary: dict[str, Any] = {
        "shape": shape_of(t),
        "dtype": dtype_name(t.dtype),
        "numel": numel,
        "values": None,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "norm": None,
    }
    if numel == 0 or t.device.type == "meta" or t.layout != torch.strided:
        return summary
    if t.is_nested:
        summary["unavailable"] = "nested tensor"  # no flat values to list or reduce
        return summary
    if _inside_transform(t):
        summary["unavailable"] = "inside torch.func"  # a vmap/grad wrapper: its values are not memory
        return summary
    if numel <= MAX_VALUES:
        summary["values"] = t.cpu().tolist() if t.device.type != "cpu" else t.tolist()
        if deferred is None:
            return complete(summary)
        deferred.append(summary)
        return summary
    if t.is_complex():
        return summary
    summary.update(_torch_stats(t))
    return _finite(summary)


@functools.cache
def dispatches_itself(cls: type) -> bool:
    """A tensor subclass with its own ``__torch_dispatch__`` (a teacher's logging tensor): reading its
    values would run its dispatch, so they are not read. Nested tensors (jagged layout) are one too;
    their values are not listed either."""
    return getattr(cls, "__torch_dispatch__", None) is not torch.Tensor.__torch_dispatch__


_IS_FUNCTORCH_WRAPPED = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)


def _inside_transform(t: torch.Tensor) -> bool:
    """A tensor ``torch.func.vmap`` or ``grad`` wraps (no storage to read; the learner's function sees
    it only inside the transform)."""
    return bool(_IS_FUNCTORCH_WRAPPED is not None and _IS_FUNCTORCH_WRAPPED(t))


def summarize_shared(tensor: torch.Tensor, memo: dict, *, deferred: list | None = None) -> dict[str, Any]:
    """:func:`summarize`, reusing the statistics of a tensor already summarised over the same memory.

    A backward pass often hands the same numbers on twice: ``TBackward`` passes ``grad.t()`` to the
    weight's ``AccumulateGrad``, and summarising a big gradient costs tens of microseconds. Two
    tensors hold the same elements (in another order) when both are dense, start at the same address,
    count the same elements and their shared version counter has not moved. ``memo`` holds a weak
    reference to the first one: while it is alive its memory cannot have been reused by another tensor.
    """
    if dispatches_itself(type(tensor)) and not tensor.is_nested:
        return summarize(tensor)
    t = tensor.detach()
    # small ones carry their values in their own order; the others summarize() reads specially
    special = t.layout != torch.strided or t.device.type == "meta" or t.is_nested or t.is_quantized
    if t.numel() <= MAX_VALUES or special or _inside_transform(t):
        return summarize(t, deferred=deferred)
    if not (t.is_contiguous() or (t.dim() == 2 and t.t().is_contiguous())):
        return summarize(t, deferred=deferred)
    key = (t.data_ptr(), t.numel(), t.dtype, t.device, version_of(tensor))
    seen = memo.get(key)
    if seen is not None and seen[0]() is not None:
        return dict(seen[1], shape=shape_of(t))
    summary = summarize(t, deferred=deferred)
    memo[key] = (weakref.ref(tensor), summary)
    return summary


def complete(summary: dict[str, Any]) -> dict[str, Any]:
    """Fill in the statistics of a small summary from its values (see ``summarize(deferred=...)``)."""
    values = summary["values"]
    summary["values"] = _json_values(values)
    if summary["dtype"].startswith("complex"):
        return summary
    flat = [float(v) for v in _flat(values)] if isinstance(values, list) else [float(values)]
    summary.update(_stats_from_list(flat))
    integral = "float" not in summary["dtype"]  # ints and bools read as ints
    if integral and all(math.isfinite(summary[k]) for k in ("min", "max")):
        summary["min"], summary["max"] = int(summary["min"]), int(summary["max"])
    return _finite(summary)


_NUMPY_DTYPES = frozenset({torch.float16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32,
                           torch.int64, torch.uint8})  # fmt: skip


def _torch_stats(t: torch.Tensor) -> dict[str, Any]:
    """min, max, mean, std and norm with three reductions and one device->host transfer.

    std is derived from the sum of squares (the norm) and the mean: accurate enough to read, and
    it keeps the cost of summarising every gradient of a backward pass low.
    """
    n = t.numel()
    array = _as_numpy(t)
    if array is not None:
        # NOTE [single-threaded statistics]: torch would run big reductions on its thread pool, and
        # when a core is busy a parallel region can wait milliseconds at its barrier; for small ones
        # its per-call dispatch dominates. NumPy reads the same memory (no copy) on one thread: a few
        # microseconds for thousands of elements, a predictable ~100 us per 200k.
        # float32 and float64 sum in their own precision (NumPy sums pairwise: error ~log2(n) ulps,
        # and twice as fast as widening every element); half precision and integers are widened
        single = array.dtype.kind == "f" and array.itemsize >= 4
        mn, mx = array.min().item(), array.max().item()
        total = float(array.sum()) if single else float(array.sum(dtype=np.float64))
        wide = array if single else array.astype(np.float64)
        norm = math.sqrt(max(float(np.dot(wide, wide)), 0.0))
    else:
        # sums of half-precision or integer values need a wider accumulator to read right
        f = t.double() if not t.is_floating_point() else (t.float() if t.element_size() < 4 else t)
        low, high = torch.aminmax(f)
        row = torch.stack([low.to(f.dtype), high.to(f.dtype), f.sum(), torch.linalg.vector_norm(f)])
        mn, mx, total, norm = row.double().cpu().tolist()
    mean = total / n
    var = max(norm * norm - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    if not t.is_floating_point():
        mn, mx = int(mn), int(mx)
    else:
        mn, mx = float(mn), float(mx)
    return {"min": mn, "max": mx, "mean": mean, "std": math.sqrt(var), "norm": norm}


def _as_numpy(t: torch.Tensor) -> np.ndarray | None:
    """A flat NumPy view of a CPU tensor's memory (a copy only if it is not contiguous), or None."""
    if t.device.type != "cpu" or t.dtype not in _NUMPY_DTYPES:
        return None
    try:
        return t.numpy().reshape(-1)
    except (RuntimeError, TypeError):  # e.g. a negative-bit view: let torch compute it
        return None


def norm_of(tensor: torch.Tensor) -> float | None:
    """The 2-norm of a tensor's values (None where there are no plain finite numbers to read)."""
    t = tensor.detach()
    array = _as_numpy(t) if not dispatches_itself(type(t)) else None
    try:
        if array is not None:
            wide = array if array.dtype.kind == "f" and array.itemsize >= 4 else array.astype(np.float64)
            value = math.sqrt(max(float(np.dot(wide, wide)), 0.0))
        else:
            value = float(torch.linalg.vector_norm(t.float()))
    except (RuntimeError, TypeError, NotImplementedError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _finite(summary: dict[str, Any]) -> dict[str, Any]:
    for key in ("min", "max", "mean", "std", "norm"):
        if summary[key] is not None:
            summary[key] = _json_number(summary[key])
    return summary


def version_of(tensor: torch.Tensor) -> int | None:
    """The in-place version counter; inference tensors have none."""
    return None if tensor.is_inference() else tensor._version


def placeholder(shape: list[int | str], dtype: str, why: str) -> dict[str, Any]:
    """A summary whose numbers could not be read (``why``: "freed", "changed", ...)."""
    sizes = [size for size in shape if isinstance(size, int)]
    numel = math.prod(sizes) if len(sizes) == len(shape) else None  # unknown for ragged shapes
    return {"shape": shape, "dtype": dtype, "numel": numel, "values": None, "min": None, "max": None,
            "mean": None, "std": None, "norm": None, "unavailable": why}  # fmt: skip


def describe_input(tensor: torch.Tensor) -> dict[str, Any]:
    """The short facts shown for the inputs of a failing operation."""
    return {
        "shape": shape_of(tensor),
        "dtype": dtype_name(tensor.dtype),
        "device": device_name(tensor.device),
        "requires_grad": bool(tensor.requires_grad),
    }
