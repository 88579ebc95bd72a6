"""The camera ops as one table, and the chain over the whole batch in plain torch.

:data:`CAMERA_OPS` lists the ops once, in camera order: which config turns each on, which samples draw it, which
params it reads. :func:`apply_camera` runs them over every sample (a sample that skips an op gets the op's
identity): static shapes, no host sync, traced whole into a caller's ``torch.compile(aug.apply,
fullgraph=True)``. :mod:`gpuaug.camera.staged` runs the same table on the CPU, each op on the rows that draw it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import torch

from gpuaug.camera.blur import (
    correlate_taps,
    gaussian_blur,
    gaussian_kernels,
    gaussian_radius,
    motion_blur,
    motion_kernels,
    motion_radius,
    separable_taps,
)
from gpuaug.camera.exposure import apply_gamma
from gpuaug.camera.jpeg import jpeg
from gpuaug.camera.noise import sensor_noise
from gpuaug.camera.occluders import draw_occluders
from gpuaug.camera.resolution import least_small_size, low_resolution
from gpuaug.camera.sample import OCC
from gpuaug.config import AugmentConfig
from gpuaug.params import AugmentParams


@dataclass(frozen=True)
class CameraOp:
    """One op of the chain.

    ``enabled(config)``: the config turns it on. ``drawn(params)``: (B,) bool, the samples it changes (the
    others hold its identity values). ``fields``: the ``AugmentParams`` fields it reads, (B, ...) each.
    ``static(config)``: the config values it reads (hashable; all the rest of the config leaves it alone).
    ``run(images, *fields, static, batch)``: (b, C, S, S) float32 [0, 1] rows -> those rows after the op, with
    ``fields`` of the same rows; ``batch`` the whole batch before the op (an occluder's "texture" fill shows
    another sample's pixels; the other ops ignore it).

    A filter also has, for the CPU chain (:mod:`gpuaug.camera.blur`): ``border(static)``, the (ry, rx)
    reflected border it reads; ``kernels(*fields, static)``, its per-sample kernels; ``padded_run(padded,
    *kernels)``, the rows of drawn samples from their images reflected by that border.
    """

    name: str
    enabled: Callable[[AugmentConfig], bool]
    drawn: Callable[[AugmentParams], torch.Tensor]
    fields: tuple[str, ...]
    static: Callable[[AugmentConfig], tuple]
    run: Callable[..., torch.Tensor]
    border: Callable[[tuple], tuple[int, int]] | None = None
    kernels: Callable[..., torch.Tensor] | None = None
    padded_run: Callable[..., torch.Tensor] | None = None


def _none(config: AugmentConfig) -> tuple:
    return ()


#: The ops in camera order: scene (gamma, occluders), optics (Gaussian blur, motion blur), sensor (low
#: resolution, noise), encoder (JPEG).
CAMERA_OPS = (
    CameraOp("gamma", lambda c: c.gamma_p > 0, lambda p: p.gamma != 1, ("gamma",), _none,
             lambda x, gamma, st, batch: apply_gamma(x, gamma)),
    CameraOp("occluders", lambda c: c.occluder_p > 0, lambda p: (p.occluders[..., OCC["active"]] > 0.5).any(1),
             ("occluders", "gray", "noise_seed"), lambda c: (tuple(c.occluder_fill),),
             lambda x, occ, gray, seed, st, batch: draw_occluders(x, occ, gray, seed, st[0], batch)),
    CameraOp("blur", lambda c: c.blur_p > 0, lambda p: p.blur_sigma > 0, ("blur_sigma",),
             lambda c: (gaussian_radius(c.blur_sigma[1]),),
             lambda x, sigma, st, batch: gaussian_blur(x, sigma, st[0]),
             lambda st: (st[0], st[0]), lambda sigma, st: gaussian_kernels(sigma, st[0]), separable_taps),
    CameraOp("motion_blur", lambda c: c.motion_blur_p > 0, lambda p: p.motion_length > 0,
             ("motion_length", "motion_angle"), lambda c: (motion_radius(c.motion_blur_length[1]),),
             lambda x, length, angle, st, batch: motion_blur(x, length, angle, st[0]),
             lambda st: (st[0], st[0]), lambda length, angle, st: motion_kernels(length, angle, st[0]),
             correlate_taps),
    CameraOp("low_res", lambda c: c.low_res_p > 0, lambda p: p.low_res < 1, ("low_res",),
             lambda c: (least_small_size(c.low_res[0], c.out_size),),
             lambda x, low_res, st, batch: low_resolution(x, low_res, st[0])),
    CameraOp("noise", lambda c: c.noise_p > 0 or c.shot_noise_p > 0, lambda p: (p.noise_std > 0) | (p.shot_noise > 0),
             ("noise_std", "shot_noise", "noise_seed", "gray"), _none,
             lambda x, std, shot, seed, gray, st, batch: sensor_noise(x, std, shot, seed, gray)),
    CameraOp("jpeg", lambda c: c.jpeg_p > 0, lambda p: p.jpeg_quality > 0, ("jpeg_quality",), _none,
             lambda x, quality, st, batch: jpeg(x, quality)),
)


#: The scene ops a render kernel may apply after its colour clamp, before the output format (the Triton render:
#: :mod:`gpuaug.backends.triton_render`); the per-pixel ops after them in camera order read neighbours (blur,
#: low resolution) or follow one that does (noise), and JPEG reads 8 x 8 blocks.
SCENE_OPS = ("gamma", "occluders")


def camera_ops(config: AugmentConfig, skip: Collection[str] = ()) -> list[CameraOp]:
    """The ops ``config`` turns on, in camera order, but those named in ``skip`` (a render applied them)."""
    return [op for op in CAMERA_OPS if op.enabled(config) and op.name not in skip]


def fusible_ops(config: AugmentConfig) -> tuple[str, ...]:
    """The leading ops of ``config``'s chain that a render kernel can apply itself: gamma, then occluders unless
    a "texture" fill can show (it reads another sample's pixels). Only a leading run, so the rest of the chain
    still sees its ops in camera order."""
    fused: list[str] = []
    for op in camera_ops(config):
        if op.name not in SCENE_OPS or (op.name == "occluders" and "texture" in config.occluder_fill):
            break
        fused.append(op.name)
    return tuple(fused)


def apply_camera(images: torch.Tensor, params: AugmentParams, config: AugmentConfig,
                 skip: Collection[str] = ()) -> torch.Tensor:
    """(B, C, S, S) float32 [0, 1] rendered tile -> the tile after each op ``config`` turns on but those in
    ``skip``, in the order of :data:`CAMERA_OPS`, over every sample (identity values leave a sample as is).
    Still float32 [0, 1]."""
    for op in camera_ops(config, skip):
        images = op.run(images, *(getattr(params, f) for f in op.fields), op.static(config), images)
    return images
