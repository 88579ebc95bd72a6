"""The DALI backend: one cached DALI pipeline per (device, batch size, out size, channels) warps and colours.

DALI only renders pixels; every label stays in the shared torch code. The graph (:func:`render_graph`) is,
for colour output (3 channels),

    warp_affine(uint8 HWC frame, source -> output matrix, bilinear, fill 0) -> float [0, 255]
    mean RGB of the warped image (fn.reductions.mean)
    out = clamp(A @ rgb + Bm @ mean_rgb, 0, 1) (fn.coord_transform, arithmetic), CHW

with A, Bm from :func:`colour_maps` (the shared :func:`~gpuaug.colour.colour_affine`, scaled by 1/255).
For grey output (1 channel) the warp, which is most of the time on a CPU, carries one channel, not three:

    slice the window the warp reads (fn.slice, per-sample start and shape from :func:`read_window`)
    luma = w . rgb (fn.coord_transform) -> float [0, 255]
    warp luma as above; out = clamp(g * y + beta * mean_y, 0, 1) (:func:`grey_maps`)

This equals the colour graph's grey row: the colour map is linear and its grey row is ``g * w``, so luma
commutes with the (linear) warp, and the contrast pivot, the mean luma of the warped image, is taken after
it. The window is about a quarter of a 240 x 320 frame at the default framing, so turning it to luma first
costs little.

Pixel convention: DALI puts pixel centres at +0.5 (the corner of the first pixel is 0), ours at integers,
so the matrix is shifted half a pixel on both sides: ``M_dali = T(+0.5) @ M @ T(-0.5)``.

Frames go to DALI as a ragged batch, one (H, W, 3) view per sample of the :class:`~gpuaug.FaceBatch`'s
buffer (DALI batches are ragged by nature), fed in place (``no_copy``; each feed is run at once, so the
caller's buffer outlives it; a padded batch's views are made contiguous first). Pixels that map outside a
frame are the warp's zero fill. On CUDA the views are GPU tensors (no host round trip) and the output
comes back through ``feed_ndarray`` on torch's current stream; the frame offsets and sizes, and the small
per-sample matrices, windows and colour maps, are read on the host, since DALI takes sample shapes and
operator arguments (``coord_transform``'s ``M``) from the host only. On CUDA a call waits twice: once for
that one packed device -> host copy (:func:`host_copy`), once for DALI's synchronous run. The frames are
fed on the batch device's current stream, so DALI reads them after the work that wrote them.

Output format (``AugmentConfig``): channels-last output skips the final transpose (DALI's HWC is
channels-last already); normalisation and the dtype are applied in torch (:func:`gpuaug.output.finish`).

Parity with the kornia backend (same batch and params; labels are shared, so identical): measured on
CPU over 27 batches of 30 uniform-noise frames of three sizes (the worst case for resampling), out sizes
64/96/128, rotation to 45 degrees, zoom 0.5-2, crops reaching past the frame, full colour jitter, grey
on/off: worst batch mean abs diff 0.009 grey levels (of 255), worst pixel 0.22 levels, frame borders
included (the two warps round source coordinates differently in float32); the grey graph, over 36
such batches of all-grey output: worst batch mean 0.004 levels, worst pixel 0.13 levels.
tests/test_dali_backend.py asserts mean <= 0.1 and max <= 1 level.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

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
        "the DALI backend needs NVIDIA DALI: pip install nvidia-dali-cuda120 (CUDA 12; -cuda130 for CUDA 13), "
        "or gpuaug's dali extra"
    ) from exc

from gpuaug.batch import FaceBatch
from gpuaug.colour import GRAY_WEIGHTS, colour_affine
from gpuaug.config import AugmentConfig
from gpuaug.labels.matrix import affine_inverse, translation
from gpuaug.linalg import matmul
from gpuaug.output import finish
from gpuaug.params import AugmentParams

#: names of the per-sample render inputs, in :func:`render_inputs` order, per output channel count.
RENDER_INPUTS = {3: ("matrix", "colour", "pivot"), 1: ("start", "shape", "matrix", "colour", "pivot")}


def dali_matrix(matrix: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) source -> output, centres at integers -> (B, 2, 3) float32 in DALI's +0.5 convention."""
    half = torch.full((matrix.shape[0], 2), 0.5, dtype=matrix.dtype, device=matrix.device)
    return matmul(matmul(translation(half), matrix), translation(-half))[:, :2].float()


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


