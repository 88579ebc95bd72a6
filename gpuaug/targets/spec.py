"""What :class:`~gpuaug.FaceAugment` builds after the labels: ``FaceAugment(config, targets=[...])``.

Each spec is a frozen dataclass checked at construction (a ValueError naming the argument); ``build`` turns the
step's output-space labels into its result, on the labels' device, in one batched pass (no host sync, traceable
by ``torch.compile(fullgraph=True)``, captured by ``CapturedAugment``). ``out.targets[spec.name]`` holds the
result; clips get a T axis (:meth:`~gpuaug.targets.fields.TensorFields.unflatten`).

Weights: ``weight_by="visible"`` (default) uses a landmark where it is inside the output image and its sample is
valid; ``"valid"`` uses every annotated landmark (``out.annotated``: not NaN in the input) of a valid sample, so
one just outside the crop still draws the part of its Gaussian that falls inside (mmpose's behaviour for a
keypoint labelled visible). ``occluded="keep"`` (default) trains a landmark hidden by an occluder
(``out.occluded``) like any other (its position is exact); ``"drop"`` gives it weight 0 and no map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import torch

from gpuaug.config import OUT_DTYPES
from gpuaug.labels.transform import Labels
from gpuaug.targets.bins import (
    HOPENET_POSE,
    L2CS_GAZE360,
    AngleBins,
    check_soft_sigma,
    encode_bins,
    gaze_to_pitch_yaw,
)
from gpuaug.targets.fields import TensorFields
from gpuaug.targets.heatmap import Encoding, check_heatmap_args, encode_heatmaps
from gpuaug.targets.simcc import check_simcc_args, encode_simcc

WeightBy = Literal["visible", "valid"]
Occluded = Literal["keep", "drop"]


@dataclass
class Heatmaps(TensorFields):
    """Heatmap targets of a batch.

    Args:
        heatmaps: (B, K, h, w) in the spec's dtype.
        weights: (B, K) float32 (mmpose's ``keypoint_weights``).
    """

    heatmaps: torch.Tensor
    weights: torch.Tensor


@dataclass
class SimCCLabels(TensorFields):
    """SimCC targets of a batch.

    Args:
        x: (B, K, Wx) labels in the spec's dtype.
        y: (B, K, Wy) labels in the spec's dtype.
        weights: (B, K) float32.
    """

    x: torch.Tensor
    y: torch.Tensor
    weights: torch.Tensor


@dataclass
class AngleBinLabels(TensorFields):
    """Angle-bin targets of a batch; pose: A = 3 [yaw, pitch, roll], gaze: A = 2 [pitch, yaw]. Never NaN.

    Args:
        angles: (B, A) degrees, the regression target (0 where unusable: an invalid sample, a zero gaze).
        index: (B, A) int64 class (-100 = ignore).
        soft: (B, A, n) float32 soft label.
        weights: (B, A) float32, 1 where the angle is usable and inside the bins.
    """

    angles: torch.Tensor
    index: torch.Tensor
    soft: torch.Tensor
    weights: torch.Tensor


class TargetSpec(Protocol):
    """A training target :class:`~gpuaug.FaceAugment` builds: a name, the label kind it is built from
    (``source``: "landmarks2d", "head_pose" or "gaze"), a check and a build."""

    name: str
    source: str

    def check(self, out_size: int) -> None:
        """ValueError if this spec cannot be built for ``out_size`` x ``out_size`` crops."""

    def build(self, labels: Labels, valid: torch.Tensor, occluded: torch.Tensor, out_size: int) -> TensorFields:
        """The result from the step's output-space ``labels``, (B,) ``valid`` and (B, K) ``occluded``."""


def _check_name(name: str) -> None:
    if not name or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier (the key in out.targets), got {name!r}")


def _check_map_options(name: str, dtype: str, weight_by: str, occluded: str) -> None:
    _check_name(name)
    if occluded not in ("keep", "drop"):
        raise ValueError(f"occluded must be 'keep' or 'drop', got {occluded!r}")
    if dtype not in OUT_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(OUT_DTYPES)}, got {dtype!r}")
    if weight_by not in ("visible", "valid"):
        raise ValueError(f"weight_by must be 'visible' or 'valid', got {weight_by!r}")


