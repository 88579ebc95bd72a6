"""``AugmentConfig``: the public knobs of the augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: Output dtypes by name (``AugmentConfig.out_dtype``).
OUT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class AugmentConfig:
    """What :class:`~gpuaug.FaceAugment` does; 0 disables a colour op.

    Colour factors follow torchvision's ColorJitter: brightness/contrast/saturation factor drawn from
    [max(0, 1 - v), 1 + v], hue shift from [-hue, hue] turns (hue <= 0.5). Geometry: crop margin drawn
    from ``crop_margin`` (square side = max(w, h) * (1 + 2 * margin)), rotation from
    [-max_rotation, max_rotation] degrees, shift per axis from [-max_shift, max_shift] of the side, zoom
    from ``scale``, mirror with ``flip_p``. Output: ``out_size`` square, 1 channel when
    ``grayscale_p == 1`` else 3 (grey samples repeat the grey value), of dtype ``out_dtype`` ("float32",
    "bfloat16" or "float16"), in [0, 1], or ``(x - mean) / std`` per channel when ``mean`` and ``std`` are
    given (one value, or one per output channel, in [0, 1] units like torchvision's ``Normalize``), stored
    channels-last when ``channels_last``. The torch backend does all of it inside its render kernel.
    """

    out_size: int = 128
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 1.0
    crop_margin: tuple[float, float] = (0.0, 0.2)
    max_rotation: float = 15.0
    max_shift: float = 0.125
    scale: tuple[float, float] = (1.0, 1.0)
    flip_p: float = 0.5
    flip_table: str | Sequence[int] = "ibug68"
    out_dtype: str = "float32"
    mean: float | Sequence[float] | None = None
    std: float | Sequence[float] | None = None
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.out_size < 1:
            raise ValueError(f"out_size must be >= 1, got {self.out_size}")
        for name in ("brightness", "contrast", "saturation", "max_rotation", "max_shift"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")
        for name in ("grayscale_p", "flip_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        lo, hi = self.crop_margin
        if not -0.5 < lo <= hi:
            raise ValueError(f"crop_margin must be (lo, hi) with -0.5 < lo <= hi, got {self.crop_margin}")
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi, got {self.scale}")
        if self.out_dtype not in OUT_DTYPES:
            raise ValueError(f"out_dtype must be one of {sorted(OUT_DTYPES)}, got {self.out_dtype!r}")
        for name in ("mean", "std"):  # one number is one value for every channel, as torchvision's Normalize
            value = getattr(self, name)
            if isinstance(value, (int, float)):
                object.__setattr__(self, name, (float(value),))
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std (or neither)")
        if self.mean is not None:
            for name in ("mean", "std"):
                if len(getattr(self, name)) not in (1, self.channels):
                    raise ValueError(f"{name} needs 1 or {self.channels} values (output channels), "
                                     f"got {len(getattr(self, name))}")
            if min(self.std) <= 0:
                raise ValueError(f"std must be > 0, got {self.std}")

    @property
    def channels(self) -> int:
        """Output channels: 1 when every sample is grey, else 3."""
        return 1 if self.grayscale_p == 1.0 else 3

    @property
    def dtype(self) -> torch.dtype:
        """The output's torch dtype."""
        return OUT_DTYPES[self.out_dtype]

    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """Per-channel (scale, shift) with ``out * scale + shift = (out - mean) / std``, or None."""
        if self.mean is None or self.std is None:
            return None
        c = self.channels
        mean = tuple(self.mean) * (c // len(self.mean))
        std = tuple(self.std) * (c // len(self.std))
        return tuple(1 / s for s in std), tuple(-m / s for m, s in zip(mean, std, strict=True))
