"""Pixel backends: each one only warps and colours pixels; all label maths is shared.

A backend is a callable ``render(images, sizes, matrix, params, out_size, channels) -> (B, C, S, S)``:
images (B, Hmax, Wmax, 3) uint8 zero-padded, sizes (B, 2) true (H, W), matrix (B, 3, 3) source -> output
pixels, params the batch's :class:`~gpuaug.params.AugmentParams` (for its colour fields). Output is
float32 in [0, 1] on the images' device; pixels that map outside a frame's true size are 0.
"""

from __future__ import annotations

from typing import Protocol

import torch

from gpuaug.params import AugmentParams


class Backend(Protocol):
    def __call__(
        self,
        images: torch.Tensor,
        sizes: torch.Tensor,
        matrix: torch.Tensor,
        params: AugmentParams,
        out_size: int,
        channels: int,
    ) -> torch.Tensor: ...


def get_backend(name: str) -> Backend:
    """Backend by name: ``"kornia"`` (torch) or ``"dali"``."""
    if name == "kornia":
        from gpuaug.backends.kornia_backend import render

        return render
    if name == "dali":
        from gpuaug.backends.dali_backend import DaliBackend

        return DaliBackend()
    raise ValueError(f"unknown backend {name!r}; choose 'kornia' or 'dali'")
