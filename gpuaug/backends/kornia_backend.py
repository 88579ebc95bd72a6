"""The torch backend: kornia's ``warp_affine`` for the single resample, then the shared colour map."""

from __future__ import annotations

import torch
from kornia.geometry.transform import warp_affine

from gpuaug.colour import GRAY_WEIGHTS, colour_affine
from gpuaug.params import AugmentParams


def apply_colour(images: torch.Tensor, params: AugmentParams, channels: int) -> torch.Tensor:
    """(B, 3, S, S) float [0, 1] -> (B, channels, S, S): the shared per-sample colour map, clamped."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=images.dtype, device=images.device)
    mean_gray = torch.einsum("c,bchw->b", w, images) / images[0, 0].numel()
    a, b = colour_affine(params, mean_gray, channels)
    return (torch.einsum("bkc,bchw->bkhw", a, images) + b[:, :, None, None]).clamp_(0, 1)


def render(
    images: torch.Tensor,
    sizes: torch.Tensor,
    matrix: torch.Tensor,
    params: AugmentParams,
    out_size: int,
    channels: int,
) -> torch.Tensor:
    """Warp (bilinear, zero fill, pixel centres at integers) then colour; see :mod:`gpuaug.backends`."""
    # FaceBatch frames are zero-padded beyond ``sizes``, and zero is the fill, so the padding is never
    # anything but fill to the bilinear taps.
    src = images.permute(0, 3, 1, 2).float().div_(255)
    warped = warp_affine(src, matrix[:, :2].float(), (out_size, out_size), align_corners=True)
    return apply_colour(warped, params, channels)
