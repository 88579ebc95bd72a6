"""The CPU render: the reference gather's three stages (:mod:`gpuaug.backends.gather`), each compiled by
``torch.compile`` (Inductor's C++ loops) on its own, each writing into memory the render keeps.

Why three compiled stages and not one: compiled as a single function, Inductor keeps the tap positions, the
tap distances and the unbiased colour between the loop that reduces the mean grey and the loop that writes
the output: 4 + C B x S x S float32 buffers it allocates afresh on every call. On the CPU, mapping and
faulting in those pages (glibc returns blocks this large to the OS as soon as they are freed) cost about as
much as the sampling itself. Cut at exactly those points, every large buffer is one the render owns:

1. source taps -> four (B, N) planes of this thread's :func:`~gpuaug.buffers.scratch`;
2. the gathers -> C colour planes and the grey plane, scratch as well;
3. the contrast pivot, clamp, normalisation and dtype -> the output, a buffer of
   :data:`~gpuaug.buffers.render_pool` (reused only once nothing refers to it any more).

Each stage is one loop that stores straight into its destination, with no temporary of its own
(``tests/test_staged_gather.py`` reads the generated code to hold it to that). The scratch is (5 + C) x B x
S^2 float32 per thread, kept between calls: 134 MB for colour at B = 256, S = 128
(:func:`~gpuaug.buffers.release_buffers` hands it back).

Every call looks the same to Dynamo's guards: no grad, no autocast, outside inference mode, the pixel buffer
never a view, fresh contiguous copies of the per-sample fields, a batch of one rendered as two (Dynamo
specialises sizes 0 and 1) and a batch of none rendered eagerly; one compiled variant per stage and config.
Past Dynamo's recompile limit a stage raises (a compiler error) instead of running eager unseen.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable

import torch

from gpuaug.backends.gather import (
    finish_planes,
    output_grid,
    pixel_words,
    sample_colour,
    sample_planes,
    source_taps,
)
from gpuaug.buffers import render_pool, scratch, typed

#: (device type, stage, config...) -> that stage compiled for that config.
stage_kernels: dict[tuple, Callable] = {}
_grids: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
_lock = threading.Lock()


def _write_taps(lo_x: torch.Tensor, d_x: torch.Tensor, lo_y: torch.Tensor, d_y: torch.Tensor,
                inverse: torch.Tensor, sizes: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                out_size: int) -> None:
    """Stage 1 (:func:`~gpuaug.backends.gather.source_taps`) into four (B, N) float32 planes."""
    taps = source_taps(inverse, sizes, u, v, out_size)
    for k, dst in enumerate((lo_x, d_x, lo_y, d_y)):
        dst.copy_(taps[k])


def _write_planes(planes: list[torch.Tensor], grey: torch.Tensor, pixels: torch.Tensor, offsets: torch.Tensor,
                  strides: torch.Tensor, sizes: torch.Tensor, lo_x: torch.Tensor, d_x: torch.Tensor,
                  lo_y: torch.Tensor, d_y: torch.Tensor, rows: torch.Tensor, words: torch.Tensor | None) -> None:
    """Stage 2 (:func:`~gpuaug.backends.gather.sample_planes`) into C + 1 (B, N) float32 planes, separate
    tensors: slices of one would make Inductor loop over the channels and gather once per channel."""
    values, grey_value = sample_planes(pixels, offsets, strides, sizes, (lo_x, d_x, lo_y, d_y), rows, words)
    for k, dst in enumerate(planes):
        dst.copy_(values[k])
    grey.copy_(grey_value)


def _write_output(out: torch.Tensor, planes: list[torch.Tensor], grey: torch.Tensor,
                  bias_per_gray: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """Stage 3 (:func:`~gpuaug.backends.gather.finish_planes`) from (B, S, S) planes into ``out`` (its dtype,
    its memory format)."""
    out.copy_(finish_planes(planes, grey, bias_per_gray, norm, out.dtype))


def _fresh_function(fn: Callable) -> Callable:
    """A copy of ``fn`` with a code object of its own: Dynamo keeps compiled variants (and counts them against
    its recompile limit) per code object, so each config's kernel gets its own cache."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def stage_key(*key: object) -> tuple:
    """A stage's :data:`stage_kernels` key: its config plus the global state Dynamo guards on that a training
    loop may change between steps (thread count, TF32 switch, default dtype, deterministic mode), so a caller
    flipping one gets a kernel of its own, not a recompile that counts against a shared kernel's limit."""
    return (*key, torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32, torch.get_default_dtype(),
            torch.are_deterministic_algorithms_enabled())


