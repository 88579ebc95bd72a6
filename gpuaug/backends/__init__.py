"""Pixel backends: each one only warps and colours pixels; all label maths is shared.

A backend is a callable ``render(batch, matrix, params, config) -> (B, C, S, S)``: batch a
:class:`~gpuaug.FaceBatch` (only its pixel buffer, offsets, strides and sizes are read), matrix (B, 3, 3)
source -> output pixels, params the batch's :class:`~gpuaug.params.AugmentParams` (for its colour fields),
config the :class:`~gpuaug.AugmentConfig` (output size, channels and format). Output is on the batch's
device in the configured dtype and memory format, in [0, 1] before any normalisation; pixels that map
outside a frame's true size are 0 (fill).

A backend may also name the camera ops its render can apply itself, ``fused_ops(config, device) -> tuple[str,
...]`` (a leading run of the chain, :func:`~gpuaug.camera.ops.fusible_ops`): called with ``scene=`` those names
it applies them after the colour, before the output format, and the camera chain skips them.
"""

from __future__ import annotations

from typing import Protocol

import torch

from gpuaug.batch import FaceBatch
from gpuaug.config import AugmentConfig
from gpuaug.params import AugmentParams


class Backend(Protocol):
    def __call__(
        self, batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams, config: AugmentConfig
    ) -> torch.Tensor: ...


def get_backend(name: str, warp: str = "auto") -> Backend:
    """Backend by name: ``"torch"`` (:mod:`gpuaug.backends.torch_backend`: Triton on CUDA, the compiled gather
    on the CPU; ``warp`` picks another of its warps) or ``"dali"``."""
    if name == "torch":
        from gpuaug.backends.torch_backend import TorchBackend

        return TorchBackend(warp)  # type: ignore[arg-type]  # render() checks the name
    if warp != "auto":
        raise ValueError(f"warp={warp!r} is a choice of the torch backend, not of {name!r}")
    if name == "dali":
        from gpuaug.backends.dali_backend import DaliBackend

        return DaliBackend()
    hint = " (kornia is the torch backend's reference warp: render(..., warp='kornia'))" if name == "kornia" else ""
    raise ValueError(f"unknown backend {name!r}; choose 'torch' or 'dali'{hint}")
