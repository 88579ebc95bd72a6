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

import numpy as np
import torch

from gpuaug.device_constants import constant
from gpuaug.linalg import matmul
from gpuaug.params import AugmentParams

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def _hue_basis() -> tuple[tuple[tuple[float, ...], ...], ...]:
    """(P0, Pc, Ps): the hue map is ``P0 + cos(theta) Pc + sin(theta) Ps`` (YIQ^-1 diag(1, R(theta)) YIQ)."""
    inv = np.linalg.inv(_RGB_TO_YIQ)
    luma, cos, sin = np.diag([1.0, 0, 0]), np.diag([0, 1.0, 1.0]), np.array([[0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    return tuple(tuple(map(tuple, inv @ m @ _RGB_TO_YIQ)) for m in (luma, cos, sin))


_HUE_BASIS = _hue_basis()


def hue_matrix(hue: torch.Tensor) -> torch.Tensor:
    """(B,) turns -> (B, 3, 3) RGB map rotating the YIQ chroma plane; keeps luma and greys."""
    theta = 2 * math.pi * hue.double()
    p0, pc, ps = (constant(m, hue.device, torch.float64) for m in _HUE_BASIS)
    return (p0 + torch.cos(theta)[:, None, None] * pc + torch.sin(theta)[:, None, None] * ps).to(hue.dtype)


def saturation_matrix(factor: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 3, 3): ``f * I + (1 - f) * 1 w^T`` (blend with grey)."""
    grey = constant((GRAY_WEIGHTS,) * 3, factor.device, factor.dtype)
    eye = constant(tuple(tuple(float(i == j) for j in range(3)) for i in range(3)), factor.device, factor.dtype)
    f = factor[:, None, None]
    return f * eye + (1 - f) * grey


def colour_affine(
    params: AugmentParams, mean_gray: torch.Tensor, channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample colour map for images whose mean grey level (before colour) is ``mean_gray`` (B,).

    Returns A (B, channels, 3) and b (B, channels): ``out = clamp(A @ rgb + b, 0, 1)``. ``channels`` is
    1 (all grey) or 3 (grey samples repeat the grey row).
    """
    w = constant(GRAY_WEIGHTS, mean_gray.device, mean_gray.dtype)
    gain = (params.brightness * params.contrast)[:, None, None]
    a = matmul(hue_matrix(params.hue), saturation_matrix(params.saturation)) * gain
    # Hue and saturation keep greys grey, so the contrast pivot passes through them unchanged.
    b = ((1 - params.contrast) * params.brightness * mean_gray)[:, None].expand(-1, channels)
    gray_row = matmul(w[None, None], a)
    if channels == 1:
        return gray_row, b.contiguous()
    a = torch.where(params.gray[:, None, None], gray_row.expand(-1, 3, -1), a)
    return a, b.contiguous()
