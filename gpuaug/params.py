"""``AugmentParams``: every random draw of one batch, sampled once and replayable."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from gpuaug.camera.sample import OCCLUDER_COLUMNS, identity_camera, sample_camera, sources_of_rows
from gpuaug.config import AugmentConfig
from gpuaug.transfer import move


@dataclass
class AugmentParams:
    """Per-sample draws, all (B,) float32 unless noted; camera ops (:mod:`gpuaug.camera`) at their identity
    (in brackets) when off. Keep them to replay a batch exactly (``aug.apply(batch, params)``).

    Args:
        margin: crop margin.
        shift: (B, 2) crop-window shift, a fraction of the side (0 where ``shift_p`` leaves a sample).
        angle: degrees, clockwise on screen (0 where ``rotation_p`` leaves a sample).
        scale: zoom.
        flip: (B,) bool, mirror.
        brightness: factor (1 = no change).
        contrast: factor (1).
        saturation: factor (1).
        hue: shift in turns (0).
        gray: (B,) bool, convert to grey.
        gamma: exposure exponent (1).
        blur_sigma: Gaussian sigma, output pixels (0).
        motion_length: motion blur length, output pixels (0).
        motion_angle: motion blur direction, degrees from +x toward +y.
        low_res: the resolution seen, a fraction of out_size (1).
        noise_std: additive Gaussian std, [0, 1] units (0).
        shot_noise: std at white of the signal-dependent noise (0).
        jpeg_quality: 1..100 (0: no JPEG).
        noise_seed: a whole number below 2^24 feeding the counter-based noise (so replay gives the same noise).
        occluders: (B, slots, 12), one row per occluder slot, columns
            :data:`~gpuaug.camera.sample.OCCLUDER_COLUMNS` (slots = 0 when occlusion is off).
    """

    margin: torch.Tensor
    shift: torch.Tensor
    angle: torch.Tensor
    scale: torch.Tensor
    flip: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor
    hue: torch.Tensor
    gray: torch.Tensor
    gamma: torch.Tensor
    blur_sigma: torch.Tensor
    motion_length: torch.Tensor
    motion_angle: torch.Tensor
    low_res: torch.Tensor
    noise_std: torch.Tensor
    shot_noise: torch.Tensor
    jpeg_quality: torch.Tensor
    noise_seed: torch.Tensor
    occluders: torch.Tensor

    def __len__(self) -> int:
        return int(self.angle.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> AugmentParams:
        """Every field on ``device``. CPU -> CUDA goes as one packed float32 (B, :meth:`pack` width) copy from
        pinned memory, asynchronous when ``non_blocking`` (no host sync, one transfer instead of twenty)."""
        device = torch.device(device)
        if device.type == "cuda" and self.angle.device.type == "cpu":
            return AugmentParams.unpack(self.pack().pin_memory().to(device, non_blocking=non_blocking))
        return replace(self, **{f.name: move(getattr(self, f.name), device, non_blocking) for f in fields(self)})

    def rows(self, start: int, stop: int, length: int = 1) -> AugmentParams:
        """Rows ``start .. stop - 1`` as the params of a batch of their own (the one way to slice params): every
        field's rows, and each occluder's "texture" source, a row number, re-numbered into the slice
        (:func:`~gpuaug.camera.sample.sources_of_rows`; ``length``: frames per clip for clip params, sliced on
        clip boundaries). The whole range gives the same params."""
        if not 0 <= start <= stop <= len(self) or start % length or stop % length:
            raise ValueError(f"rows {start}..{stop} of {len(self)} params do not fall on items of {length} rows")
        sliced = {f.name: getattr(self, f.name)[start:stop] for f in fields(self) if f.name != "occluders"}
        return AugmentParams(**sliced, occluders=sources_of_rows(self.occluders, start, stop, length))

    def pack(self) -> torch.Tensor:
        """(B, 20 + 12 * slots) float32: every field as columns in declaration order (shift takes two, the
        occluders 12 per slot, last; bools as 0/1)."""
        return torch.cat([getattr(self, f.name).float().reshape(len(self), -1) for f in fields(self)], 1)

    @classmethod
    def unpack(cls, packed: torch.Tensor) -> AugmentParams:
        """Inverse of :meth:`pack` (views into ``packed``; bool fields compared back)."""
        cols, out, i = {"shift": 2}, {}, 0
        for f in fields(cls):
            if f.name == "occluders":  # the rest, one row of OCCLUDER_COLUMNS per slot
                out[f.name] = packed[:, i:].unflatten(1, (-1, len(OCCLUDER_COLUMNS)))
                break
            n = cols.get(f.name, 1)
            value = packed[:, i:i + n] if n > 1 else packed[:, i]
            out[f.name] = value > 0.5 if f.name in ("flip", "gray") else value
            i += n
        return cls(**out)

    @classmethod
    def identity(cls, batch_size: int, margin: float = 0.0, occluder_slots: int = 0) -> AugmentParams:
        """No jitter, no rotation/shift/flip, colour unchanged, no grey, every camera op at its identity
        (``occluder_slots`` inactive occluders each)."""
        n = batch_size
        # A tensor per field: a caller may set one field in place (params.angle[:] = 30) without moving another.
        return cls(torch.full((n,), float(margin)), torch.zeros(n, 2), torch.zeros(n), torch.ones(n),
                   torch.zeros(n, dtype=torch.bool), torch.ones(n), torch.ones(n), torch.ones(n), torch.zeros(n),
                   torch.zeros(n, dtype=torch.bool), **identity_camera(n, occluder_slots))


def _uniform(lo: float, hi: float, n: int, g: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def sample_params(
    config: AugmentConfig, batch_size: int, generator: torch.Generator | None = None, train: bool = True
) -> AugmentParams:
    """Draw one batch of params on the CPU from ``generator`` (same seed -> same params on any device).

    Args:
        config: what to draw.
        batch_size: B, the samples to draw for.
        generator: the CPU generator every draw comes from (None: torch's default generator).
        train: training draws, or (False) the deterministic eval framing.

    ``train=False`` gives deterministic framing through the same fields: the crop margin and zoom at the
    middle of their ranges, no shift, rotation, flip, colour jitter or camera op; grey only if
    ``grayscale_p == 1``. The camera ops draw after the rest (:func:`~gpuaug.camera.sample.sample_camera`).

    ``shift_p`` and ``rotation_p`` below 1 gate the shift (both axes by one draw) and the angle: a sample keeps
    its value where its gate draw falls under p, else gets 0. The gate draws come last (shift's, then
    rotation's), and only for a p below 1, so every other field is the draw of the same config at p = 1, and
    p = 1 (the default) draws exactly what sample_params drew before the gates existed.
    """
    n, c = batch_size, config
    if not train:
        p = AugmentParams.identity(n, margin=sum(c.crop_margin) / 2, occluder_slots=c.occluder_slots)
        return replace(p, scale=torch.full((n,), sum(c.scale) / 2), gray=torch.full((n,), c.grayscale_p == 1.0))
    drawn = dict(
        margin=_uniform(*c.crop_margin, n, generator),
        shift=_uniform(-c.max_shift, c.max_shift, 2 * n, generator).view(n, 2),
        angle=_uniform(-c.max_rotation, c.max_rotation, n, generator),
        scale=_uniform(*c.scale, n, generator),
        flip=torch.rand(n, generator=generator) < c.flip_p,
        brightness=_uniform(max(0.0, 1 - c.brightness), 1 + c.brightness, n, generator),
        contrast=_uniform(max(0.0, 1 - c.contrast), 1 + c.contrast, n, generator),
        saturation=_uniform(max(0.0, 1 - c.saturation), 1 + c.saturation, n, generator),
        hue=_uniform(-c.hue, c.hue, n, generator),
        gray=torch.rand(n, generator=generator) < c.grayscale_p,
    )
    camera = sample_camera(c, n, generator)
    # The gates last: a p below 1 draws here without moving any draw above.
    if c.shift_p < 1:
        kept = torch.rand(n, generator=generator) < c.shift_p
        drawn["shift"] = torch.where(kept[:, None], drawn["shift"], torch.zeros_like(drawn["shift"]))
    if c.rotation_p < 1:
        kept = torch.rand(n, generator=generator) < c.rotation_p
        drawn["angle"] = torch.where(kept, drawn["angle"], torch.zeros_like(drawn["angle"]))
    return AugmentParams(**drawn, **camera)
