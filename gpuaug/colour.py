"""Colour jitter + greyscale as one per-sample affine colour map (backend-neutral maths).

Each op is linear in RGB, so the chain brightness -> contrast -> saturation -> hue -> grey collapses to
``out = clamp(A @ rgb + b, 0, 1)`` with A (B, C, 3) and b (B, C). Definitions (RGB in [0, 1]):

- brightness f: ``f * x`` (torchvision's multiplicative brightness);
- contrast f: ``f * x + (1 - f) * m``, m the mean grey level of the image at that point (torchvision);
- saturation f: ``f * x + (1 - f) * grey(x)``;
- hue h (turns): rotation of the chroma plane of YIQ by ``2 * pi * h``. This is an exact linear map
  (the one DALI uses); torchvision's HSV hue shift is a piecewise-linear cousin of it. Positive h turns
  red toward yellow, as HSV does.
- grey: ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B``.

Unlike torchvision, values are clamped once at the end, not after every op: that is what makes the chain
one matrix. The contrast mean ``m`` is taken on the warped output (after the crop), which is what the
network sees.
"""

from __future__ import annotations

import math

import torch

from gpuaug.params import AugmentParams

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=torch.float64,
)


def hue_matrix(hue: torch.Tensor) -> torch.Tensor:
    """(B,) turns -> (B, 3, 3) RGB map rotating the YIQ chroma plane; keeps luma and greys."""
    theta = 2 * math.pi * hue.double()
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.zeros(hue.shape[0], 3, 3, dtype=torch.float64, device=hue.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, s, -s, c
    yiq = _RGB_TO_YIQ.to(hue.device)
    # bmm, not ``rot @ yiq``: that folds into one (3B, 3) @ (3, 3) float64 gemm, which MKL takes ~10 ms
    # over on AMD CPUs (about 10% of a whole CPU batch).
    return (torch.linalg.inv(yiq) @ torch.bmm(rot, yiq.expand_as(rot))).to(hue.dtype)


def saturation_matrix(factor: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 3, 3): ``f * I + (1 - f) * 1 w^T`` (blend with grey)."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=factor.dtype, device=factor.device)
    eye = torch.eye(3, dtype=factor.dtype, device=factor.device)
    f = factor[:, None, None]
    return f * eye + (1 - f) * w.expand(3, 3)


def colour_affine(
    params: AugmentParams, mean_gray: torch.Tensor, channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample colour map for images whose mean grey level (before colour) is ``mean_gray`` (B,).

    Returns A (B, channels, 3) and b (B, channels): ``out = clamp(A @ rgb + b, 0, 1)``. ``channels`` is
    1 (all grey) or 3 (grey samples repeat the grey row).
    """
    w = torch.tensor(GRAY_WEIGHTS, dtype=mean_gray.dtype, device=mean_gray.device)
    gain = (params.brightness * params.contrast)[:, None, None]
    a = hue_matrix(params.hue) @ saturation_matrix(params.saturation) * gain
    # Hue and saturation keep greys grey, so the contrast pivot passes through them unchanged.
    b = ((1 - params.contrast) * params.brightness * mean_gray)[:, None].expand(-1, channels)
    gray_row = (w @ a)[:, None, :]
    if channels == 1:
        return gray_row, b.contiguous()
    a = torch.where(params.gray[:, None, None], gray_row.expand(-1, 3, -1), a)
    return a, b.contiguous()
