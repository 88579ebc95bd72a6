"""SimCC coordinate-classification targets as mmpose's ``SimCCLabel`` (gaussian smoothing) builds them, batched,
and their decoder (``mmpose/codecs/simcc_label.py``, ``utils/post_processing.py: get_simcc_maximum``).

A keypoint at input pixel x (pixel centres at integers, as gpuaug's output landmarks) becomes the bin
mu = round(x * split_ratio) (half to even, as ``np.around``) of a 1-D label over round(w * split_ratio) bins:
exp(-(i - mu)^2 / 2 sigma^2) at every bin i, divided by sigma sqrt(2 pi) when ``normalize``; the same along y.
Weights as mmpose's: a keypoint with weight < 0.5 is not drawn (weight kept); one whose 3-sigma window
[mu - 3 sigma, mu + 3 sigma + 1) misses the label gets weight 0. A non-finite keypoint gets weight 0 and zero
labels, never NaN.
"""

from __future__ import annotations

import math

import torch

from gpuaug.targets.write import patch_rows

#: Bins are clamped to this range before the maths, so a wild keypoint cannot overflow.
_FAR = 1e6


def simcc_lengths(input_size: tuple[int, int], split_ratio: float) -> tuple[int, int]:
    """(Wx, Wy) label lengths: round(w * split_ratio), round(h * split_ratio) (half to even, as mmpose)."""
    return tuple(round(s * split_ratio) for s in input_size)  # Python's round is half to even, as np.around


def check_simcc_args(input_size: tuple[int, int], split_ratio: float, sigma: tuple[float, float]) -> None:
    """ValueError naming the argument unless sizes are positive (w, h), split_ratio > 0 and both sigmas > 0."""
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f"input_size must be (w, h) positive integers, got {input_size}")
    if not (math.isfinite(split_ratio) and split_ratio > 0) or min(simcc_lengths(input_size, split_ratio)) < 1:
        raise ValueError(f"split_ratio must be > 0 and leave at least one bin per axis, got {split_ratio}")
    if len(sigma) != 2 or not all(math.isfinite(s) and s > 0 for s in sigma):
        raise ValueError(f"sigma must be a positive number or (sx, sy) of them (bins), got {sigma}")


def encode_simcc(
    points: torch.Tensor,
    weights: torch.Tensor,
    input_size: tuple[int, int],
    split_ratio: float = 2.0,
    sigma: float | tuple[float, float] = 6.0,
    normalize: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, K, 2) keypoints in input pixels, (B, K) weights -> x labels (B, K, Wx), y labels (B, K, Wy) of
    ``dtype`` and weights (B, K) float32, as mmpose's ``SimCCLabel(smoothing_type="gaussian")``.

    Float32 maths whatever the caller's autocast; no host sync.

    Args:
        points: (B, K, 2) keypoints, input pixels.
        weights: (B, K) keypoint weights.
        input_size: (w, h) of the input image, pixels.
        split_ratio: bins per pixel.
        sigma: Gaussian sigma in bins, one value or (sx, sy).
        normalize: divide by sigma sqrt(2 pi), as mmpose's ``normalize=True``.
        dtype: the labels' dtype.
    """
    sigmas = (float(sigma), float(sigma)) if isinstance(sigma, (int, float)) else tuple(map(float, sigma))
    check_simcc_args(input_size, split_ratio, sigmas)
    with torch.autocast(points.device.type, enabled=False):
        points, weights = points.float(), weights.float()
        finite = torch.isfinite(points).all(-1)
        mu = torch.round(torch.where(finite[..., None], points, 0.0) * split_ratio).clamp(-_FAR, _FAR)
        labelled = (weights >= 0.5) & finite
        lengths = simcc_lengths(input_size, split_ratio)
        miss = torch.zeros_like(finite)
        for axis, (length, s) in enumerate(zip(lengths, sigmas, strict=True)):
            miss = miss | (mu[..., axis] - 3 * s >= length) | (mu[..., axis] + 3 * s + 1 < 0)
        drawn = labelled & ~miss
        out_weights = torch.where(finite & ~(labelled & miss), weights, 0.0)
        # A label is factor * exp(...): the normalisation where drawn, 0 elsewhere (one pass over the labels).
        zero = torch.zeros_like(mu[..., 0])
        x, y = (patch_rows(length, zero, zero + length, mu[..., axis], length, s, torch.where(
            drawn, 1 / (s * math.sqrt(2 * math.pi)) if normalize else 1.0, 0.0), dtype)
            for axis, (length, s) in enumerate(zip(lengths, sigmas, strict=True)))
    return x, y, out_weights


def decode_simcc(simcc_x: torch.Tensor, simcc_y: torch.Tensor, split_ratio: float = 2.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, Wx), (B, K, Wy) non-negative scores (labels, or a network's softmax) -> keypoints (B, K, 2) in input
    pixels and scores (B, K): the argmax bin of each axis / ``split_ratio``; score the smaller of the two maxima;
    -1 (before the division, as mmpose) where that score is <= 0, so decode logits through a softmax first.
    Ties go to the first bin.

    Args:
        simcc_x: (B, K, Wx) scores.
        simcc_y: (B, K, Wy) scores.
        split_ratio: bins per pixel, as encoded.
    """
    if not (math.isfinite(split_ratio) and split_ratio > 0):
        raise ValueError(f"split_ratio must be > 0, got {split_ratio}")
    with torch.autocast(simcc_x.device.type, enabled=False):
        vx, ix = simcc_x.float().max(-1)
        vy, iy = simcc_y.float().max(-1)
        scores = torch.minimum(vx, vy)
        locs = torch.where((scores > 0)[..., None], torch.stack([ix, iy], -1).float(), -1.0)
        return locs / split_ratio, scores
