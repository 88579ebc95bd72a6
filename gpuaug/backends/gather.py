"""Bilinear sampling of only the output pixels, straight from the uint8 frames, colour and output format fused.

For each of the S x S output pixels the inverse matrix gives its source point; the four bilinear taps are
read from the flat uint8 pixel buffer of a :class:`~gpuaug.FaceBatch` (``offset + y * stride + 3 x + c``, so
ragged, padded and device-resident batches are all read in place) and blended in float32. Nothing but the
B x S x S output is ever converted to float, so the cost does not grow with the frame size.

Three stages, each a function of plain torch ops on (B, N) planes (N = S * S output pixels, row-major):

1. :func:`source_taps`: each output pixel's left/top tap and its distance to it, per axis;
2. :func:`sample_planes`: the four taps' bytes mixed into the C colour planes and the grey plane;
3. :func:`finish_planes`: the contrast pivot (the mean grey, known only now), clamp, optional
   normalisation, output dtype, on the planes seen as (B, S, S) images.

:func:`sample_colour` chains them: the reference, eager or traced into a caller's ``torch.compile``. The
CPU render (:mod:`gpuaug.backends.staged_gather`) compiles each stage on its own, writing into buffers it
keeps; the Triton kernel (:mod:`gpuaug.backends.triton_render`) is held to this reference.

Convention (same as ``warp_affine(..., align_corners=True)``): pixel centres at integers, bilinear, zero
fill. A tap counts only if it lies inside its frame's true size, so padding never bleeds in.

Safety: whatever the matrix holds (NaN, inf, singular, huge) and whatever the sizes say, every index is
clamped into its own frame and then into the buffer, so no input can read outside the batch; source points
that are not finite read as fill.
"""

from __future__ import annotations

import sys

import torch

from gpuaug.colour import GRAY_WEIGHTS

Taps = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


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


def output_grid(out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) float32 column u and row v of each output pixel, N = S * S row-major."""
    n = torch.arange(out_size * out_size, device=device)
    return (n % out_size).float(), (n // out_size).float()


def source_taps(
    inverse: torch.Tensor, sizes: torch.Tensor, u: torch.Tensor, v: torch.Tensor, out_size: int
) -> Taps:
    """Stage 1: (B, 2, 3) output -> source map, (B, 2) int64 true (H, W), (N,) grid -> (lo_x, d_x, lo_y, d_y),
    each (B, N) float32.

    ``lo`` is the left (top) tap, a whole number clamped into [0, size - 2] so both taps address real pixels
    of the frame; ``d`` the source coordinate minus ``lo``. The source point comes from :func:`safe_inverse`.
    """
    inv = safe_inverse(inverse, out_size)[:, :, :, None]
    taps = []
    for axis, size in ((0, sizes[:, 1, None]), (1, sizes[:, 0, None])):
        coord = inv[:, axis, 0] * u + (inv[:, axis, 1] * v + inv[:, axis, 2])  # inv @ (u, v, 1)
        lo = torch.minimum(coord.floor().clamp(min=0), (size - 2).clamp(min=0))
        taps += [lo, coord - lo]
    return taps[0], taps[1], taps[2], taps[3]


def _tent_weights(d: torch.Tensor, size: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance (B, N) to the left tap, true size (B, 1) -> weights of both taps: the tent
    ``max(0, 1 - |coord - tap|)`` gives exact bilinear weights inside the frame, the partial weight of the half
    pixel at each border, and 0 beyond it (zero fill)."""
    # An empty frame has no pixel to read; one a pixel wide has no second tap (it would be the next frame).
    return (1 - d.abs()).clamp(min=0) * (size > 0), (1 - (d - 1).abs()).clamp(min=0) * (size > 1)


def pixel_words(pixels: torch.Tensor) -> torch.Tensor | None:
    """The (N,) uint8 buffer as (N / 4,) int32 words for :func:`sample_planes`, or None where it cannot be:
    its start or length not a multiple of 4 bytes, 2^30 bytes or more (indices are then 32-bit), empty, or a
    big-endian host."""
    n = pixels.numel()
    if sys.byteorder != "little" or n == 0 or n % 4 or n >= 2**30 or pixels.storage_offset() % 4:
        return None
    return pixels.view(torch.int32)


def _row_bytes(words: torch.Tensor, start: torch.Tensor) -> list[torch.Tensor]:
    """Bytes ``start .. start + 5`` (B, N) int32 of the buffer as float32, from three 32-bit loads: the word
    holding ``start`` and the next two (word indices clamped into the buffer)."""
    word, first = start >> 2, start & 3
    loaded = [words[(word + j).clamp(0, words.numel() - 1)] for j in range(3)]
    out = []
    for k in range(6):
        at = first + k  # byte k's place in the three words: word at >> 2, byte at & 3 (little-endian)
        w = torch.where(at < 4, loaded[0], torch.where(at < 8, loaded[1], loaded[2]))
        out.append(((w >> ((at & 3) * 8)) & 255).float())
    return out


