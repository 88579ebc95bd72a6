"""Sensor resolution: the image seen at s x s pixels (area averaging, as OpenCV's ``INTER_AREA``) and brought back
to S x S (bilinear with half-pixel centres and clamped edges, as OpenCV's ``INTER_LINEAR``).

s = round(low_res * S) per sample. Both resizes are linear, so down-then-up along an axis is one S x S matrix
per sample (:func:`resize_operator`; the small image would live in its first s entries; the up step blends two
of its rows per output pixel), applied to rows and columns as two batched matrix products: shapes never depend
on s. (Pixels, not labels: the products follow the
caller's float32 matmul precision.)
"""

from __future__ import annotations

import torch


def small_size(low_res: torch.Tensor, out_size: int) -> torch.Tensor:
    """(B,) fraction -> (B,) float32 whole number of pixels s in [1, S]."""
    return torch.round(low_res * out_size).clamp(1, out_size)


def resize_operator(small: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) small sizes s -> (B, S, S) float32: area average from S down to s, then bilinear back up to S."""
    k = torch.arange(size, device=small.device, dtype=torch.float32)
    scale = (size / small)[:, None, None]  # source pixels per small pixel
    start = k[None, :, None] * scale  # small pixel k (row) covers source [start, start + scale)
    j = k[None, None, :]  # source pixel j (column) covers [j, j + 1)
    down = (torch.minimum(j + 1, start + scale) - torch.maximum(j, start)).clamp(min=0) / scale
    last = small[:, None, None] - 1
    src = torch.minimum(((k[None, :, None] + 0.5) / scale - 0.5).clamp(min=0), last)  # output pixel i (row)
    lo = torch.floor(src)
    frac = src - lo
    hi = torch.minimum(lo + 1, last)
    # Bilinear up reads two small pixels per output pixel: row i of the product is a blend of two rows of down.
    lo_rows = torch.gather(down, 1, lo.long().expand(-1, -1, size))
    hi_rows = torch.gather(down, 1, hi.long().expand(-1, -1, size))
    return lo_rows * (1 - frac) + hi_rows * frac


def low_resolution(images: torch.Tensor, low_res: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) -> seen at ``round(low_res * S)`` pixels a side (``low_res`` (B,), 1: unchanged) and
    brought back."""
    op = resize_operator(small_size(low_res, images.shape[-1]), images.shape[-1])[:, None]
    out = op @ images @ op.transpose(-1, -2)
    return torch.where(low_res[:, None, None, None] < 1, out, images)