def landmark_weights(labels: Labels, valid: torch.Tensor, occluded: torch.Tensor, weight_by: WeightBy,
                     occluded_rule: Occluded) -> torch.Tensor:
    """(B, K) float32 weights: visible (never true on an invalid sample, whose labels are NaN, nor for a point not
    annotated), or valid and annotated; without the occluded landmarks for ``occluded_rule="drop"`` (module
    docstring)."""
    use = labels.visible if weight_by == "visible" else valid[:, None] & labels.annotated
    return (use & ~occluded if occluded_rule == "drop" else use).float()


def _pair(value: float | tuple[float, float]) -> tuple:
    """One number for both axes, or (x, y) as given."""
    return (value, value) if isinstance(value, (int, float)) else tuple(value)


@dataclass(frozen=True)
class HeatmapTarget:
    """Gaussian heatmaps of the 2D landmarks, equal to mmpose's ``MSRAHeatmap`` (``encoding="msra"``; ``"dark"``
    is ``unbiased=True``) or ``UDPHeatmap`` (``"udp"``) with ``input_size`` the output crop and ``heatmap_size``
    = ``size`` (w, h or one int); ``sigma`` in heatmap pixels; maps in ``dtype`` ("bfloat16" halves the bytes).
    Weights: ``weight_by="valid"`` is mmpose's own rule (its loader never clears a keypoint's visibility, so a
    landmark just outside the crop still draws its part of the Gaussian); the default ``"visible"`` draws only
    landmarks inside the crop (module :mod:`gpuaug.targets.spec`).
    Decode predictions with :func:`gpuaug.targets.decode_heatmaps`.

    Args:
        size: heatmap side in pixels, or (w, h).
        sigma: Gaussian sigma in heatmap pixels.
        encoding: "msra", "dark" (MSRA with ``unbiased=True``) or "udp".
        dtype: "float32", "bfloat16" or "float16".
        weight_by: "visible" (landmarks inside the crop) or "valid" (every annotated landmark, mmpose's rule).
        occluded: "keep" trains an occluded landmark like any other; "drop" gives it weight 0 and no map.
        name: its key in ``out.targets``.
    """

    size: int | tuple[int, int] = 64
    sigma: float = 2.0
    encoding: Encoding = "msra"
    dtype: str = "float32"
    weight_by: WeightBy = "visible"
    occluded: Occluded = "keep"
    name: str = "heatmap"
    #: The label kind this target is built from.
    source: ClassVar[str] = "landmarks2d"

    def __post_init__(self) -> None:
        _check_map_options(self.name, self.dtype, self.weight_by, self.occluded)
        check_heatmap_args((1, 1), _pair(self.size), self.sigma, self.encoding)

    def check(self, out_size: int) -> None:
        check_heatmap_args((out_size, out_size), _pair(self.size), self.sigma, self.encoding)

    def build(self, labels: Labels, valid: torch.Tensor, occluded: torch.Tensor, out_size: int) -> Heatmaps:
        weights = landmark_weights(labels, valid, occluded, self.weight_by, self.occluded)
        maps, weights = encode_heatmaps(labels.landmarks2d, weights,
                                        (out_size, out_size), _pair(self.size), self.sigma, self.encoding,
                                        OUT_DTYPES[self.dtype])
        return Heatmaps(maps, weights)


@dataclass(frozen=True)
class SimCCTarget:
    """SimCC labels of the 2D landmarks, equal to mmpose's ``SimCCLabel(smoothing_type="gaussian")`` with
    ``input_size`` the output crop: ``split_ratio`` bins per pixel, ``sigma`` in bins (one or (sx, sy)),
    ``normalize`` divides by sigma sqrt(2 pi); weights as :class:`HeatmapTarget` (``weight_by="valid"`` is
    mmpose's rule). Decode with :func:`gpuaug.targets.decode_simcc`.

    Args:
        split_ratio: bins per pixel.
        sigma: Gaussian sigma in bins, one or (sx, sy).
        normalize: divide by sigma sqrt(2 pi), as mmpose's ``normalize=True``.
        dtype: "float32", "bfloat16" or "float16".
        weight_by: "visible" or "valid", as :class:`HeatmapTarget`.
        occluded: "keep" or "drop", as :class:`HeatmapTarget`.
        name: its key in ``out.targets``.
    """

    split_ratio: float = 2.0
    sigma: float | tuple[float, float] = 6.0
    normalize: bool = True
    dtype: str = "float32"
    weight_by: WeightBy = "visible"
    occluded: Occluded = "keep"
    name: str = "simcc"
    #: The label kind this target is built from.
    source: ClassVar[str] = "landmarks2d"

    def __post_init__(self) -> None:
        _check_map_options(self.name, self.dtype, self.weight_by, self.occluded)
        check_simcc_args((1, 1), self.split_ratio, _pair(self.sigma))

    def check(self, out_size: int) -> None:
        check_simcc_args((out_size, out_size), self.split_ratio, _pair(self.sigma))

    def build(self, labels: Labels, valid: torch.Tensor, occluded: torch.Tensor, out_size: int) -> SimCCLabels:
        weights = landmark_weights(labels, valid, occluded, self.weight_by, self.occluded)
        x, y, weights = encode_simcc(labels.landmarks2d, weights,
                                     (out_size, out_size), self.split_ratio, self.sigma, self.normalize,
                                     OUT_DTYPES[self.dtype])
        return SimCCLabels(x, y, weights)


