"""The camera chain: every camera op the config turns on, over the rendered tile, in camera order.

:func:`apply_camera` is the chain in plain torch: traced whole into a caller's ``torch.compile(aug.apply,
fullgraph=True)``. :func:`camera_stage`, what the step calls, runs it eagerly, or, with the environment variable
``GPUAUG_COMPILE_CAMERA=1``, compiled on its own by ``torch.compile`` (one kernel set per config and device; the
render keeps its own fast path): measured 2.3x faster for the webcam preset at B=256 on 2 CPU cores, after a
first call that compiles for 35-70 s. A compiler failure falls back to eager with a warning.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace

import torch

from gpuaug.backends.staged_gather import _fresh_function
from gpuaug.backends.torch_backend import _is_compiler_failure
from gpuaug.camera.blur import gaussian_blur, gaussian_radius, motion_blur, motion_radius
from gpuaug.camera.exposure import apply_gamma
from gpuaug.camera.jpeg import jpeg
from gpuaug.camera.noise import sensor_noise
from gpuaug.camera.occluders import draw_occluders
from gpuaug.camera.resolution import low_resolution
from gpuaug.config import AugmentConfig
from gpuaug.params import AugmentParams

_log = logging.getLogger(__name__)
_kernels: dict[tuple[str, str], Callable | None] = {}  # (config, device type) -> compiled chain, None after failure
_lock = threading.Lock()


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


def _compiled(config: AugmentConfig, device_type: str) -> Callable | None:
    key = (repr(config), device_type)  # repr: a config may hold a list (flip_table), which does not hash
    with _lock:
        if key not in _kernels:
            # A code object of its own per config: Dynamo's recompile limit then counts per config.
            _kernels[key] = torch.compile(_fresh_function(apply_camera), dynamic=False)
        return _kernels[key]


def camera_stage(images: torch.Tensor, params: AugmentParams, config: AugmentConfig) -> torch.Tensor:
    """:func:`apply_camera` for the step: eager, or compiled per config with ``GPUAUG_COMPILE_CAMERA=1`` (not
    while a caller's compile traces the step, nor during CUDA graph capture of a first call)."""
    if os.environ.get("GPUAUG_COMPILE_CAMERA", "0") != "1" or torch.compiler.is_compiling():
        return apply_camera(images, params, config)
    fast = _compiled(config, images.device.type)
    if fast is None:
        return apply_camera(images, params, config)
    try:
        return fast(images, params, config)
    except Exception as exc:
        if not _is_compiler_failure(exc) or (images.is_cuda and torch.cuda.is_current_stream_capturing()):
            raise
        _log.warning("the camera ops failed to compile (%s: %s); running them eagerly", type(exc).__name__, exc)
        with _lock:
            _kernels[repr(config), images.device.type] = None
        return apply_camera(images, params, config)
