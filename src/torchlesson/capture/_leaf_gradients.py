"""The gradients a backward pass accumulates into leaves, summarised as late as is safe.

NOTE [late leaf gradients]: summarising a gradient reads every element (a 784x256 weight: ~70 us),
and in a training step most of those elements belong to the parameters' gradients. When a pass
accumulates into a leaf whose ``.grad`` was empty, the engine stores exactly the gradient that flowed
(the same tensor, or a copy laid out like the leaf), so the flowed gradient can be read from the
leaf's ``.grad`` later, as long as nothing has changed it since. The tracer holds those ``.grad``
tensors (a strong reference, only while the block runs) with their version counters, and summarises
them before anything could change them:

* before the next backward pass (the engine accumulates into an existing ``.grad`` in place);
* before a ``.grad`` or ``.data`` is assigned (``optimizer.zero_grad()`` sets ``.grad = None``);
* before an in-place operation whose target shares memory with a held gradient (``grad.zero_()``,
  ``grad.data.mul_(0.5)``, ``torch._foreach_mul_(grads, ...)``).

When the block ends, a gradient still bound to its leaf joins the trace's lazy summaries (a weak
reference and a version, NOTE [lazy summaries] in _trace.py); any other is summarised then. A change
nobody announced shows as a changed summary, never as numbers the pass did not produce.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from . import _facts
from ._recording import storage_of


class LeafGradients:
    """Held ``(grads dict, tensor id, leaf ref, .grad tensor, version)`` entries of one trace."""

    def __init__(self, deferred: list) -> None:
        self._deferred = deferred  # small summaries whose statistics are computed when read
        self._held: list[tuple[dict, str, weakref.ref, torch.Tensor, int | None]] = []

    def __bool__(self) -> bool:
        return bool(self._held)

    def hold(self, grads: dict, tensor_id: str, leaf_ref: weakref.ref, shape: list[int], dtype: str) -> None:
        """After a pass: ``grads[tensor_id]`` is what the pass left in the leaf's ``.grad``."""
        leaf = leaf_ref()
        grad = leaf.grad if leaf is not None else None
        if grad is None:  # the pass failed before accumulating, or something took the gradient away
            grads[tensor_id] = _facts.placeholder(shape, dtype, "not kept")
            return
        self._held.append((grads, tensor_id, leaf_ref, grad, _facts.version_of(grad)))

    def flush(self) -> None:
        """Summarise every held gradient now."""
        held, self._held = self._held, []
        for entry in held:
            self._summarize(entry)

    def flush_touching(self, targets: list[torch.Tensor]) -> None:
        """Summarise the held gradients that share memory with ``targets`` (about to be changed)."""
        storages = {storage_of(t) for t in targets}
        storages.discard(None)
        if not storages:
            return
        keep = []
        for entry in self._held:
            if storage_of(entry[3]) in storages:
                self._summarize(entry)
            else:
                keep.append(entry)
        self._held = keep

    def release(self, pending: list) -> None:
        """The block ended: gradients still bound to their leaf become lazy, others are summarised."""
        held, self._held = self._held, []
        for entry in held:
            grads, tensor_id, leaf_ref, grad, version = entry
            leaf = leaf_ref()
            if leaf is not None and leaf.grad is grad and _facts.version_of(grad) == version:
                shape = _facts.shape_of(grad)
                pending.append((grads, tensor_id, weakref.ref(grad), version, shape, _dtype(grad)))
            else:
                self._summarize(entry)

    def _summarize(self, entry: tuple[dict, str, Any, torch.Tensor, int | None]) -> None:
        grads, tensor_id, _, grad, version = entry
        if _facts.version_of(grad) != version:
            grads[tensor_id] = _facts.placeholder(_facts.shape_of(grad), _dtype(grad), "changed")
        else:
            grads[tensor_id] = _facts.summarize(grad, deferred=self._deferred)


def _dtype(tensor: torch.Tensor) -> str:
    return _facts.dtype_name(tensor.dtype)
