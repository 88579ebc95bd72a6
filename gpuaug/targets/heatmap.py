"""Gaussian heatmap targets as mmpose's codecs build them, for a whole batch at once, and their decoders.

Three encodings, each value for value what mmpose 1.x gives for one instance (``mmpose/codecs/msra_heatmap.py``,
``udp_heatmap.py`` and ``utils/gaussian_heatmap.py``):

- ``"msra"`` (``MSRAHeatmap(unbiased=False)``): keypoint / (input / heatmap) rounded to an integer centre
  (``int(x + 0.5)``, truncating toward zero as numpy's ``astype`` does), a Gaussian drawn on the
  (2 * 3 sigma + 1)^2 patch around it, zero elsewhere;
- ``"dark"`` (``MSRAHeatmap(unbiased=True)``, DarkPose): the Gaussian at the exact centre, over the whole map;
- ``"udp"`` (``UDPHeatmap(heatmap_type="gaussian")``): scale (input - 1) / (heatmap - 1), the patch of
  ``"msra"`` around the rounded centre, with the Gaussian at the exact centre.

Keypoints are in input (output-crop) pixels with pixel centres at integers, as gpuaug's output landmarks and
mmpose's keypoints both are. A keypoint with weight < 0.5 is not drawn (its weight is kept); one whose 3-sigma
patch misses the map gets weight 0, as in mmpose. A non-finite keypoint (an invalid sample) gets weight 0 and
an all-zero map, never NaN.

The maps are separable: exp(-(dx^2 + dy^2) / 2s^2) = exp(-dx^2 / 2s^2) * exp(-dy^2 / 2s^2), so a map is the
outer product of one row and one column (each masked to the patch): one multiply per pixel, no per-keypoint
loop, the same code on every device.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from gpuaug.device_constants import constant
from gpuaug.targets.modulate import blur_like_opencv
from gpuaug.targets.write import outer_maps, patch_rows

Encoding = Literal["msra", "dark", "udp"]
ENCODINGS: tuple[str, ...] = ("msra", "dark", "udp")
#: Keypoints are clamped to this many heatmap pixels before rounding, so a wild value cannot overflow int64.
_FAR = 1e6


def check_heatmap_args(input_size: tuple[int, int], heatmap_size: tuple[int, int], sigma: float,
                       encoding: str) -> None:
    """ValueError naming the argument unless the sizes are positive (w, h) pairs, sigma > 0, a known encoding."""
    for name, size in (("input_size", input_size), ("heatmap_size", heatmap_size)):
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in size) or min(size) < 1:
            raise ValueError(f"{name} must be (w, h) positive integers, got {size}")
    if encoding == "udp" and min(heatmap_size) < 2:
        raise ValueError(f"heatmap_size must be at least 2 x 2 for the 'udp' encoding, got {heatmap_size}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number (heatmap pixels), got {sigma}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")


def heatmap_scale(input_size: tuple[int, int], heatmap_size: tuple[int, int], encoding: str) -> tuple[float, float]:
    """(sx, sy) input pixels per heatmap pixel, rounded to float32 as mmpose stores them: input / heatmap, or
    (input - 1) / (heatmap - 1) for ``"udp"`` (whose first and last heatmap pixels sit on the input's)."""
    def f32(x: float) -> float:
        return float(np.float32(x))

    if encoding == "udp":
        return tuple(f32((i - 1) / (h - 1)) for i, h in zip(input_size, heatmap_size, strict=True))
    return tuple(f32(i / h) for i, h in zip(input_size, heatmap_size, strict=True))


def _patch(mu: torch.Tensor, length: int, sigma: float, encoding: str
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """Where one axis of a map is drawn: (B, K) heatmap-pixel centres -> the patch's (start, stop, peak) (B, K),
    its length, and (B, K) "the 3-sigma patch misses the map on this axis" (mmpose's ``left >= W or right < 0``);
    the row is exp(-(i - start - peak)^2 / 2 sigma^2) for start <= i < min(stop, start + length)."""
    radius = 3 * sigma
    if encoding == "dark":  # exact centre, whole map; the patch is used for the miss test only
        zero = torch.zeros_like(mu)
        return zero, zero + length, mu, length, (mu - radius >= length) | (mu + radius + 1 < 0)
    # Integer centre int(mu + 0.5) and patch [left, right), truncated toward zero like numpy's astype; the
    # patch's own length is np.arange(0, 2 * radius + 1)'s.
    centre = torch.trunc(mu + 0.5)
    left, right = torch.trunc(centre - radius), torch.trunc(centre + radius + 1)
    middle = float((2 * radius + 1) // 2)
    # "msra": the patch's middle sits on the integer centre; "udp": moved by the rounding to the exact centre.
    peak = torch.full_like(mu, middle) if encoding == "msra" else middle + (mu - centre)
    return left, right, peak, math.ceil(2 * radius + 1), (left >= length) | (right < 0)


def encode_heatmaps(
    points: torch.Tensor,
    weights: torch.Tensor,
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    sigma: float = 2.0,
    encoding: Encoding = "msra",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, 2) keypoints in input pixels, (B, K) weights -> heatmaps (B, K, h, w) of ``dtype`` and weights
    (B, K) float32, as mmpose's codec ``encoding`` builds them (module :mod:`gpuaug.targets.heatmap`).

    Runs on the points' device with no host sync; float32 maths whatever the caller's autocast.

    Args:
        points: (B, K, 2) keypoints, input pixels.
        weights: (B, K) keypoint weights (0: no map).
        input_size: (w, h) of the input image, as in mmpose.
        heatmap_size: (w, h) of the heatmaps.
        sigma: Gaussian sigma, heatmap pixels.
        encoding: "msra", "dark" or "udp".
        dtype: the maps' dtype.
    """
    check_heatmap_args(input_size, heatmap_size, sigma, encoding)
    with torch.autocast(points.device.type, enabled=False):
        points, weights = points.float(), weights.float()
        finite = torch.isfinite(points).all(-1)
        scale = heatmap_scale(input_size, heatmap_size, encoding)
        mu = torch.where(finite[..., None], points, 0.0) / constant(scale, points.device)
        mu = mu.clamp(-_FAR, _FAR)
        (w, h) = heatmap_size
        *x_patch, miss_x = _patch(mu[..., 0], w, sigma, encoding)
        *y_patch, miss_y = _patch(mu[..., 1], h, sigma, encoding)
        labelled = (weights >= 0.5) & finite
        drawn = labelled & ~(miss_x | miss_y)
        out_weights = torch.where(finite & ~(labelled & (miss_x | miss_y)), weights, 0.0)
        gx = patch_rows(w, *x_patch, sigma, torch.ones_like(weights), pooled=False)
        gy = patch_rows(h, *y_patch, sigma, drawn.float(), pooled=False)  # a map not drawn is all zero
        maps = outer_maps(gy, gx, dtype)
    return maps, out_weights


def heatmap_maximum(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, h, w) -> argmax locations (B, K, 2) [x, y] heatmap pixels (float32; -1 where the maximum is
    <= 0, as mmpose's ``get_heatmap_maximum``) and maxima (B, K). Ties go to the first pixel in row order."""
    flat = heatmaps.float().flatten(-2)
    values, index = flat.max(-1)
    w = heatmaps.shape[-1]
    locs = torch.stack([index % w, index // w], -1).float()
    return torch.where((values > 0)[..., None], locs, -1.0), values


def _at(maps: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """maps (B, K, h, w), integer x, y (B, K) (any values: clamped into the map) -> (B, K) maps[b, k, y, x]."""
    h, w = maps.shape[-2:]
    index = (y.clamp(0, h - 1) * w + x.clamp(0, w - 1)).long()
    return maps.flatten(-2).gather(-1, index[..., None])[..., 0]


def _refine_quarter(heatmaps: torch.Tensor, locs: torch.Tensor) -> torch.Tensor:
    """mmpose's ``refine_keypoints``: a quarter pixel from the maximum toward the higher neighbour per axis
    (its bounds kept: x moves when 1 < x < w - 1 and 0 < y < h; y when 1 < y < h - 1 and 0 < x < w)."""
    h, w = heatmaps.shape[-2:]
    x, y = locs.unbind(-1)
    dx = _at(heatmaps, x + 1, y) - _at(heatmaps, x - 1, y)
    dy = _at(heatmaps, x, y + 1) - _at(heatmaps, x, y - 1)
    dx = torch.where((x > 1) & (x < w - 1) & (y > 0) & (y < h), dx, 0.0)
    dy = torch.where((y > 1) & (y < h - 1) & (x > 0) & (x < w), dy, 0.0)
    return locs + 0.25 * torch.stack([dx.sign(), dy.sign()], -1)


def _solve_newton(dx, dy, dxx, dxy, dyy, eps: float) -> torch.Tensor:
    """-(H + eps I)^-1 [dx, dy] for the 2 x 2 Hessian H = [[dxx, dxy], [dxy, dyy]], elementwise in float64
    (no setting reaches it); (..., 2). A singular matrix gives a zero step."""
    dx, dy, dxx, dxy, dyy = (t.double() for t in (dx, dy, dxx, dxy, dyy))
    a, d = dxx + eps, dyy + eps
    det = a * d - dxy * dxy
    safe = torch.where(det != 0, det, 1.0)
    step = torch.stack([(d * dx - dxy * dy) / safe, (a * dy - dxy * dx) / safe], -1)
    return -torch.where((det != 0)[..., None], step, 0.0)


def _refine_dark(heatmaps: torch.Tensor, locs: torch.Tensor, blur_kernel_size: int) -> torch.Tensor:
    """mmpose's ``refine_keypoints_dark``: blur (OpenCV's kernel, the map's maximum kept), log of max(., 1e-10),
    one Newton step on the log map from the integer maximum, where 1 < x < w - 2 and 1 < y < h - 2."""
    h, w = heatmaps.shape[-2:]
    logs = blur_like_opencv(heatmaps.float(), blur_kernel_size).clamp_min(1e-10).log()
    x, y = locs.unbind(-1)

    def at(ox: int, oy: int) -> torch.Tensor:
        return _at(logs, x + ox, y + oy)

    centre = at(0, 0)
    dx, dy = 0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))
    dxx = 0.25 * (at(2, 0) - 2 * centre + at(-2, 0))
    dyy = 0.25 * (at(0, 2) - 2 * centre + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    step = _solve_newton(dx, dy, dxx, dxy, dyy, eps=0.0)
    inside = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2)
    return torch.where(inside[..., None], locs + step.float(), locs)


def _refine_dark_udp(heatmaps: torch.Tensor, locs: torch.Tensor, blur_kernel_size: int) -> torch.Tensor:
    """mmpose's ``refine_keypoints_dark_udp``: blur, clip to [1e-3, 50], log, edge-padded one pixel, one Newton
    step (Hessian + float32 eps) from the integer maximum, everywhere. Maps whose maximum is <= 0 keep -1 (mmpose
    reads the neighbouring map's memory there)."""
    logs = blur_like_opencv(heatmaps.float(), blur_kernel_size).clamp(1e-3, 50.0).log()
    logs = torch.nn.functional.pad(logs, (1, 1, 1, 1), mode="replicate")
    x, y = (locs + 1).unbind(-1)  # in the padded map

    def at(ox: int, oy: int) -> torch.Tensor:
        return _at(logs, x + ox, y + oy)

    i, ix1, iy1, ix1y1, ix1_y1_ = at(0, 0), at(1, 0), at(0, 1), at(1, 1), at(-1, -1)
    ix1_, iy1_ = at(-1, 0), at(0, -1)
    dx, dy = 0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)
    dxx, dyy = ix1 - 2 * i + ix1_, iy1 - 2 * i + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i + i - ix1_ - iy1_ + ix1_y1_)
    step = _solve_newton(dx, dy, dxx, dxy, dyy, eps=float(torch.finfo(torch.float32).eps))
    return torch.where((locs >= 0).all(-1, keepdim=True), locs + step.float(), locs)


def decode_heatmaps(
    heatmaps: torch.Tensor,
    input_size: tuple[int, int],
    encoding: Encoding = "msra",
    blur_kernel_size: int = 11,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, h, w) heatmaps (e.g. a network's output) -> keypoints (B, K, 2) in input pixels and scores (B, K).

    The argmax, refined as mmpose decodes each encoding: ``"msra"`` a quarter pixel toward the higher neighbour,
    ``"dark"`` DarkPose's Newton step on the blurred log map, ``"udp"`` UDP's variant of it; then scaled by the
    encoder's own :func:`heatmap_scale`. ``blur_kernel_size`` (odd) is the modulation blur of the last two (11
    for sigma 2, 17 for sigma 3). One difference from mmpose, on purpose: mmpose's ``UDPHeatmap.decode`` scales
    by input / (heatmap - 1), not the (input - 1) / (heatmap - 1) its encoder divides by, which moves a
    keypoint by up to one input pixel (x / (w - 1) of one); here decoding inverts encoding.
    A map whose maximum is <= 0 decodes to -1 (scaled) with score <= 0, as in mmpose.

    Args:
        heatmaps: (B, K, h, w).
        input_size: (w, h) of the input image the maps were made for.
        encoding: "msra", "dark" or "udp", as encoded.
        blur_kernel_size: odd size of the modulation blur ("dark" and "udp").
    """
    if blur_kernel_size < 1 or blur_kernel_size % 2 == 0:
        raise ValueError(f"blur_kernel_size must be a positive odd integer, got {blur_kernel_size}")
    h, w = heatmaps.shape[-2:]
    check_heatmap_args(input_size, (w, h), 1.0, encoding)
    with torch.autocast(heatmaps.device.type, enabled=False):
        locs, scores = heatmap_maximum(heatmaps)
        if encoding == "msra":
            locs = _refine_quarter(heatmaps.float(), locs)
        elif encoding == "dark":
            locs = _refine_dark(heatmaps, locs, blur_kernel_size)
        else:
            locs = _refine_dark_udp(heatmaps, locs, blur_kernel_size)
        return locs * constant(heatmap_scale(input_size, (w, h), encoding), locs.device), scores
