"""Writing the large targets: heatmaps (..., h, w) and SimCC labels (..., n) in their dtype.

These are most of a target's bytes (64 x 64 heatmaps: 285 MB of float32 at B = 256, K = 68). On the CPU an eager
chain of ops would pass over them several times (and the mixed-dtype store into bfloat16 is not vectorised), and
a fresh output costs its page faults (glibc hands blocks this large back to the OS when freed): there each is
one loop compiled by ``torch.compile`` (Inductor's C++), a result writing into a buffer of
:data:`~gpuaug.buffers.target_pool` (reused once nothing refers to it), as the CPU render does
(:mod:`gpuaug.backends.staged_gather`). Every number reaches the loop as a tensor, so one compiled variant serves
every size, sigma and split ratio. On CUDA (eager) the heatmaps are one ``torch.mul(..., out=)`` pass over the
maps; the rows (heatmap axes, SimCC labels) are a few eager kernels, fused when the caller compiles the step.
Inside a caller's ``torch.compile`` the plain expressions are traced into the caller's graph.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from gpuaug.buffers import target_pool, typed

_kernels: dict[Callable, Callable] = {}
_lock = threading.Lock()


def _outer(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return rows[..., :, None] * cols[..., None, :]


def _patch_rows(grid: torch.Tensor, start: torch.Tensor, stop: torch.Tensor, peak: torch.Tensor, size: torch.Tensor,
                scale: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    offset = grid - start  # position inside the patch that starts at ``start``
    inside = (offset >= 0) & (offset < size) & (grid < stop)
    return torch.where(inside, torch.exp((offset - peak) ** 2 * scale), 0.0) * factor


# One writer (one code object, so its own Dynamo cache) per expression; dynamic shapes, so a variant per dtype.
def _write_outer(out: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> None:
    out.copy_(_outer(rows, cols))


def _write_patch_rows(out: torch.Tensor, *inputs: torch.Tensor) -> None:
    out.copy_(_patch_rows(*inputs))


def _on_cpu(write: Callable[..., None], shape: tuple[int, ...], dtype: torch.dtype, *inputs: torch.Tensor,
            pooled: bool = True) -> torch.Tensor:
    """``write``'s expression of ``inputs`` in ``dtype`` by one compiled loop (CPU tensors, eager caller), into a
    recycled buffer when ``pooled`` (a result), else fresh memory (a small intermediate)."""
    with _lock:
        if write not in _kernels:
            _kernels[write] = torch.compile(write, fullgraph=True, dynamic=True)
        kernel = _kernels[write]
    # Outside inference mode, so the output is an ordinary tensor whatever mode the caller is in (and one
    # compiled variant serves every mode): the small inputs are copied (1/64 of the output's bytes or less).
    with torch.inference_mode(False), torch.no_grad():
        nbytes = torch.Size(shape).numel() * dtype.itemsize
        out = typed(target_pool.take(nbytes), shape, dtype) if pooled else torch.empty(shape, dtype=dtype)
        kernel(out, *(t.clone(memory_format=torch.contiguous_format) for t in inputs))
    return out


def _eager_cpu(*tensors: torch.Tensor) -> bool:
    return not torch.compiler.is_compiling() and tensors[0].device.type == "cpu" and \
        all(t.numel() for t in tensors)


def outer_maps(rows: torch.Tensor, cols: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(..., h) float32 ``rows`` and (..., w) float32 ``cols`` -> (..., h, w) ``dtype`` with
    out[..., i, j] = dtype(rows[..., i] * cols[..., j]) (the float32 product, rounded once)."""
    shape = (*rows.shape, cols.shape[-1])
    if _eager_cpu(rows, cols):
        return _on_cpu(_write_outer, shape, dtype, rows, cols)
    if torch.compiler.is_compiling():
        return _outer(rows, cols).to(dtype)
    return torch.mul(rows[..., :, None], cols[..., None, :], out=torch.empty(shape, dtype=dtype, device=rows.device))


def patch_rows(length: int, start: torch.Tensor, stop: torch.Tensor, peak: torch.Tensor, size: float, sigma: float,
               factor: torch.Tensor, dtype: torch.dtype = torch.float32, pooled: bool = True) -> torch.Tensor:
    """(...,) float32 ``start``, ``stop``, ``peak``, ``factor`` -> (..., length) rows of ``dtype``:
    factor * exp(-(i - start - peak)^2 / (2 sigma^2)) where start <= i < min(stop, start + size), else 0, over
    i = 0 .. length - 1: a Gaussian on a patch (heatmap axes), or on the whole row (start 0, size and stop
    ``length``: SimCC labels). ``pooled``: the result lives in a recycled CPU buffer (for results, not
    intermediates)."""
    device = start.device
    grid = torch.arange(length, device=device, dtype=torch.float32)
    size_t = torch.full((1,), float(size), device=device)
    scale = torch.full((1,), -1 / (2 * sigma**2), device=device)
    inputs = (grid, start[..., None], stop[..., None], peak[..., None], size_t, scale, factor[..., None])
    if _eager_cpu(*inputs):
        return _on_cpu(_write_patch_rows, (*start.shape, length), dtype, *inputs, pooled=pooled)
    return _patch_rows(*inputs).to(dtype)
