"""The camera chain: every camera op the config turns on, over the rendered tile, in camera order.

:func:`apply_camera` is the chain in plain torch: eager in a plain step, traced whole into a caller's
``torch.compile(aug.apply, fullgraph=True)`` (which fuses its per-pixel passes).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from gpuaug.camera.blur import gaussian_blur, gaussian_radius, motion_blur, motion_radius
from gpuaug.camera.exposure import apply_gamma
from gpuaug.camera.jpeg import jpeg
from gpuaug.camera.noise import sensor_noise
from gpuaug.camera.occluders import draw_occluders
from gpuaug.camera.resolution import low_resolution
from gpuaug.config import AugmentConfig
from gpuaug.params import AugmentParams


def render_config(config: AugmentConfig) -> AugmentConfig:
    """The config a backend renders with before the camera ops: float32 [0, 1], contiguous, no normalisation
    (:func:`gpuaug.output.finish` applies the real output format afterwards)."""
    return replace(config, out_dtype="float32", mean=None, std=None, channels_last=False)


def apply_camera(images: torch.Tensor, params: AugmentParams, config: AugmentConfig) -> torch.Tensor:
    """(B, C, S, S) float32 [0, 1] rendered tile -> the tile after each op ``config`` turns on, in order:
    scene (gamma, occluders), optics (Gaussian blur, motion blur), sensor (low resolution, noise), encoder
    (JPEG). Still float32 [0, 1]; per-sample strengths from ``params`` (identity values leave a sample as is)."""
    c, p = config, params
    if c.gamma_p > 0:
        images = apply_gamma(images, p.gamma)
    if c.occluder_p > 0:
        images = draw_occluders(images, p.occluders, p.gray, p.noise_seed, c.occluder_fill)
    if c.blur_p > 0:
        images = gaussian_blur(images, p.blur_sigma, gaussian_radius(c.blur_sigma[1]))
    if c.motion_blur_p > 0:
        images = motion_blur(images, p.motion_length, p.motion_angle, motion_radius(c.motion_blur_length[1]))
    if c.low_res_p > 0:
        images = low_resolution(images, p.low_res)
    if c.noise_p > 0 or c.shot_noise_p > 0:
        images = sensor_noise(images, p.noise_std, p.shot_noise, p.noise_seed, p.gray)
    if c.jpeg_p > 0:
        images = jpeg(images, p.jpeg_quality)
    return images