def _kernel(key: tuple, fn: Callable) -> Callable:
    key = stage_key(*key)
    with _lock:  # threads rendering at once share one kernel per key
        if key not in stage_kernels:
            # dynamic: frame sizes, buffer length, batch size and S vary; one kernel serves them all.
            stage_kernels[key] = torch.compile(_fresh_function(fn), dynamic=True)
        return stage_kernels[key]


def _grid(out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    with _lock:
        if (out_size, device) not in _grids:
            _grids[out_size, device] = output_grid(out_size, device)
        return _grids[out_size, device]


def render_output(batch_size: int, channels: int, out_size: int, dtype: torch.dtype,
                  channels_last: bool) -> torch.Tensor:
    """(B, C, S, S) uninitialised ``dtype`` tensor in a :data:`~gpuaug.buffers.render_pool` buffer."""
    shape = (batch_size, channels, out_size, out_size)
    n = channels * out_size * out_size
    # With one channel both formats are the same memory; torch then keeps contiguous strides, and so do we.
    stride = (n, 1, out_size * channels, channels) if channels_last and channels > 1 else None
    # The pool's uint8 head stays referenced while it is retyped, so no other thread can take its buffer.
    return typed(render_pool.take(batch_size * n * dtype.itemsize), shape, dtype, stride)


def sample_colour_staged(
    pixels: torch.Tensor,
    offsets: torch.Tensor,
    strides: torch.Tensor,
    sizes: torch.Tensor,
    inverse: torch.Tensor,
    rows: torch.Tensor,
    bias_per_gray: torch.Tensor,
    norm: tuple[torch.Tensor, torch.Tensor] | None,
    out_size: int,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
) -> torch.Tensor:
    """:func:`~gpuaug.backends.gather.sample_colour` (same arguments, same result to float32 rounding) in three
    compiled stages on CPU tensors; inside a caller's ``torch.compile``, the reference traced into its graph."""
    args = (pixels, offsets, strides, sizes, inverse, rows, bias_per_gray, norm, out_size, dtype, channels_last)
    if torch.compiler.is_compiling():
        return sample_colour(*args)
    b, c = rows.shape[:2]
    one = b == 1
    device = pixels.device.type
    # Outside inference mode, so the copies (and the output) are ordinary tensors whatever mode the caller is
    # in: an inference tensor would be a new variant, and could not be saved for a model's backward.
    with torch.inference_mode(False), torch.no_grad(), torch.autocast(device, enabled=False), \
            torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        if b == 0:  # nothing to render; Dynamo would specialise size 0 into a new variant
            return sample_colour(*args)
        # Fresh copies of the few bytes per sample: never a view, never strided, never batch size 1.
        offsets, strides, sizes, inverse, rows, bias_per_gray = (
            torch.cat([f, f]) if one else f.clone(memory_format=torch.contiguous_format)
            for f in (offsets, strides, sizes, inverse, rows, bias_per_gray))
        # detach: the same tensor, never a view to Dynamo (a view's base is guarded on: one more variant).
        pixels = pixels.detach()
        n, flat, square = rows.shape[0], out_size * out_size, (rows.shape[0], out_size, out_size)
        taps = [scratch(name, (n, flat)) for name in ("lo_x", "d_x", "lo_y", "d_y")]
        names = [f"plane{k}" for k in range(c)] + ["grey"]
        planes = [scratch(name, (n, flat)) for name in names]
        out = render_output(n, c, out_size, dtype, channels_last)
        _kernel((device, "taps"), _write_taps)(*taps, inverse, sizes, *_grid(out_size, pixels.device), out_size)
        words = pixel_words(pixels)
        _kernel((device, "planes", c, words is not None), _write_planes)(
            planes[:c], planes[c], pixels, offsets, strides, sizes, *taps, rows, words)
        # The same memory seen as (B, S, S) images: stage 3 then has no size relation (N = S^2) to guard on.
        images = [scratch(name, square) for name in names]
        _kernel((device, "output", c, norm is not None, dtype, channels_last), _write_output)(
            out, images[:c], images[c], bias_per_gray, norm)
    return out[:1] if one else out
