"""The camera chain on the CPU: each op compiled on its own (Inductor's C++ loops), run on the rows that draw it,
writing into memory the chain keeps.

Why not :func:`~gpuaug.camera.ops.apply_camera` as it is: over the whole batch every op costs its full price
however rarely it is drawn (a preset drawing each op for a third of the samples pays three times over), and
each eager pass allocates a fresh B x C x S x S tile, whose pages the kernel maps and faults in anew (glibc
hands blocks this large back to the OS when freed): on 2 CPU cores that costs more than the arithmetic. On
the CPU the mask of who draws an op is already in host memory, so reading it costs nothing; so for each op:
the rows that draw it (:attr:`~gpuaug.camera.ops.CameraOp.drawn`), their params gathered, the op compiled
once per (op, the config values it reads, channels) with dynamic sizes, reading its rows and writing them back
into the tile in place, in one kernel (filters read their rows reflected into this thread's
:func:`~gpuaug.buffers.scratch` outside it). Each op only reads its own rows
(and, for a texture fill, the whole batch before the op), so the result is :func:`apply_camera`'s, to the
float rounding of a different fusion.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection

import torch

from gpuaug.backends.staged_gather import _fresh_function, stage_key
from gpuaug.backends.torch_backend import _is_compiler_failure
from gpuaug.buffers import scratch
from gpuaug.camera.blur import reflect_pad
from gpuaug.camera.ops import CameraOp, camera_ops
from gpuaug.config import AugmentConfig
from gpuaug.params import AugmentParams

#: (op name, its static config values, channels, global state) -> that op's row writer, compiled (None: it
#: failed to compile, and the op runs eagerly on its rows, as :func:`~gpuaug.camera.ops.apply_camera` would).
op_kernels: dict[tuple, Callable | None] = {}
_log = logging.getLogger(__name__)
_lock = threading.Lock()
#: Inductor options per op. The sensor noise's hash is a long integer chain (two lowbias32 rounds, then
#: Box-Muller) that Inductor would store to memory midway (past 50 ops a buffer on the CPU) and read back: kept
#: in one loop it costs about 15 % less. The other ops keep the default: inlined, their per-row weights (a band,
#: a kernel) would be recomputed for every pixel (low resolution 2.5x slower).
_OPTIONS = {"noise": {"realize_cpu_opcount_threshold": 400}}


def _row_writer(op: CameraOp, static: tuple) -> Callable:
    """``write(images, rows, *fields)``: ``images[rows]`` <- ``op`` over ``images[rows]``, in place."""
    def write(images: torch.Tensor, rows: torch.Tensor, *fields: torch.Tensor) -> None:
        images.index_copy_(0, rows, op.run(images.index_select(0, rows), *fields, static, images))
    return write


def _padded_writer(op: CameraOp, static: tuple) -> Callable:
    """``write(images, rows, padded, *kernels)``: ``images[rows]`` <- the filter ``op`` with ``kernels`` over
    those rows reflected into ``padded``, in place."""
    def write(images: torch.Tensor, rows: torch.Tensor, padded: torch.Tensor, *kernels: torch.Tensor) -> None:
        images.index_copy_(0, rows, op.padded_run(padded, *kernels))
    return write


def _kernel(op: CameraOp, static: tuple, channels: int) -> Callable | None:
    """The op's compiled writer; None after it failed to compile, or with ``GPUAUG_COMPILE_CAMERA=0`` (each op
    eager on its rows: no compile, the test suite's default)."""
    if os.environ.get("GPUAUG_COMPILE_CAMERA", "1") == "0":
        return None
    key = stage_key("camera", op.name, static, channels)
    with _lock:
        if key not in op_kernels:
            writer = _row_writer if op.padded_run is None else _padded_writer
            # A code object of its own per key (Dynamo counts variants per code object). Only the row and batch
            # counts are dynamic (marked at each call): the image side stays a constant of the loops.
            op_kernels[key] = torch.compile(_fresh_function(writer(op, static)), options=_OPTIONS.get(op.name, {}))
        return op_kernels[key]


def _kernel_args(op: CameraOp, static: tuple, images: torch.Tensor, index: torch.Tensor,
                 fields: list[torch.Tensor]) -> list[torch.Tensor]:
    """The op's compiled writer's arguments, dim 0 (the batch, the rows) of each marked dynamic (one kernel for
    every batch and row count). A filter gets its rows reflected into memory kept here (outside the compiled
    loop) and its kernels."""
    if op.padded_run is None:
        args = [images, index, *fields]
    else:
        (ry, rx), (n, c, h, w) = op.border(static), (len(index), *images.shape[1:])
        rows = torch.index_select(images, 0, index, out=scratch("camera_gather", (n, c, h, w)))
        padded = reflect_pad(rows, ry, rx, scratch("camera_padded", (n, c, h + 2 * ry, w + 2 * rx)))
        args = [images, index, padded, op.kernels(*fields, static)]
    for t in args:
        torch._dynamo.maybe_mark_dynamic(t, 0)
    return args


def apply_camera_staged(images: torch.Tensor, params: AugmentParams, config: AugmentConfig,
                        skip: Collection[str] = ()) -> torch.Tensor:
    """:func:`~gpuaug.camera.ops.apply_camera` (``skip`` the same) on CPU tensors, in place: ``images``
    (B, C, S, S) float32 contiguous, a tile the caller owns; returns it (a copy of it if it is an inference
    tensor)."""
    b, c = images.shape[:2]
    if b == 0:
        return images
    if images.is_inference():
        # The ops write rows back outside inference mode (below), where an inference tensor may not be written in
        # place: a render made under the caller's inference mode (not the staged gather's, which makes ordinary
        # tensors) is copied once into an ordinary tensor.
        with torch.inference_mode(False):
            images = images.clone()
    for op in camera_ops(config, skip):
        rows = op.drawn(params).nonzero()[:, 0]
        n = len(rows)
        if n == 0:
            continue
        # Outside inference mode, so the gathered rows and fields are ordinary tensors whatever mode the caller
        # is in (an inference tensor would be another variant). Dynamo specialises a size of 1: one row runs as two.
        with torch.inference_mode(False), torch.no_grad(), torch.autocast("cpu", enabled=False), \
                torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
            index = rows.repeat(2) if n == 1 else rows  # a row written twice: the same values
            fields = [getattr(params, f).index_select(0, index) for f in op.fields]
            static = op.static(config)
            kernel = _kernel(op, static, c)
            if kernel is not None:
                try:
                    kernel(*_kernel_args(op, static, images, index, fields))
                except Exception as exc:
                    if not _is_compiler_failure(exc):
                        raise
                    _log.warning("camera op %s failed to compile (%s: %s); running it eagerly", op.name,
                                 type(exc).__name__, exc)
                    with _lock:
                        op_kernels[stage_key("camera", op.name, static, c)] = None
                    kernel = None
            if kernel is None:
                images.index_copy_(0, index, op.run(images.index_select(0, index), *fields, static, images))
    return images
