"""The camera stage of the step: the chain of :mod:`gpuaug.camera.ops` after the render, on the path that suits
the device.

Everywhere but the CPU, and inside a caller's ``torch.compile``: :func:`~gpuaug.camera.ops.apply_camera`, every
op over the whole batch (static shapes, no host sync, CUDA graph capture). On CPU tensors:
:func:`~gpuaug.camera.staged.apply_camera_staged`, each op compiled on its own and run on the rows that draw it
(reading a mask costs nothing there), the same pixels to float rounding. Either skips the ops the render
already applied (the Triton render fuses the leading scene ops, :func:`~gpuaug.camera.ops.fusible_ops`).
"""

from __future__ import annotations

import os
from collections.abc import Collection

import torch

from gpuaug.camera.ops import apply_camera
from gpuaug.camera.staged import apply_camera_staged
from gpuaug.config import AugmentConfig
from gpuaug.params import AugmentParams


def camera_stage(images: torch.Tensor, params: AugmentParams, config: AugmentConfig,
                 skip: Collection[str] = ()) -> torch.Tensor:
    """(B, C, S, S) float32 [0, 1] rendered tile -> after the camera ops but those in ``skip`` (the render applied
    them): staged on CPU tensors (unless ``GPUAUG_COMPILE=0``, as for the render), else
    :func:`~gpuaug.camera.ops.apply_camera`. The staged path writes into ``images``: a tile the step rendered
    and owns."""
    if images.device.type != "cpu" or torch.compiler.is_compiling() or os.environ.get("GPUAUG_COMPILE", "1") == "0":
        return apply_camera(images, params, config, skip)
    return apply_camera_staged(images, params, config, skip)
