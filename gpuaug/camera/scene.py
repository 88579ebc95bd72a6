"""The scene ops (gamma, occluders) as inputs of a render kernel that applies them itself, in plain torch and
shared by every such kernel (:mod:`gpuaug.backends.triton_render`).

A render that applies them (``fused_ops`` of :class:`~gpuaug.backends.torch_backend.TorchBackend`) computes per
output pixel what :func:`~gpuaug.camera.exposure.apply_gamma` and :func:`~gpuaug.camera.occluders.draw_occluders`
compute over the rendered tile, between its colour clamp and the output format; the camera chain then skips
them (:func:`~gpuaug.camera.chain.camera_stage`). Everything per sample or per slot is prepared here once, so
the kernel only repeats the per-pixel float32 operations.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import torch

from gpuaug.camera.counter_noise import stream_base
from gpuaug.camera.occluders import FILL_STREAM, occluder_table
from gpuaug.config import AugmentConfig
from gpuaug.params import AugmentParams


@dataclass(frozen=True)
class SceneInputs:
    """What a render kernel reads to apply the scene ops; None where an op is not applied.

    ``gamma``: (B,) float32 exponents (1 leaves a sample bit for bit). ``occluders``: (B, M, 12) float32
    :func:`~gpuaug.camera.occluders.occluder_table`, fill colours as drawn for the output's channels.
    ``noise``: (B, 2) int64 for the "noise" fill: the sample's hashed seed
    (:func:`~gpuaug.camera.counter_noise.stream_base` of stream
    :data:`~gpuaug.camera.occluders.FILL_STREAM`, int32 bits widened: the kernel takes the low 32) and the
    channel stride of its pixel counter (0 for a grey sample or grey output: one field for all channels,
    else S * S), so counter = channel * stride + y * S + x as in
    :func:`~gpuaug.camera.counter_noise.pixel_index`; None when no slot can be noise-filled.
    """

    gamma: torch.Tensor | None = None
    occluders: torch.Tensor | None = None
    noise: torch.Tensor | None = None


def scene_inputs(params: AugmentParams, config: AugmentConfig, ops: Collection[str]) -> SceneInputs:
    """The kernel inputs of ``ops`` (names from :func:`~gpuaug.camera.ops.fusible_ops`) for ``params`` under
    ``config`` (its channels and output size)."""
    gamma = params.gamma.float().contiguous() if "gamma" in ops else None
    if "occluders" not in ops or params.occluders.shape[1] == 0:
        return SceneInputs(gamma)
    shared = params.gray | (config.channels == 1)
    table = occluder_table(params.occluders.float(), shared).contiguous()
    noise = None
    if "noise" in config.occluder_fill:
        stride = torch.where(shared, 0, config.out_size * config.out_size)
        noise = torch.stack([stream_base(params.noise_seed, FILL_STREAM).long(), stride], 1).contiguous()
    return SceneInputs(gamma, table, noise)
