"""The DALI backend: one cached DALI pipeline per (device, batch size, out size) warps and colours.

DALI only renders pixels; every label stays in the shared torch code. The graph (:func:`render_graph`) is

    warp_affine(uint8 HWC frame, source -> output matrix, bilinear, fill 0) -> float [0, 255]
    mean RGB of the warped image (fn.reductions.mean)
    out = clamp(A @ rgb + Bm @ mean_rgb, 0, 1) (fn.coord_transform, arithmetic), CHW

with A, Bm from :func:`colour_maps` (the shared :func:`~gpuaug.colour.colour_affine`, scaled by 1/255).

Pixel convention: DALI puts pixel centres at +0.5 (the corner of the first pixel is 0), ours at integers,
so the matrix is shifted half a pixel on both sides: ``M_dali = T(+0.5) @ M @ T(-0.5)``.

Frames arrive zero-padded beyond their true size (``sizes``) and the warp's fill is zero, so, as in the
kornia backend, the padding reads as fill and pixels that map outside a frame's true size are 0.

Frames are fed in place (``no_copy``; each feed is run at once, so the caller's tensor outlives it). On
CUDA they go to DALI as GPU tensors (no host round trip) and the output comes back through
``feed_ndarray`` on torch's current stream; the small per-sample matrices and colour maps go as CPU
argument inputs, since DALI takes operator arguments (``coord_transform``'s ``M``) from the host only.

Parity with the kornia backend (same batch and params; labels are shared, so identical): measured on
CPU over 27 batches of 30 uniform-noise frames of three sizes (the worst case for resampling), out sizes
64/96/128, rotation to 45 degrees, zoom 0.5-2, crops reaching past the frame, full colour jitter, grey
on/off: worst batch mean abs diff 0.009 grey levels (of 255), worst pixel 0.22 levels, frame borders
included (the two warps round source coordinates differently in float32). tests/test_dali_backend.py
asserts mean <= 0.1 and max <= 1 level.
"""

from __future__ import annotations

import os

import numpy as np
import torch

try:
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import math as dmath
    from nvidia.dali.data_node import DataNode
    from nvidia.dali.pipeline import Pipeline
    from nvidia.dali.plugin.pytorch import feed_ndarray
    from nvidia.dali.tensors import TensorListCPU, TensorListGPU
except ImportError as exc:  # optional dependency: name the extra to install
    raise ImportError(
        "the DALI backend needs NVIDIA DALI: pip install gpuaug[dali] (package nvidia-dali-cuda120)"
    ) from exc

from gpuaug.colour import GRAY_WEIGHTS, colour_affine
from gpuaug.labels.matrix import translation
from gpuaug.params import AugmentParams

#: names of the per-sample render inputs, in :func:`render_inputs` order.
RENDER_INPUTS = ("matrix", "colour", "pivot")


def dali_matrix(matrix: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) source -> output, centres at integers -> (B, 2, 3) float32 in DALI's +0.5 convention."""
    half = torch.full((matrix.shape[0], 2), 0.5, dtype=matrix.dtype, device=matrix.device)
    return (translation(half) @ matrix @ translation(-half))[:, :2].float()