def sample_planes(
    pixels: torch.Tensor,
    offsets: torch.Tensor,
    strides: torch.Tensor,
    sizes: torch.Tensor,
    taps: Taps,
    rows: torch.Tensor,
    words: torch.Tensor | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Stage 2: the uint8 buffer and its layout, :func:`source_taps`' planes, (B, C, 3) colour rows ->
    C colour planes ``rows @ rgb`` (B, N) float32 (RGB in [0, 1], not yet biased or clamped) and the grey plane
    (B, N) float32 in [0, 255] (ITU-R 601).

    Each tap's byte index is clamped into the buffer as well, which guards it against offsets and strides
    that do not fit it. ``words``: the same buffer from :func:`pixel_words`; each row of taps (six bytes)
    then comes from three 32-bit loads with 32-bit indices instead of six byte loads with 64-bit ones, the
    same bytes for every tap inside the buffer (Inductor's C++ loop is about 1.4x faster).
    """
    lo_x, d_x, lo_y, d_y = taps
    wx0, wx1 = _tent_weights(d_x, sizes[:, 1, None])
    wy0, wy1 = _tent_weights(d_y, sizes[:, 0, None])
    step_y = strides[:, None]
    top = offsets[:, None] + lo_y.long() * step_y + lo_x.long() * 3  # index of the top-left tap's red byte
    last = pixels.numel() - 1
    if words is None:
        rgb = [[pixels[(top + (offset + c)).clamp(0, last)].float() for c in range(3)]
               for offset in (0, 3, step_y, step_y + 3)]
    else:
        # Into the buffer first: with it under 2^30 bytes, no 32-bit sum below can overflow.
        top, step_y = top.clamp(0, last).int(), step_y.clamp(0, last).int()
        upper, lower = _row_bytes(words, top), _row_bytes(words, top + step_y)
        rgb = [upper[:3], upper[3:], lower[:3], lower[3:]]
    # Mix each tap's three bytes into the C output rows and the grey level first, then blend the taps: the
    # colour map is linear, so this equals blending RGB first, and the kernel keeps C + 1 values per pixel
    # instead of 3 + C. One (B, N) plane per channel, so the whole stage is one loop over the pixels.
    r = rows[:, :, :, None] * (1 / 255)
    planes: list[torch.Tensor | int] = [0] * rows.shape[1]
    grey: torch.Tensor | int = 0
    for weight, (red, green, blue) in zip((wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1), rgb, strict=True):
        for k in range(len(planes)):
            planes[k] = planes[k] + weight * (r[:, k, 0] * red + r[:, k, 1] * green + r[:, k, 2] * blue)
        grey = grey + weight * (GRAY_WEIGHTS[0] * red + GRAY_WEIGHTS[1] * green + GRAY_WEIGHTS[2] * blue)
    return planes, grey  # type: ignore[return-value]


def finish_planes(
    planes: list[torch.Tensor],
    grey: torch.Tensor,
    bias_per_gray: torch.Tensor,
    norm: tuple[torch.Tensor, torch.Tensor] | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Stage 3: C colour planes and the grey plane (B, S, S) -> ``clamp(plane + bias_per_gray * mean_grey, 0,
    1)``, normalised if ``norm`` is given, as (B, C, S, S) ``dtype`` (contiguous).

    ``bias_per_gray`` (B, C) float32 is the colour bias per unit of the warped image's mean grey level in
    [0, 1] (the contrast pivot); ``norm`` None or (scale, shift) (C,) float32 applied after the clamp.
    """
    mean_gray = grey.mean(dim=(1, 2)) * (1 / 255)
    # Channels picked by index, not torch.stack: Inductor then writes the output in a single loop, with no
    # temporary copy of the planes.
    channel = torch.arange(len(planes), device=grey.device)[:, None, None]
    lin = planes[-1][:, None]
    for k in range(len(planes) - 1):
        lin = torch.where(channel == k, planes[k][:, None], lin)
    out = (lin + (bias_per_gray * mean_gray[:, None])[:, :, None, None]).clamp(0, 1)
    if norm is not None:
        out = out * norm[0][:, None, None] + norm[1][:, None, None]
    return out.to(dtype)


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
    taps = source_taps(inverse, sizes, *output_grid(out_size, pixels.device), out_size)
    planes, grey = sample_planes(pixels, offsets, strides, sizes, taps, rows)
    square = (-1, out_size, out_size)
    out = finish_planes([p.view(square) for p in planes], grey.view(square), bias_per_gray, norm, dtype)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out
