"""Bilinear sampling of only the output pixels, straight from the uint8 batch, with the colour rows fused.

For each of the S x S output pixels the inverse matrix gives its source point; the four bilinear taps are
read from the zero-padded uint8 batch by flat index and blended in float32. Nothing but the B x S x S
output is ever converted to float, so the cost no longer grows with the frame size (kornia's
``warp_affine`` converts and reads the whole padded batch).

Convention (same as ``warp_affine(..., align_corners=True)``): pixel centres at integers, bilinear, zero
fill. A tap counts only if it lies inside its frame's true size, so padding never bleeds in.
"""

from __future__ import annotations

import torch

from gpuaug.colour import GRAY_WEIGHTS


def _axis_taps(
    coord: torch.Tensor, size: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source coordinate (B, S, S) along one axis, true size (B, 1, 1) -> tap index, weights of both taps.

    The left tap is clamped into [0, size - 2] so both taps always address real pixels of the frame; the
    tent weight ``max(0, 1 - |coord - tap|)`` then gives exact bilinear weights inside the frame, the
    partial weight of the half pixel at each border, and 0 beyond it (zero fill).
    """
    lo = torch.minimum(coord.floor().clamp(min=0), (size - 2).clamp(min=0))
    d = coord - lo
    w0 = (1 - d.abs()).clamp(min=0)
    # A frame one pixel wide has no second tap: the index would run into padding or the next frame.
    w1 = (1 - (d - 1).abs()).clamp(min=0) * (size > 1)
    return lo.long(), w0, w1


def sample_colour(
    images: torch.Tensor,
    sizes: torch.Tensor,
    inverse: torch.Tensor,
    rows: torch.Tensor,
    bias_per_gray: torch.Tensor,
    out_size: int,
) -> torch.Tensor:
    """Warp and colour: ``clamp(rows @ rgb + bias_per_gray * mean_gray, 0, 1)`` per output pixel.

    Args:
        images: (B, Hmax, Wmax, 3) uint8, zero-padded beyond ``sizes``.
        sizes: (B, 2) int64 true (H, W).
        inverse: (B, 2, 3) float32 output -> source pixel map (the top rows of the inverse matrix).
        rows: (B, C, 3) float32 colour rows for RGB in [0, 1].
        bias_per_gray: (B, C) float32 colour bias per unit of the warped image's mean grey level
            (ITU-R 601): the contrast pivot, only known once the whole output is sampled.
        out_size: S.

    Returns:
        (B, C, S, S) float32 in [0, 1].
    """
    b, hmax, wmax, _ = images.shape
    u = torch.arange(out_size, dtype=torch.float32, device=images.device)
    inv = inverse[:, :, :, None, None]
    # Source point of output pixel (row v, column u): inv @ (u, v, 1); (B, S, S) per axis.
    x = inv[:, 0, 0] * u + (inv[:, 0, 1] * u[:, None] + inv[:, 0, 2])
    y = inv[:, 1, 0] * u + (inv[:, 1, 1] * u[:, None] + inv[:, 1, 2])
    hw = sizes[:, :, None, None]
    x0, wx0, wx1 = _axis_taps(x, hw[:, 1])
    y0, wy0, wy1 = _axis_taps(y, hw[:, 0])
    frame = torch.arange(b, device=images.device)[:, None, None] * (hmax * wmax)
    top = (frame + y0 * wmax + x0) * 3  # flat index of the top-left tap's red byte
    flat = images.reshape(-1)
    step_x, step_y = 3, 3 * wmax

    def channel(c: int) -> torch.Tensor:
        def tap(offset: int) -> torch.Tensor:
            return flat[top + (offset + c)].float()

        upper = wx0 * tap(0) + wx1 * tap(step_x)
        lower = wx0 * tap(step_y) + wx1 * tap(step_y + step_x)
        return (wy0 * upper + wy1 * lower) * (1 / 255)

    rgb = [channel(c) for c in range(3)]  # 3 x (B, S, S)
    r = rows[:, :, :, None, None]
    out = r[:, :, 0] * rgb[0][:, None] + r[:, :, 1] * rgb[1][:, None] + r[:, :, 2] * rgb[2][:, None]
    mean_gray = sum(w * ch for w, ch in zip(GRAY_WEIGHTS, rgb, strict=True)).mean(dim=(1, 2))
    return (out + (bias_per_gray * mean_gray[:, None])[:, :, None, None]).clamp(0, 1)