@dataclass(frozen=True)
class _AngleBinTarget:
    """What the pose and gaze bin targets share: the bins, soft labels, checks and encoding; a subclass says
    which angles (:meth:`angles`)."""

    bins: AngleBins
    soft_sigma: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.bins, AngleBins):
            raise ValueError(f"bins must be an AngleBins, got {self.bins!r}")
        check_soft_sigma(self.soft_sigma)

    def check(self, out_size: int) -> None:
        """Nothing depends on the crop size."""

    def angles(self, labels: Labels) -> torch.Tensor:
        """(B, A) degrees to bin."""
        raise NotImplementedError

    def build(self, labels: Labels, valid: torch.Tensor, occluded: torch.Tensor, out_size: int) -> AngleBinLabels:
        angles = self.angles(labels)
        usable = valid[:, None] & torch.isfinite(angles)
        index, weights, soft = encode_bins(angles, usable, self.bins, self.soft_sigma)
        return AngleBinLabels(angles=torch.where(usable, angles, 0.0), index=index, soft=soft, weights=weights)


@dataclass(frozen=True)
class PoseBinTarget(_AngleBinTarget):
    """Head pose [yaw, pitch, roll] as HopeNet trains it: bin index per angle (66 bins of 3 degrees over
    [-99, 99) by default), the angle itself, and a one-hot or Gaussian (``soft_sigma`` degrees) soft label.
    Decode with :func:`gpuaug.targets.decode_bins`.

    Args:
        bins: the bins of every angle.
        soft_sigma: Gaussian soft label's sigma in degrees; None: one-hot.
        name: its key in ``out.targets``.
    """

    bins: AngleBins = HOPENET_POSE
    name: str = "pose_bins"
    #: The label kind this target is built from.
    source: ClassVar[str] = "head_pose"

    def angles(self, labels: Labels) -> torch.Tensor:
        return labels.head_pose


@dataclass(frozen=True)
class GazeBinTarget(_AngleBinTarget):
    """Gaze as L2CS-Net trains it: [pitch, yaw] degrees in the ETH-XGaze convention
    (:func:`gpuaug.targets.gaze_to_pitch_yaw`) with their bins (Gaze360's 90 of 4 degrees by default;
    :data:`~gpuaug.targets.L2CS_MPIIGAZE` for 28 of 3) and soft labels as :class:`PoseBinTarget`.

    Args:
        bins: the bins of both angles.
        soft_sigma: Gaussian soft label's sigma in degrees; None: one-hot.
        name: its key in ``out.targets``.
    """

    bins: AngleBins = L2CS_GAZE360
    name: str = "gaze_bins"
    #: The label kind this target is built from.
    source: ClassVar[str] = "gaze"

    def angles(self, labels: Labels) -> torch.Tensor:
        return gaze_to_pitch_yaw(labels.gaze)


def check_targets(targets: tuple[TargetSpec, ...], out_size: int) -> None:
    """ValueError for a spec that cannot be built for ``out_size`` crops or a name used twice."""
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError(f"target names must be unique (they key out.targets), got {names}")
    for t in targets:
        t.check(out_size)


def build_targets(targets: tuple[TargetSpec, ...], labels: Labels, valid: torch.Tensor,
                  occluded: torch.Tensor | None, out_size: int) -> dict[str, TensorFields]:
    """``{spec.name: spec.build(...)}`` for every spec, in order; ValueError naming a spec whose label kind the
    batch does not have."""
    for t in targets:
        if getattr(labels, t.source) is None:
            raise ValueError(f"target {t.name!r} ({type(t).__name__}) is built from {t.source}, which this batch does "
                             "not have: drop the target, or give batches with that label")
    return {t.name: t.build(labels, valid, occluded, out_size) for t in targets}