def grey_maps(params: AugmentParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The grey map on warped luma ``y = w . rgb`` in [0, 255]: gain (B, 1, 1) and pivot (B, 1, 1), float32,
    ``out = clamp(gain * y + pivot * mean(y), 0, 1)``.

    The shared grey row ``w @ A`` is ``g * w`` (hue and saturation keep luma) and ``Bm = beta w``, so with
    ``w`` summing to 1 each map's row sum is its factor on luma.
    """
    row, pivot = colour_maps(params, 1)
    return row.sum(-1, keepdim=True), pivot.sum(-1, keepdim=True)


def read_window(
    matrix: torch.Tensor, sizes: torch.Tensor, out_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The part of each frame an S x S warp reads: (B, 2) int32 start and shape (H, W order), and the
    (B, 3, 3) source -> output matrix of that window (origin at its start).

    The window holds every bilinear tap inside the frame's true size (``sizes``, (B, 2) H, W), with a
    pixel more each side against rounding; taps outside it read the warp's zero fill, as the frame's
    padding and what lies beyond it do, so warping the window equals warping the frame. It is at least
    1 x 1 (DALI warps no empty input): a window that misses the frame gets a pixel that no tap reads.
    """
    last = out_size - 1
    corners = torch.tensor([[0, 0, 1], [last, 0, 1], [0, last, 1], [last, last, 1]], dtype=matrix.dtype)
    # An affine map takes the output square's corner centres to the extremes of the source footprint.
    src = matmul(affine_inverse(matrix), corners.T.to(matrix.device))[:, :2]  # (B, 2 (x, y), 4)
    size = sizes.flip(-1).to(matrix.dtype)  # (B, 2) W, H
    lo = torch.minimum((src.amin(-1).floor() - 1).clamp(min=0), size - 1)
    hi = torch.maximum(torch.minimum(src.amax(-1).floor() + 3, size), lo + 1)  # exclusive
    return lo.flip(-1).int(), (hi - lo).flip(-1).int(), matmul(matrix, translation(lo))


def render_inputs(
    matrix: torch.Tensor, sizes: torch.Tensor, params: AugmentParams, out_size: int, channels: int
) -> tuple[torch.Tensor, ...]:
    """The per-sample inputs of :func:`render_graph` (on the matrix's device; :func:`host_copy` brings them
    to DALI), named by ``RENDER_INPUTS[channels]``.

    A sample whose matrix is not finite (a bad sample, see :func:`gpuaug.augment.mask_invalid`) is warped
    with a translation far off every frame instead, so it comes out as fill, as in the torch backend.
    """
    far = translation(torch.full((len(matrix), 2), -1e6, dtype=matrix.dtype, device=matrix.device))
    matrix = torch.where(torch.isfinite(matrix).flatten(1).all(1)[:, None, None], matrix, far)
    if channels == 1:
        start, shape, window_matrix = read_window(matrix, sizes, out_size)
        tensors = (start, shape, dali_matrix(window_matrix), *grey_maps(params))
    else:
        tensors = (dali_matrix(matrix), *colour_maps(params, channels))
    return tensors


def host_copy(*tensors: torch.Tensor) -> tuple[np.ndarray, ...]:
    """Small (B, ...) tensors (float32, int32/int64 below 2**53) -> numpy arrays of the same dtypes and shapes,
    in one device -> host copy (one sync on CUDA instead of one per tensor)."""
    b = tensors[0].shape[0]
    widths = [t[0].numel() if b else 0 for t in tensors]
    packed = torch.cat([t.detach().reshape(b, w).double() for t, w in zip(tensors, widths, strict=True)], 1)
    packed = packed.cpu().numpy()
    out, start = [], 0
    for t, width in zip(tensors, widths, strict=True):
        out.append(packed[:, start:start + width].reshape(t.shape).astype(torch_to_numpy(t.dtype)))
        start += width
    return tuple(out)


def torch_to_numpy(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype of a torch dtype (``torch.empty(0, dtype=dtype).numpy().dtype``)."""
    return torch.empty(0, dtype=dtype).numpy().dtype


def warp_and_colour(
    images: DataNode, matrix: DataNode, colour: DataNode, pivot: DataNode, out_size: int, channels_last: bool
) -> DataNode:
    """HWC images (C_in channels, uint8 or float in [0, 255]) -> float32 CHW (C, S, S), or HWC when
    ``channels_last``, in [0, 1]: ``clamp(colour @ px + pivot @ mean_px, 0, 1)`` on the warped pixels;
    colour, pivot (B, C, C_in)."""
    warped = fn.warp_affine(
        images, matrix=matrix, inverse_map=False, size=[out_size, out_size], fill_value=0.0,
        interp_type=types.INTERP_LINEAR, dtype=types.FLOAT,
    )
    mean = fn.reductions.mean(warped, axes=[0, 1], keep_dims=True)  # (1, 1, C_in)
    out = fn.coord_transform(warped, M=colour) + fn.coord_transform(mean, M=pivot)
    out = dmath.clamp(out, 0.0, 1.0)
    # Transposed here, not in torch: DALI's per-sample transpose is ~4x cheaper than torch's strided copy.
    return out if channels_last else fn.transpose(out, perm=[2, 0, 1])


def render_graph(
    frames: DataNode, inputs: Sequence[DataNode], out_size: int, channels: int, channels_last: bool = False
) -> DataNode:
    """DALI subgraph: uint8 HWC frames -> float32 CHW (channels, S, S) (HWC when ``channels_last``) in
    [0, 1]; ``inputs`` as :func:`render_inputs` gives them.

    Grey output (channels 1) warps one channel, not three: the read window is cut out and turned to luma
    first (the colour map is linear, so luma can go before the warp and the contrast pivot after it).
    """
    if channels != 1:
        return warp_and_colour(frames, *inputs, out_size=out_size, channels_last=channels_last)
    start, shape, matrix, gain, pivot = inputs
    window = fn.slice(frames, start=start, shape=shape, axis_names="HW")
    luma = fn.coord_transform(window, M=list(GRAY_WEIGHTS), dtype=types.FLOAT)  # (h, w, 1) in [0, 255]
    return warp_and_colour(luma, matrix, gain, pivot, out_size, channels_last)


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

    One pipeline per (device, batch size, out size, channels, channels-last): grey and colour output are
    different graphs (see :func:`render_graph`), and a FaceAugment config fixes both anyway.

    Args:
        num_threads: DALI CPU threads per pipeline (default min(4, CPU count)).
    """

    def __init__(self, num_threads: int | None = None) -> None:
        self.num_threads = num_threads or default_threads()
        self._pipes: dict[tuple[str, int, int, int, bool], Pipeline] = {}

    def pipeline(
        self, device: torch.device, batch_size: int, out_size: int, channels: int, channels_last: bool
    ) -> Pipeline:
        """The cached pipeline for this key (built on first use); inputs fed by name with ``feed_input``."""
        key = (str(device), batch_size, out_size, channels, channels_last)
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
                inputs = [fn.external_source(name=n) for n in RENDER_INPUTS[channels]]
                pipe.set_outputs(render_graph(frames, inputs, out_size, channels, channels_last))
            pipe.build()
            self._pipes[key] = pipe
        return self._pipes[key]

    def __call__(
        self, batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams, config: AugmentConfig
    ) -> torch.Tensor:
        """A :class:`FaceBatch` -> (B, channels, S, S) in the configured format on its device."""
        device, c = batch.device, config
        pipe = self.pipeline(device, len(batch), c.out_size, c.channels, c.channels_last)
        layout, *inputs = host_copy(torch.cat([batch.offsets[:, None], batch.strides[:, None], batch.sizes], 1),
                                    *render_inputs(matrix, batch.sizes, params, c.out_size, c.channels))
        stream = {"cuda_stream": torch.cuda.current_stream(device).cuda_stream} if device.type == "cuda" else {}
        pipe.feed_input("frames", frame_views(batch, layout), **stream)
        for name, value in zip(RENDER_INPUTS[c.channels], inputs, strict=True):
            pipe.feed_input(name, value)
        (out,) = pipe.run()
        return rendered_output(out, device, c)


def rendered_output(batch: TensorListCPU | TensorListGPU, device: torch.device, config: AugmentConfig) -> torch.Tensor:
    """:func:`render_graph`'s output -> (B, C, S, S) torch tensor on ``device`` in the configured format."""
    out = to_torch(batch, device)
    return finish(out.permute(0, 3, 1, 2) if config.channels_last else out, config)


def frame_views(batch: FaceBatch, layout: np.ndarray | None = None) -> list:
    """Each frame of ``batch`` as an (H, W, 3) uint8 view of its buffer: numpy arrays on the CPU, torch
    tensors on CUDA (DALI reads both in place); a view with row padding is made contiguous. ``layout``: the
    (B, 4) offset, stride, H, W already on the host (else read here)."""
    if layout is None:
        layout = torch.cat([batch.offsets[:, None], batch.strides[:, None], batch.sizes], 1).cpu().numpy()
    host = layout.tolist()
    flat = batch.pixels.numpy() if batch.device.type == "cpu" else batch.pixels
    views = []
    windows = getattr(batch, "windows", None)  # a WindowedBatch holds only part of each frame
    if windows is not None:
        # Each frame whole, zeros outside its window (taps there weigh 0): a copy, so DALI's own maths sees the
        # same frame size and matrix as for whole-frame reads.
        for (offset, stride, h, w), (top, left, wh, ww) in zip(host, windows.cpu().tolist(), strict=True):
            start = offset + top * stride + 3 * left
            if batch.device.type == "cpu":
                full = np.zeros((h, w, 3), dtype=np.uint8)
                window = np.lib.stride_tricks.as_strided(flat[start:], (wh, ww, 3), (stride, 3, 1), writeable=False)
            else:
                full = torch.zeros((h, w, 3), dtype=torch.uint8, device=batch.device)
                window = flat.as_strided((wh, ww, 3), (stride, 3, 1), start)
            full[top:top + wh, left:left + ww] = window
            views.append(full)
        return views
    for offset, stride, h, w in host:
        if batch.device.type == "cpu":
            view = np.lib.stride_tricks.as_strided(flat[offset:], (h, w, 3), (stride, 3, 1), writeable=False)
            views.append(view if stride == 3 * w else np.ascontiguousarray(view))
        else:
            view = flat.as_strided((h, w, 3), (stride, 3, 1), offset)
            views.append(view if stride == 3 * w else view.contiguous())
    return views


def to_torch(batch: TensorListCPU | TensorListGPU, device: torch.device) -> torch.Tensor:
    """A dense DALI TensorList (CPU or GPU) -> a torch tensor on ``device`` (a copy: DALI reuses buffers)."""
    dense = batch.as_tensor()
    if device.type != "cuda":
        return torch.from_numpy(np.asarray(dense)).clone()  # one copy, from a view of DALI's buffer
    out = torch.empty(dense.shape(), dtype=torch.float32, device=device)
    feed_ndarray(dense, out, cuda_stream=torch.cuda.current_stream(device))
    return out