def colour_maps(params: AugmentParams, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The shared colour map for pixels in [0, 255]: A (B, C, 3) and Bm (B, C, 3), float32.

    ``colour_affine``'s offset is ``b = beta * mean_grey`` (the contrast pivot), so with
    ``mean_grey = w . mean_rgb`` it is ``b = Bm @ mean_rgb``, ``Bm = beta w^T``: DALI takes the mean of
    the warped image itself. Both maps are divided by 255 so the output lands in [0, 1].
    """
    ones = torch.ones(len(params), dtype=torch.float32, device=params.brightness.device)
    a, beta = colour_affine(params, ones, channels)
    w = torch.tensor(GRAY_WEIGHTS, dtype=beta.dtype, device=beta.device)
    return a / 255, beta[:, :, None] * w / 255


def render_inputs(matrix: torch.Tensor, params: AugmentParams, channels: int) -> tuple[np.ndarray, ...]:
    """The per-sample CPU inputs of :func:`render_graph`, named by :data:`RENDER_INPUTS`."""
    tensors = (dali_matrix(matrix), *colour_maps(params, channels))
    return tuple(t.detach().cpu().contiguous().numpy() for t in tensors)


def render_graph(
    frames: DataNode, matrix: DataNode, colour: DataNode, pivot: DataNode, out_size: int
) -> DataNode:
    """DALI subgraph: uint8 HWC frames -> float32 CHW (C, S, S) in [0, 1]; inputs as :func:`render_inputs`."""
    warped = fn.warp_affine(
        frames, matrix=matrix, inverse_map=False, size=[out_size, out_size], fill_value=0.0,
        interp_type=types.INTERP_LINEAR, dtype=types.FLOAT,
    )
    mean_rgb = fn.reductions.mean(warped, axes=[0, 1], keep_dims=True)  # (1, 1, 3)
    out = fn.coord_transform(warped, M=colour) + fn.coord_transform(mean_rgb, M=pivot)
    # Transposed here, not in torch: DALI's per-sample transpose is ~4x cheaper than torch's strided copy.
    return fn.transpose(dmath.clamp(out, 0.0, 1.0), perm=[2, 0, 1])


def default_threads() -> int:
    """DALI CPU threads per pipeline: up to 4 (the warp and colour ops are light)."""
    return max(1, min(4, os.cpu_count() or 1))


def dali_device_id(device: torch.device) -> int | None:
    """DALI's ``device_id`` for a torch device: the CUDA ordinal, or None for a CPU-only pipeline."""
    if device.type != "cuda":
        return None
    return device.index if device.index is not None else torch.cuda.current_device()


class DaliBackend:
    """Backend protocol (see :mod:`gpuaug.backends`) on DALI; pipelines are built on first use and cached.

    The channel count is the row count of the colour map, a per-run input, so one pipeline serves 1 and 3.

    Args:
        num_threads: DALI CPU threads per pipeline (default min(4, CPU count)).
    """

    def __init__(self, num_threads: int | None = None) -> None:
        self.num_threads = num_threads or default_threads()
        self._pipes: dict[tuple[str, int, int], Pipeline] = {}

    def pipeline(self, device: torch.device, batch_size: int, out_size: int) -> Pipeline:
        """The cached pipeline for this key (built on first use); inputs fed by name with ``feed_input``."""
        key = (str(device), batch_size, out_size)
        if key not in self._pipes:
            # Synchronous execution: each call feeds one batch and runs it straight away.
            pipe = Pipeline(
                batch_size=batch_size, num_threads=self.num_threads, device_id=dali_device_id(device),
                prefetch_queue_depth=1, exec_async=False, exec_pipelined=False,
            )
            with pipe:
                # no_copy: DALI reads the caller's frames in place (run() follows each feed at once).
                frames = fn.external_source(
                    name="frames", device="gpu" if device.type == "cuda" else "cpu", layout="HWC",
                    dtype=types.UINT8, ndim=3, no_copy=True,
                )
                args = [fn.external_source(name=n, dtype=types.FLOAT, ndim=2) for n in RENDER_INPUTS]
                pipe.set_outputs(render_graph(frames, *args, out_size=out_size))
            pipe.build()
            self._pipes[key] = pipe
        return self._pipes[key]

    def __call__(
        self,
        images: torch.Tensor,
        sizes: torch.Tensor,
        matrix: torch.Tensor,
        params: AugmentParams,
        out_size: int,
        channels: int,
    ) -> torch.Tensor:
        """(B, Hmax, Wmax, 3) uint8 zero-padded frames -> (B, channels, S, S) float32 on their device."""
        del sizes  # the zero padding is the warp's fill already (see the module docstring)
        device, n = images.device, images.shape[0]
        pipe = self.pipeline(device, n, out_size)
        frames = images.contiguous()
        pipe.feed_input("frames", frames if device.type == "cuda" else frames.numpy())
        for name, value in zip(RENDER_INPUTS, render_inputs(matrix, params, channels), strict=True):
            pipe.feed_input(name, value)
        (out,) = pipe.run()
        return to_torch(out, device)


def to_torch(batch: TensorListCPU | TensorListGPU, device: torch.device) -> torch.Tensor:
    """A dense DALI TensorList (CPU or GPU) -> a torch tensor on ``device`` (a copy: DALI reuses buffers)."""
    dense = batch.as_tensor()
    if device.type != "cuda":
        return torch.from_numpy(np.asarray(dense)).clone()  # one copy, from a view of DALI's buffer
    out = torch.empty(dense.shape(), dtype=torch.float32, device=device)
    feed_ndarray(dense, out, cuda_stream=torch.cuda.current_stream(device))
    return out
