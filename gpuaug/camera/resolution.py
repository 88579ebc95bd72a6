"""Sensor resolution: the image seen at s x s pixels (area averaging, as OpenCV's ``INTER_AREA``) and brought back
to S x S (bilinear with half-pixel centres and clamped edges, as OpenCV's ``INTER_LINEAR``).

s = round(low_res * S) per sample. Each axis is done with gathers over a fixed number of taps, so the shapes
never depend on s: the small image lives in the first s entries of an S-long axis.
"""

from __future__ import annotations

import math

import torch


def area_taps(low_res_min: float, out_size: int) -> int:
    """Taps per small pixel of the area filter at the smallest size the config draws."""
    return math.ceil(1 / max(low_res_min, 1 / out_size)) + 1


def small_size(low_res: torch.Tensor, out_size: int) -> torch.Tensor:
    """(B,) fraction -> (B,) float32 whole number of pixels s in [1, S]."""
    return torch.round(low_res * out_size).clamp(1, out_size)


def _gather_last(x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, S), index and weight (B, S', T) -> (B, C, H, S'): ``sum_t weight * x[..., index]``."""
    b, s_out, taps = index.shape
    picked = torch.take_along_dim(x, index.reshape(b, 1, 1, s_out * taps), dim=-1)
    return (picked.unflatten(-1, (s_out, taps)) * weight[:, None, None]).sum(-1)


def _down_up_last(x: torch.Tensor, small: torch.Tensor, taps: int) -> torch.Tensor:
    """Area down to ``small`` (B,) pixels then bilinear back up, along the last axis of x (B, C, H, S)."""
    size = x.shape[-1]
    k = torch.arange(size, device=x.device, dtype=torch.float32)
    scale = size / small[:, None, None]  # source pixels per small pixel
    start = k[None, :, None] * scale  # small pixel k covers [start, start + scale)
    j = torch.floor(start) + torch.arange(taps, device=x.device, dtype=torch.float32)
    overlap = (torch.minimum(j + 1, start + scale) - torch.maximum(j, start)).clamp(min=0) / scale
    down = _gather_last(x, j.clamp(0, size - 1).long(), overlap)
    src = ((k[None] + 0.5) / scale[:, :, 0] - 0.5).clamp(min=0)
    src = torch.minimum(src, small[:, None] - 1)
    lo = torch.floor(src)
    frac = src - lo
    hi = torch.minimum(lo + 1, small[:, None] - 1)
    index = torch.stack([lo, hi], -1).long()
    return _gather_last(down, index, torch.stack([1 - frac, frac], -1))


def low_resolution(images: torch.Tensor, low_res: torch.Tensor, taps: int) -> torch.Tensor:
    """(B, C, S, S) -> seen at ``round(low_res * S)`` pixels a side (``low_res`` (B,), 1: unchanged) and
    brought back; ``taps`` from :func:`area_taps`."""
    small = small_size(low_res, images.shape[-1])
    out = _down_up_last(images, small, taps)
    out = _down_up_last(out.transpose(-1, -2), small, taps).transpose(-1, -2)
    return torch.where(low_res[:, None, None, None] < 1, out, images)
