"""Bilinear sampling of only the output pixels, straight from the uint8 frames, colour and output format fused.

For each of the S x S output pixels the inverse matrix gives its source point; the four bilinear taps are
read from the flat uint8 pixel buffer of a :class:`~gpuaug.FaceBatch` (``offset + y * stride + 3 x + c``, so
ragged, padded and device-resident batches are all read in place) and blended in float32. Nothing but the
B x S x S output is ever converted to float, so the cost does not grow with the frame size. Colour, the
optional normalisation, the output dtype and the memory format are applied in the same pass: under
``torch.compile`` (Inductor: C++ loops on the CPU, Triton on CUDA) it is two fused kernels, the first
sampling and reducing the mean grey that the contrast pivot needs, the second writing the output.

Convention (same as ``warp_affine(..., align_corners=True)``): pixel centres at integers, bilinear, zero
fill. A tap counts only if it lies inside its frame's true size, so padding never bleeds in.

Safety: whatever the matrix holds (NaN, inf, singular, huge) and whatever the sizes say, every index is
clamped into its own frame and then into the buffer, so no input can read outside the batch; source points
that are not finite read as fill.
"""

from __future__ import annotations

import torch

from gpuaug.colour import GRAY_WEIGHTS


def _axis_taps(
    coord: torch.Tensor, size: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source coordinate (B, S, S) along one axis (finite), true size (B, 1, 1) int64 -> tap index, weights
    of both taps.

    The left tap is clamped into [0, size - 2] so both taps address real pixels of the frame; the tent
    weight ``max(0, 1 - |coord - tap|)`` then gives exact bilinear weights inside the frame, the partial
    weight of the half pixel at each border, and 0 beyond it (zero fill).
    """
    lo = torch.minimum(coord.floor().clamp(min=0), (size - 2).clamp(min=0))
    d = coord - lo
    # An empty frame has no pixel to read; one a pixel wide has no second tap (it would be the next frame).
    w0 = (1 - d.abs()).clamp(min=0) * (size > 0)
    w1 = (1 - (d - 1).abs()).clamp(min=0) * (size > 1)
    return lo.long(), w0, w1


def map_bound(out_size: int) -> float:
    """Bound on the entries of a sanitised output -> source map: source points stay within about 1e7 pixels
    for an S x S output, so tap arithmetic (floor, int64 index) is defined."""
    return 1e7 / (2 * out_size + 1)


def safe_inverse(inverse: torch.Tensor, out_size: int) -> torch.Tensor:
    """(B, 2, 3) output -> source map with every source point finite and within about 1e7 pixels.

    A sample whose map is not finite (NaN, inf: a singular or broken matrix) maps every output pixel far
    outside any frame, so it reads as fill. Clamping the entries bounds the source points, so the tap
    arithmetic (floor, int64 index) is defined, and points beyond a pixel outside the frame weigh 0 anyway.
    Done once per sample, not per pixel, so the render kernel stays as lean as before.
    """
    bound = map_bound(out_size)
    finite = torch.isfinite(inverse).flatten(1).all(1)[:, None, None]
    outside = torch.zeros_like(inverse)
    outside[:, :, 2] = -bound  # a scalar fill: no host -> device copy (a tensor index would be one)
    return torch.where(finite, inverse.clamp(-bound, bound), outside)


def sample_colour(
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
    """Warp and colour: ``clamp(rows @ rgb + bias_per_gray * mean_gray, 0, 1) * scale + shift`` per output pixel.

    Source points come from :func:`safe_inverse`, taps from :func:`_axis_taps`; every byte index is clamped
    into the buffer as well.

    Args:
        pixels: (N,) uint8 RGB bytes of every frame.
        offsets: (B,) int64 index of each frame's pixel (0, 0) in ``pixels``.
        strides: (B,) int64 bytes per row of each frame.
        sizes: (B, 2) int64 true (H, W).
        inverse: (B, 2, 3) float32 output -> source pixel map (the top rows of the inverse matrix).
        rows: (B, C, 3) float32 colour rows for RGB in [0, 1].
        bias_per_gray: (B, C) float32 colour bias per unit of the warped image's mean grey level
            (ITU-R 601): the contrast pivot, only known once the whole output is sampled.
        norm: None, or (scale, shift) (C,) float32 applied after the clamp (``(x - mean) / std``).
        out_size: S.
        dtype: output dtype.
        channels_last: store the output in channels-last memory format.

    Returns:
        (B, C, S, S) ``dtype``; in [0, 1] unless normalised.
    """
    u = torch.arange(out_size, dtype=torch.float32, device=pixels.device)
    inv = safe_inverse(inverse, out_size)[:, :, :, None, None]
    # Source point of output pixel (row v, column u): inv @ (u, v, 1); (B, S, S) per axis.
    x = inv[:, 0, 0] * u + (inv[:, 0, 1] * u[:, None] + inv[:, 0, 2])
    y = inv[:, 1, 0] * u + (inv[:, 1, 1] * u[:, None] + inv[:, 1, 2])
    hw = sizes[:, :, None, None]
    x0, wx0, wx1 = _axis_taps(x, hw[:, 1])
    y0, wy0, wy1 = _axis_taps(y, hw[:, 0])
    step_y = strides[:, None, None]
    top = offsets[:, None, None] + y0 * step_y + x0 * 3  # index of the top-left tap's red byte
    last = pixels.numel() - 1

    # Mix each tap's three bytes into the C output rows and the grey level first, then blend the taps: the
    # colour map is linear, so this equals blending RGB first, and the kernel keeps C + 1 values per pixel
    # instead of 3 + C.
    r = rows[:, :, :, None, None] * (1 / 255)
    lin, grey = 0, 0
    for weight, offset in ((wy0 * wx0, 0), (wy0 * wx1, 3), (wy1 * wx0, step_y), (wy1 * wx1, step_y + 3)):
        # The second clamp guards the buffer itself against offsets and strides that do not fit it.
        red, green, blue = (pixels[(top + (offset + c)).clamp(0, last)].float() for c in range(3))
        mixed = r[:, :, 0] * red[:, None] + r[:, :, 1] * green[:, None] + r[:, :, 2] * blue[:, None]
        lin = lin + weight[:, None] * mixed
        grey = grey + weight * (GRAY_WEIGHTS[0] * red + GRAY_WEIGHTS[1] * green + GRAY_WEIGHTS[2] * blue)
    mean_gray = grey.mean(dim=(1, 2)) * (1 / 255)
    out = (lin + (bias_per_gray * mean_gray[:, None])[:, :, None, None]).clamp(0, 1)
    if norm is not None:
        out = out * norm[0][:, None, None] + norm[1][:, None, None]
    out = out.to(dtype)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out
