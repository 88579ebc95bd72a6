"""``FaceAugment``: sample params -> one matrix per sample -> labels (shared) + pixels (backend)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

import torch

from gpuaug.backends import get_backend
from gpuaug.batch import FaceBatch
from gpuaug.camera.chain import camera_stage
from gpuaug.camera.occluders import occluded
from gpuaug.camera.ops import camera_ops
from gpuaug.camera.sample import check_sources
from gpuaug.checks import check_matrix, check_params, check_structure, sample_validity
from gpuaug.config import AugmentConfig
from gpuaug.device_constants import constant
from gpuaug.errors import BatchError
from gpuaug.labels.custom import (
    CustomLabel,
    apply_flips,
    check_custom,
    custom_validity,
    for_layout,
    shipped_occlusion,
)
from gpuaug.labels.flip_tables import resolve_flip_table
from gpuaug.labels.matrix import crop_matrix, decompose
from gpuaug.labels.transform import annotated_points, points_to_source, transform_labels
from gpuaug.output import finish, render_config
from gpuaug.params import AugmentParams, sample_params
from gpuaug.sample import LABEL_FIELDS, POINT_FIELDS
from gpuaug.targets.fields import TensorFields
from gpuaug.targets.spec import TargetSpec, build_targets, check_targets
from gpuaug.transfer import move


class LabelPresence:
    """Which output labels are there, computed on access from the labels themselves (NaN: missing or invalid), for
    an augmented batch ((B, ...) labels) and clips ((B, T, ...))."""

    @property
    def annotated(self) -> torch.Tensor | None:
        """(..., K) bool with 2D landmarks: the output landmark is a number (not annotated, or of an invalid
        sample: NaN)."""
        return None if self.landmarks2d is None else annotated_points(self.landmarks2d)

    @property
    def has(self) -> dict[str, torch.Tensor]:
        """Label kind -> (...) bool: the sample has that label (:func:`present`), for each kind the batch had."""
        return presence(self)


@dataclass
class AugmentedBatch(LabelPresence):
    """Augmented images and labels, all in output space (B samples, output side S, K landmarks).

    The labels the batch had come out transformed; a kind it lacked is None. A missing label (NaN in: a point
    not annotated, no box, pose or gaze for that sample) comes out NaN in a valid sample. An invalid sample
    (an inf in a label, nothing to crop around, an empty frame: ``valid`` False) renders as fill (0 before
    normalisation) and has NaN labels and matrix: mask it out of the loss. Two properties are computed on
    access: ``annotated`` (B, K) bool, the landmark is a number (False for a point not annotated, in its
    mirrored slot on a flip, and for an invalid sample: mask it out of a landmark loss, as the targets do), and
    ``has``, label kind -> (B,) bool, the sample has that label (a finite box, pose or gaze; at least one
    annotated landmark): a loss on that kind masks with it.

    Attributes:
        images: (B, C, S, S) in the configured dtype (float32 [0, 1] by default) and memory format.
        matrix: (B, 3, 3) source pixel -> output pixel.
        flipped: (B,) bool, the mirrored samples.
        keys: (B, 2) int64 (video, frame) each sample came from.
        params: the draws that made the batch (:class:`~gpuaug.AugmentParams`), for replay.
        flip_table: (K,) int64, the re-index used for mirrored samples.
        valid: (B,) bool, False for an invalid sample (above).
        bbox: (B, 4) [x0, y0, x1, y1], the box enclosing the transformed source box.
        landmarks2d: (B, K, 2) output pixels (pixel centres at integers), re-indexed where flipped.
        landmarks3d: (B, K, 3): x, y as the 2D points, z times the matrix's isotropic scale.
        head_pose: (B, 3) [yaw, pitch, roll] degrees, turned and mirrored with the image exactly.
        gaze: (B, 3) [x right, y up, z toward the camera], turned and mirrored with the image.
        visible: (B, K) bool, the landmark lies inside the output image (with 2D landmarks).
        occluded: (B, K) bool, the landmark's output pixel is covered by an occluder
            (:mod:`gpuaug.camera.occluders`) or the data set flags it occluded
            (:class:`~gpuaug.labels.custom.PointFlags`); all False without either.
        labels: labels of your own by name (``FaceAugment(config, labels=[...])``), re-indexed on mirrored
            samples; an invalid sample's are NaN, or class -1.
        targets: training targets by name (``FaceAugment(config, targets=[...])``); empty when none.
    """

    images: torch.Tensor
    matrix: torch.Tensor
    flipped: torch.Tensor
    keys: torch.Tensor
    params: AugmentParams
    flip_table: torch.Tensor
    valid: torch.Tensor
    bbox: torch.Tensor | None = None
    landmarks2d: torch.Tensor | None = None
    landmarks3d: torch.Tensor | None = None
    head_pose: torch.Tensor | None = None
    gaze: torch.Tensor | None = None
    visible: torch.Tensor | None = None
    occluded: torch.Tensor | None = None
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    targets: dict[str, TensorFields] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> AugmentedBatch:
        moved = {f.name: move(getattr(self, f.name), device, non_blocking) for f in fields(self)
                 if f.name not in ("targets", "labels") and getattr(self, f.name) is not None}
        targets = {name: t.to(device, non_blocking) for name, t in self.targets.items()}
        labels = {k: move(t, device, non_blocking) for k, t in self.labels.items()}
        return replace(self, targets=targets, labels=labels, **moved)

    def to_source(self, points: torch.Tensor) -> torch.Tensor:
        """Output-space landmarks (B, K, 2), e.g. a network's predictions -> source-frame pixels."""
        return points_to_source(self.matrix, self.flip_table, points)


