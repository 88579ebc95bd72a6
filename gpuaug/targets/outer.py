"""Writing separable maps: (..., h) x (..., w) -> (..., h, w) in the target dtype, one pass over the output.

The maps are most of a target's bytes (B x K x h x w: 285 MB of float32 at B = 256, K = 68, 64 x 64) and each
is written once. On CUDA, ``torch.mul(..., out=)`` multiplies in float32 and stores the rounded ``dtype`` in
the same pass. On the CPU that mixed-dtype store is not vectorised (10x slower for bfloat16), and a fresh
output costs its page faults (glibc hands blocks this large back to the OS when freed): there the product is
one loop compiled by ``torch.compile`` (Inductor's C++), writing into a buffer of
:data:`~gpuaug.buffers.target_pool` (reused once nothing refers to it), as the CPU render does
(:mod:`gpuaug.backends.staged_gather`). Inside a caller's ``torch.compile`` it is the plain expression, traced
into the caller's graph.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from gpuaug.buffers import target_pool, typed

_kernels: dict[torch.dtype, Callable] = {}
_lock = threading.Lock()


def _write_outer(out: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> None:
    out.copy_(rows[..., :, None] * cols[..., None, :])


def _kernel(dtype: torch.dtype) -> Callable:
    with _lock:
        if dtype not in _kernels:
            _kernels[dtype] = torch.compile(_write_outer, fullgraph=True)
        return _kernels[dtype]


def outer_maps(rows: torch.Tensor, cols: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(..., h) float32 ``rows`` and (..., w) float32 ``cols`` -> (..., h, w) ``dtype`` with
    out[..., i, j] = dtype(rows[..., i] * cols[..., j]) (the float32 product, rounded once)."""
    shape = (*rows.shape, cols.shape[-1])
    if torch.compiler.is_compiling():
        return (rows[..., :, None] * cols[..., None, :]).to(dtype)
    if rows.device.type != "cpu" or rows.numel() == 0 or cols.numel() == 0:
        out = torch.empty(shape, dtype=dtype, device=rows.device)
        return torch.mul(rows[..., :, None], cols[..., None, :], out=out)
    # Outside inference mode, so the output is an ordinary tensor whatever mode the caller is in (and one
    # compiled variant serves every mode): the (..., h) and (..., w) inputs are copied, 1/64 of the maps' bytes.
    with torch.inference_mode(False), torch.no_grad():
        out = typed(target_pool.take(torch.Size(shape).numel() * dtype.itemsize), shape, dtype)
        _kernel(dtype)(out, rows.clone(memory_format=torch.contiguous_format),
                       cols.clone(memory_format=torch.contiguous_format))
    return out
