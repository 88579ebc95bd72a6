"""Gamma (exposure), the last step of the colour stage."""

from __future__ import annotations

import torch


def apply_gamma(images: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) float [0, 1] -> ``images ** gamma`` per sample, ``gamma`` (B,) > 0; samples with gamma 1
    are returned bit for bit (``pow`` need not be exact at 1)."""
    g = gamma[:, None, None, None]
    return torch.where(g == 1, images, images.clamp(min=0) ** g)