def present(kind: str, value: torch.Tensor) -> torch.Tensor:
    """(...) bool: the sample has label ``kind`` in output space ``value`` (..., D), or (..., K, D) for points: a
    finite box, pose, gaze; at least one annotated (finite) point. False for an invalid sample (NaN labels)."""
    finite = torch.isfinite(value).all(-1)
    return finite.any(-1) if kind in POINT_FIELDS else finite


def presence(labels: object) -> dict[str, torch.Tensor]:
    """Label kind -> :func:`present` of ``labels``' field of that name, for each kind it has (not None)."""
    return {k: present(k, getattr(labels, k)) for k in LABEL_FIELDS if getattr(labels, k) is not None}


def mask_invalid(batch: FaceBatch, matrix: torch.Tensor, labels: Sequence[CustomLabel] = (),
                 box: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 3, 3) ``matrix`` with NaN for every sample that :func:`~gpuaug.checks.sample_validity` rejects, or
    whose declared labels of your own (``labels``) hold a bad value: such a sample renders as fill and gets NaN
    labels, so a bad sample cannot look like a good one (no host sync). ``box``: the batch's crop boxes, if the
    caller has them."""
    valid = sample_validity(batch, box)
    custom = custom_validity(labels, batch.labels)
    return torch.where((valid if custom is None else valid & custom)[:, None, None], matrix, torch.nan)


class FaceAugment(torch.nn.Module):
    """Batched face augmentation with exact label transforms.

    ``aug(batch, generator)`` = ``aug.apply(batch, aug.sample_params(batch, generator))``. All randomness
    comes from ``generator`` (CPU); ``aug.eval()`` gives the deterministic centred framing.

    Input checks: a malformed batch (dtypes, shapes, devices, landmark count) raises
    :class:`~gpuaug.errors.BatchError` naming the field, from tensor metadata alone. Bad values are not
    raised here (that would wait for the GPU): such samples come out with ``valid=False`` (see
    :class:`AugmentedBatch`); ``gpuaug.collate`` raises for them on the CPU, naming the sample, and
    ``gpuaug.checks.check_values(batch)`` does on demand. On CUDA a step makes no host sync: params are
    drawn on the CPU and reach the device in one non-blocking copy from pinned memory. One FaceAugment takes
    batches of one set of label kinds (those of the first batch it sees).

    Args:
        config: the ops and the output format (default ``AugmentConfig()``).
        backend: "torch" (a Triton kernel on CUDA, a compiled gather on the CPU) or "dali" (NVIDIA DALI
            renders the pixels; :mod:`gpuaug.backends`).
        targets: training targets built in the same step from the output labels, e.g.
            ``[gpuaug.targets.HeatmapTarget(size=64, sigma=2, encoding="udp", dtype="bfloat16")]``; they land
            in ``out.targets`` by name (:mod:`gpuaug.targets`); checked against ``config.out_size``.
        warp: the torch backend's warp (:func:`~gpuaug.backends.torch_backend.render`): "auto", "triton" (the
            Triton kernel on any device, interpreted on CPU tensors), "gather" or "kornia".
        labels: labels of your own the batches carry in ``batch.labels``, each declared with its flip rule
            (:class:`~gpuaug.labels.custom.FlipVector`, e.g. ARKit blendshapes,
            :class:`~gpuaug.labels.custom.ClassLabel`, :class:`~gpuaug.labels.custom.PointFlags`); they come
            out in ``out.labels``, re-indexed on mirrored samples.
    """

    def __init__(self, config: AugmentConfig | None = None, backend: str = "torch",
                 targets: Sequence[TargetSpec] = (), warp: str = "auto", labels: Sequence[CustomLabel] = ()) -> None:
        super().__init__()
        self.config = config or AugmentConfig()
        self.backend_name = backend
        self.backend = get_backend(backend, warp)
        self.flip_table = tuple(resolve_flip_table(self.config.flip_table).tolist())
        #: The label kinds of the batches this augmentation takes: those of the first batch it sees.
        self.kinds: tuple[str, ...] | None = None
        self.labels = for_layout(labels, self.flip_table)
        names = [s.name for s in self.labels]
        if len(set(names)) != len(names):
            raise ValueError(f"labels of your own need distinct names, got {names}")
        self.targets = tuple(targets)
        check_targets(self.targets, self.config.out_size)

    def sample_params(self, batch: FaceBatch, generator: torch.Generator | None = None,
                      train: bool | None = None) -> AugmentParams:
        """Draw this batch's params (on the CPU from ``generator``), moved to the batch's device; training draws
        or the eval framing as ``train`` says (default: the module's mode)."""
        train = self.training if train is None else train
        params = sample_params(self.config, len(batch), generator, train=train)
        return params.to(batch.device, non_blocking=True)

    def matrix(self, batch: FaceBatch, params: AugmentParams, bbox: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, 3) source -> output pixel matrix for these params, cropping around ``bbox`` (B, 4) (default:
        each sample's crop box, :meth:`FaceBatch.crop_boxes`; a clip passes its clip-wide box)."""
        check_structure(batch, len(self.flip_table))
        check_params(batch, params)
        p = params
        box = batch.crop_boxes() if bbox is None else bbox
        return crop_matrix(box, p.margin, p.shift, p.angle, p.scale, p.flip, self.config.out_size)

    def apply(self, batch: FaceBatch, params: AugmentParams) -> AugmentedBatch:
        """Replay ``params`` on ``batch`` (deterministic)."""
        check_structure(batch, len(self.flip_table))  # before the crop boxes read the labels
        box = batch.crop_boxes()  # once per step: the matrix and the validity mask both take it
        return self._augment(batch, self.matrix(batch, params, box), params, box)

    def apply_matrix(self, batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams) -> AugmentedBatch:
        """Warp and relabel with any per-sample similarity ``matrix`` (B, 3, 3); colour from ``params``."""
        return self._augment(batch, matrix, params)

    def _augment(self, batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams,
               box: torch.Tensor | None = None) -> AugmentedBatch:
        """:meth:`apply_matrix`, with the batch's (B, 4) crop boxes when the caller has them."""
        check_structure(batch, len(self.flip_table))
        check_custom(self.labels, batch.labels, len(batch), batch.device)
        self._check_kinds(batch)
        check_matrix(batch, matrix)
        check_params(batch, params)
        check_sources(params.occluders, len(batch))
        # A caller's autocast must not reach the step: labels stay float32 and exact, images come out in the
        # configured dtype (the render and label maths use no autocast-listed op either: gpuaug.linalg).
        with torch.autocast(batch.device.type, enabled=False):
            matrix = mask_invalid(batch, matrix.float(), self.labels, box)
            images = self.render(batch, matrix, params)
        return self.with_labels(batch, matrix, params, images)

    def _check_kinds(self, batch: FaceBatch) -> None:
        """BatchError unless ``batch`` has the label kinds of the first batch this augmentation saw (recorded
        then, outside a caller's compiled graph): one set of kinds is one compiled graph, so a data set with
        fewer kinds (a validation set without gaze, say) gets its own FaceAugment."""
        if torch.compiler.is_compiling():
            return
        if self.kinds is None:
            self.kinds = batch.kinds
        elif batch.kinds != self.kinds:
            raise BatchError("labels", f"this FaceAugment augments batches with {', '.join(self.kinds) or 'no labels'}"
                                       f"; this batch has {', '.join(batch.kinds) or 'none'}: give batches of "
                                       "other label kinds a FaceAugment of their own (same config)")

    def render(self, batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """The backend's pixels; with camera ops on, the ops the backend applies itself (its ``fused_ops``, see
        :mod:`gpuaug.backends`) in the render, then, if any op is left, rendered as float32 [0, 1], through the
        rest of the ops (:func:`~gpuaug.camera.chain.camera_stage`), then normalised, cast and laid out."""
        config = self.config
        if not config.camera:  # the fused fast path: output format inside the render
            return self.backend(batch, matrix, params, config)
        fused_ops = getattr(self.backend, "fused_ops", None)
        fused = fused_ops(config, batch.device) if fused_ops is not None else ()
        scene = {"scene": fused} if fused else {}
        if not camera_ops(config, skip=fused):  # every op in the render: the output format too
            return self.backend(batch, matrix, params, config, **scene)
        images = self.backend(batch, matrix, params, render_config(config), **scene)
        return finish(camera_stage(images, params, config, skip=fused), config)

    def with_labels(
        self, batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams, images: torch.Tensor
    ) -> AugmentedBatch:
        """``images`` (B, C, S, S) already rendered with ``matrix`` and ``params`` (e.g. inside a DALI
        pipeline) plus ``batch``'s labels under ``matrix``; ``batch.images`` is not read. ``matrix`` comes
        through :func:`mask_invalid`, so a sample is valid exactly where its matrix is finite. The label maths
        runs outside a caller's autocast here too (float32, exact), whoever calls it."""
        size, table = self.config.out_size, constant(self.flip_table, batch.device, torch.int64)
        with torch.autocast(batch.device.type, enabled=False):
            matrix = matrix.float()
            labels = transform_labels(matrix, table, size, **{k: getattr(batch, k) for k in batch.kinds})
            valid = torch.isfinite(matrix).flatten(1).all(1)
            flipped = decompose(matrix)[2]
            custom = apply_flips(self.labels, batch.labels, flipped, valid)
            hidden = None if labels.landmarks2d is None else occluded(params.occluders, labels.landmarks2d, size)
            shipped = shipped_occlusion(self.labels, custom)
            if hidden is not None and shipped is not None:  # the data set's own flags, for annotated points only
                hidden = hidden | (shipped & labels.annotated)
            return AugmentedBatch(
                images=images,
                matrix=matrix,
                flipped=flipped,
                keys=batch.keys,
                params=params,
                flip_table=table,
                valid=valid,
                occluded=hidden,
                labels=custom,
                targets=build_targets(self.targets, labels, valid, hidden, size),
                **vars(labels),
            )

    def forward(self, batch: FaceBatch, generator: torch.Generator | None = None) -> AugmentedBatch:
        return self.apply(batch, self.sample_params(batch, generator))

