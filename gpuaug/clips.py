"""``ClipAugment``: B clips of T frames augmented as one step of B * T frames, with exact labels on every frame.

One draw per clip (optionally drifting, :func:`~gpuaug.clip_params.sample_clip_params`), one crop box per clip
(:func:`~gpuaug.clip_params.clip_boxes`), matrices from :func:`~gpuaug.labels.matrix.crop_matrix`, then ONE
:meth:`FaceAugment.apply_matrix` over the whole flat batch: the frame path's render and label code, on any
backend and device, with no per-clip loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from gpuaug.augment import AugmentedBatch, FaceAugment, LabelPresence
from gpuaug.batch import FaceBatch
from gpuaug.clip_params import CropMode, check_crop, check_drift, clip_boxes, sample_clip_params
from gpuaug.load.clips import check_clip_shape
from gpuaug.params import AugmentParams
from gpuaug.targets.fields import TensorFields


@dataclass
class AugmentedClips(LabelPresence):
    """An :class:`~gpuaug.AugmentedBatch` of B * T clip-major frames seen as B clips of T frames (views, no
    copy); conventions as in AugmentedBatch, with a T axis after B. ``annotated`` (B, T, K) and ``has`` (label
    kind -> (B, T) bool) are computed on access.

    Attributes:
        images: (B, T, C, S, S).
        matrix: (B, T, 3, 3) source -> output.
        flipped: (B, T) bool.
        keys: (B, T, 2) (video, frame).
        valid: (B, T) bool.
        targets: each training target with a T axis after B (heatmaps (B, T, K, h, w), ...).
        params: the (B * T) per-frame draws, for replay.
        frames: the flat AugmentedBatch itself (e.g. for a per-frame loss).
        bbox: (B, T, 4), or None.
        landmarks2d: (B, T, K, 2), or None.
        landmarks3d: (B, T, K, 3), or None.
        head_pose: (B, T, 3) degrees, or None.
        gaze: (B, T, 3), or None.
        visible: (B, T, K) bool, with 2D landmarks.
        occluded: (B, T, K) bool, with 2D landmarks.
        labels: labels of your own, (B, T, ...).
    """

    images: torch.Tensor
    matrix: torch.Tensor
    flipped: torch.Tensor
    keys: torch.Tensor
    valid: torch.Tensor
    targets: dict[str, TensorFields]
    params: AugmentParams
    frames: AugmentedBatch
    bbox: torch.Tensor | None = None
    landmarks2d: torch.Tensor | None = None
    landmarks3d: torch.Tensor | None = None
    head_pose: torch.Tensor | None = None
    gaze: torch.Tensor | None = None
    visible: torch.Tensor | None = None
    occluded: torch.Tensor | None = None
    labels: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        """Clips (B)."""
        return int(self.images.shape[0])

    @classmethod
    def of(cls, frames: AugmentedBatch, length: int) -> AugmentedClips:
        """View the clip-major ``frames`` (B * T samples) as clips of ``length`` (T)."""
        per_frame = {f.name for f in fields(cls)} - {"params", "frames", "targets", "labels"}
        targets = {name: t.unflatten(length) for name, t in frames.targets.items()}
        labels = {k: t.unflatten(0, (-1, length)) for k, t in frames.labels.items()}
        return cls(params=frames.params, frames=frames, targets=targets, labels=labels,
                   **{name: getattr(frames, name).unflatten(0, (-1, length)) for name in per_frame
                      if getattr(frames, name) is not None})


def clip_count(batch: FaceBatch, length: int) -> int:
    """B for a batch of B * T clip-major frames; ValueError when ``len(batch)`` is not a multiple of T."""
    if len(batch) % length:
        raise ValueError(f"a clip batch holds B * T frames; got {len(batch)} frames for clips of T={length}")
    return len(batch) // length


class ClipAugment(torch.nn.Module):
    """Clip augmentation around a :class:`~gpuaug.FaceAugment` (its config, backend and train/eval mode).

    ``clip_aug(batch, generator)`` = ``clip_aug.apply(batch, clip_aug.sample_params(batch, generator))`` for a
    batch of B * T clip-major frames (:class:`~gpuaug.load.clips.FaceClips`, :class:`ResidentClips`); keep the
    params to replay. ``aug.eval()`` (or ``clip_aug.eval()``) gives the deterministic centred framing.

    Args:
        aug: the frame augmentation whose config and backend every frame goes through.
        length: frames per clip (T).
        drift: 0 (default) one set of params for the whole clip; in (0, 1] the camera params (margin, shift,
            angle, scale) move linearly toward a second draw, ``drift`` of the way by the last frame.
        crop: "mean" (default) one crop for the clip around its mean box, "union" around the union of its
            boxes, "frame" each frame around its own box (:data:`~gpuaug.clip_params.CropMode`).
    """

    def __init__(self, aug: FaceAugment, length: int, drift: float = 0.0, crop: CropMode = "mean") -> None:
        super().__init__()
        check_clip_shape(length)  # bad options fail here, not at the first batch
        check_drift(drift)
        check_crop(crop)
        self.aug, self.length, self.drift, self.crop = aug, length, drift, crop

    def sample_params(self, batch: FaceBatch, generator: torch.Generator | None = None,
                      train: bool | None = None) -> AugmentParams:
        """(B * T) per-frame params for this batch's B clips, drawn on the CPU, moved to the batch's device;
        ``train`` as in :meth:`FaceAugment.sample_params` (default: the frame augmentation's mode)."""
        train = self.aug.training if train is None else train
        params = sample_clip_params(self.aug.config, clip_count(batch, self.length), self.length, generator,
                                    train=train, drift=self.drift)
        return params.to(batch.device, non_blocking=True)

    def matrix(self, batch: FaceBatch, params: AugmentParams) -> torch.Tensor:
        """(B * T, 3, 3) source -> output matrices: each frame's params around its clip's crop box."""
        clip_count(batch, self.length)
        return self.aug.matrix(batch, params, clip_boxes(batch.crop_boxes(), self.length, self.crop))

    def apply(self, batch: FaceBatch, params: AugmentParams) -> AugmentedClips:
        """Replay ``params`` on ``batch`` (deterministic): one step over all B * T frames."""
        return AugmentedClips.of(self.aug.apply_matrix(batch, self.matrix(batch, params), params), self.length)

    def forward(self, batch: FaceBatch, generator: torch.Generator | None = None) -> AugmentedClips:
        return self.apply(batch, self.sample_params(batch, generator))
