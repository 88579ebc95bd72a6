"""``AugmentConfig``: the public knobs of the augmentation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: Output dtypes by name (``AugmentConfig.out_dtype``).
OUT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: How an occluder can be filled (``AugmentConfig.occluder_fill``), in the order of their codes in the params.
OCCLUDER_FILLS = ("colour", "noise", "texture")
#: The probabilities of the camera ops (:mod:`gpuaug.camera`); all 0 (the default) is the plain step.
CAMERA_PROBABILITIES = ("gamma_p", "occluder_p", "blur_p", "motion_blur_p", "low_res_p", "noise_p", "shot_noise_p",
                        "jpeg_p")


@dataclass(frozen=True)
class AugmentConfig:
    """What :class:`~gpuaug.FaceAugment` does: the draws of every op and the output format. The defaults are the
    chain of the face multitask data set's original loader (:func:`gpuaug.recipes.head_multitask`); every
    camera op is off (probability 0). A value out of range raises ValueError naming the field.

    Colour factors follow torchvision's ColorJitter: a factor drawn from [max(0, 1 - v), 1 + v]; 0 disables
    the op. A ``*_p`` gate is the probability that a sample gets that op; a gate below 1 draws after every other
    draw (at 1 it draws nothing), so adding a gate at 1 changes no draw. The torch backend does the geometry,
    colour and output format inside one render kernel, and on CUDA the leading camera ops too.

    Args:
        out_size: side of the square output, pixels.
        brightness: brightness factor range, ``1 +- brightness``.
        contrast: contrast factor range, ``1 +- contrast`` (about each sample's mean grey).
        saturation: saturation factor range, ``1 +- saturation``.
        hue: hue shift range in turns, [-hue, hue], at most 0.5.
        grayscale_p: probability of grey output (ITU-R 601 luma); 1 (the default) gives 1-channel output,
            anything else 3 channels (grey samples repeat the grey value).
        crop_margin: (lo, hi) margin drawn per sample: the crop's square side is max(w, h) * (1 + 2 * margin)
            of the crop box (:func:`~gpuaug.crop.crop_boxes`).
        max_rotation: rotation range in degrees, [-max_rotation, max_rotation].
        rotation_p: probability that a sample is rotated at all (its angle is 0 otherwise).
        max_shift: shift range per axis, a fraction of the crop's side.
        shift_p: probability that a sample is shifted at all (both axes by one gate, as mmpose's
            ``RandomBBoxTransform``).
        scale: (lo, hi) zoom range; above 1 zooms in.
        flip_p: probability of a horizontal mirror (landmarks re-indexed with ``flip_table``).
        flip_table: the landmark layout's left/right table: a built-in name ("ibug68", "wflw98", "cofw29",
            "aflw19", "lapa106") or your own 0-based index sequence (an involution); it decides K.
        out_dtype: "float32", "bfloat16" or "float16".
        mean: per-channel mean in [0, 1] units (one value or one per output channel); with ``std`` the output
            is ``(x - mean) / std``, else in [0, 1].
        std: per-channel std, with ``mean``.
        channels_last: store the output images channels-last.
        gamma_p: probability of an exposure change (camera op).
        gamma: (lo, hi) exponent range of the exposure change.
        occluder_p: probability that a sample gets occluders (hands, objects) in front of the face.
        occluder_max: at most this many occluders per sample (1-16).
        occluder_size: (lo, hi) occluder size, a fraction of ``out_size``.
        occluder_ellipse_p: probability that an occluder is an ellipse rather than a rectangle.
        occluder_fill: how an occluder can be filled: "colour", "noise", "texture" (another sample's pixels).
        blur_p: probability of a defocus (Gaussian) blur.
        blur_sigma: (lo, hi) blur sigma, output pixels.
        motion_blur_p: probability of a motion blur.
        motion_blur_length: (lo, hi) motion blur length, output pixels.
        low_res_p: probability of a low-resolution round trip (down, then up).
        low_res: (lo, hi) the low resolution, a fraction of ``out_size``.
        noise_p: probability of read noise (Gaussian).
        noise_std: (lo, hi) read noise std, [0, 1] units.
        shot_noise_p: probability of low-light shot noise.
        shot_noise: (lo, hi) shot noise std at white, [0, 1] units.
        jpeg_p: probability of a JPEG round trip (video compression).
        jpeg_quality: (lo, hi) JPEG quality, 1-100.
    """

    out_size: int = 128
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 1.0
    crop_margin: tuple[float, float] = (0.0, 0.2)
    max_rotation: float = 15.0
    rotation_p: float = 1.0
    max_shift: float = 0.125
    shift_p: float = 1.0
    scale: tuple[float, float] = (1.0, 1.0)
    flip_p: float = 0.5
    flip_table: str | Sequence[int] = "ibug68"
    out_dtype: str = "float32"
    mean: float | Sequence[float] | None = None
    std: float | Sequence[float] | None = None
    channels_last: bool = False
    gamma_p: float = 0.0
    gamma: tuple[float, float] = (0.5, 2.0)
    occluder_p: float = 0.0
    occluder_max: int = 1
    occluder_size: tuple[float, float] = (0.2, 0.4)
    occluder_ellipse_p: float = 0.5
    occluder_fill: tuple[str, ...] = OCCLUDER_FILLS
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    motion_blur_p: float = 0.0
    motion_blur_length: tuple[float, float] = (3.0, 7.0)
    low_res_p: float = 0.0
    low_res: tuple[float, float] = (0.25, 0.75)
    noise_p: float = 0.0
    noise_std: tuple[float, float] = (0.01, 0.05)
    shot_noise_p: float = 0.0
    shot_noise: tuple[float, float] = (0.02, 0.1)
    jpeg_p: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 90)

    def __post_init__(self) -> None:
        if self.out_size < 1:
            raise ValueError(f"out_size must be >= 1, got {self.out_size}")
        for name in ("brightness", "contrast", "saturation", "max_rotation", "max_shift"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")
        for name in ("grayscale_p", "flip_p", "rotation_p", "shift_p"):
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
        self._check_camera()

    def _check_camera(self) -> None:
        """ValueError naming the camera op field and its allowed range."""
        for name in (*CAMERA_PROBABILITIES, "occluder_ellipse_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        # Only an op that runs must fit out_size: the default range of an op switched off (blur sigma up to 1.5
        # needs out_size >= 5.5) would refuse small outputs that never see the op. Off, any size fits.
        side = {gate: self.out_size if getattr(self, gate) > 0 else math.inf
                for gate in ("blur_p", "motion_blur_p", "low_res_p")}
        # (field, lowest lo, highest hi, what the range means)
        ranges = (
            ("gamma", 1e-3, 1e3, "exponents in [0.001, 1000]"),
            ("occluder_size", 1e-3, 1.0, "fractions of out_size in [0.001, 1]"),
            ("blur_sigma", 1e-3, (side["blur_p"] - 1) / 3,
             f"sigmas in output pixels in [0.001, {(side['blur_p'] - 1) / 3:g}] (3 sigma inside the image)"),
            ("motion_blur_length", 1.0, side["motion_blur_p"],
             f"lengths in output pixels in [1, {side['motion_blur_p']:g}]"),
            ("low_res", 1.0 / side["low_res_p"], 1.0, f"fractions of out_size in [1/{side['low_res_p']:g}, 1]"),
            ("noise_std", 0.0, 1.0, "stds in [0, 1] units, in [0, 1]"),
            ("shot_noise", 0.0, 1.0, "stds at white in [0, 1]"),
            ("jpeg_quality", 1, 100, "qualities in [1, 100]"),
        )
        for name, low, high, meaning in ranges:
            value = tuple(getattr(self, name))
            if len(value) != 2 or not low <= value[0] <= value[1] <= high:
                raise ValueError(f"{name} must be (lo, hi) with {low:g} <= lo <= hi <= {high:g} ({meaning}), "
                                 f"got {getattr(self, name)}")
        if any(not float(q).is_integer() for q in self.jpeg_quality):
            raise ValueError(f"jpeg_quality must be whole numbers, got {self.jpeg_quality}")
        if not isinstance(self.occluder_max, int) or not 1 <= self.occluder_max <= 16:
            raise ValueError(f"occluder_max must be an int in [1, 16], got {self.occluder_max!r}")
        fills = tuple(self.occluder_fill)
        if not fills or len(set(fills)) != len(fills) or not set(fills) <= set(OCCLUDER_FILLS):
            raise ValueError(f"occluder_fill must be distinct names from {OCCLUDER_FILLS}, got {self.occluder_fill!r}")
        object.__setattr__(self, "occluder_fill", fills)

    @property
    def camera(self) -> bool:
        """Whether any camera op (gamma, occluders, blur, low resolution, noise, JPEG) is on."""
        return any(getattr(self, name) > 0 for name in CAMERA_PROBABILITIES)

    @property
    def occluder_slots(self) -> int:
        """Occluder slots per sample in :class:`~gpuaug.params.AugmentParams` (0 when occlusion is off)."""
        return self.occluder_max if self.occluder_p > 0 else 0

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
