"""The output format of an augmented image: normalisation, dtype and memory format (``AugmentConfig``).

The torch backend's render kernel applies these itself (:mod:`gpuaug.backends.gather`); :func:`finish`
applies them to a rendered float32 [0, 1] image for the paths that colour separately (the kornia reference,
DALI), so every path gives the same output.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from gpuaug.config import AugmentConfig
from gpuaug.device_constants import constant


def normalisation(config: AugmentConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(scale, shift) (C,) float32 on ``device`` with ``x * scale + shift = (x - mean) / std``, or None."""
    norm = config.normalisation()
    return None if norm is None else (constant(norm[0], device), constant(norm[1], device))


def finish(images: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """(B, C, S, S) float32 in [0, 1] -> the configured output: normalised, cast, memory format."""
    norm = normalisation(config, images.device)
    if norm is not None:
        images = images * norm[0][:, None, None] + norm[1][:, None, None]
    images = images.to(config.dtype)
    return images.contiguous(memory_format=torch.channels_last) if config.channels_last else images


def render_config(config: AugmentConfig) -> AugmentConfig:
    """The config a backend renders with before the camera ops: float32 [0, 1], contiguous, no normalisation
    (:func:`finish` applies the real output format afterwards)."""
    return replace(config, out_dtype="float32", mean=None, std=None, channels_last=False)
