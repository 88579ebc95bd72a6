"""Input checks: a batch's structure (always, from metadata alone) and its values (per sample).

Structure (dtypes, shapes, one device, landmark count; only the label kinds a batch has) is read from tensor
metadata, so checking it never waits for a GPU; :func:`check_structure` raises :class:`~gpuaug.errors.BatchError`
naming the field. Values (no inf in a label, something to crop around of positive size: :mod:`gpuaug.crop`, a
frame of at least 1 x 1 pixels; a NaN is a missing label, not a bad value) need the data:
:func:`sample_validity` computes a per-sample mask on the batch's device without a host sync (what
:class:`~gpuaug.FaceAugment` uses), :func:`check_values` and :func:`check_samples` raise on the host, naming
the sample (what ``collate`` uses on the CPU copy a loader builds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from gpuaug.crop import crop_boxes
from gpuaug.errors import BatchError
from gpuaug.sample import POINT_FIELDS, bad_values, label_kinds, label_shapes

if TYPE_CHECKING:  # for the annotations only: the batch module imports this one
    from gpuaug.batch import FaceBatch


def check_structure(batch: FaceBatch, n_landmarks: int) -> None:
    """Raise :class:`BatchError` unless ``batch`` (a :class:`~gpuaug.FaceBatch`) is well formed.

    pixels 1-D uint8 (float images are refused: their range is ambiguous); offsets, strides (B,) and sizes
    (B, 2), keys (B, 2) int64 (and windows (B, 4) int64 of a windowed batch); float32 labels of the shapes
    in :func:`label_shapes`, for the kinds the batch has (None fields are absent); one device for all.
    """
    if batch.pixels.dtype != torch.uint8:
        raise BatchError("pixels", f"expected uint8 RGB bytes, found {batch.pixels.dtype}; convert float images "
                                   "in [0, 1] with (x * 255).round().to(torch.uint8)")
    if batch.pixels.dim() != 1:
        raise BatchError("pixels", f"expected a flat (N,) buffer, found shape {tuple(batch.pixels.shape)}; build "
                                   "batches with gpuaug.collate or FaceBatch.from_padded")
    if batch.offsets.dim() != 1:
        raise BatchError("offsets", f"expected shape (B,), found {tuple(batch.offsets.shape)}")
    points = batch.landmarks2d.shape if batch.landmarks2d is not None else ()
    if len(points) == 3 and points[2] == 2 and points[1] != n_landmarks:
        raise BatchError("landmarks2d", f"has {points[1]} landmarks per sample, but the flip table has "
                                        f"{n_landmarks}: give AugmentConfig(flip_table=...) the table of this layout "
                                        "(e.g. 'wflw98' for WFLW's 98 points, or your own)")
    b = batch.offsets.shape[0]
    expected = {"offsets": ((b,), torch.int64), "strides": ((b,), torch.int64), "sizes": ((b, 2), torch.int64),
                "keys": ((b, 2), torch.int64),
                **({"windows": ((b, 4), torch.int64)} if hasattr(batch, "windows") else {}),
                **{k: ((b, *s), torch.float32) for k, s in label_shapes(n_landmarks).items()
                   if getattr(batch, k) is not None}}
    for name, (shape, dtype) in expected.items():
        t = getattr(batch, name)
        if tuple(t.shape) != shape:
            raise BatchError(name, f"expected shape {shape}, found {tuple(t.shape)}")
        if t.dtype != dtype:
            raise BatchError(name, f"expected {dtype}, found {t.dtype}")
        if t.device != batch.pixels.device:
            raise BatchError(name, f"on {t.device}, but pixels are on {batch.pixels.device}; move the whole batch "
                                   "with batch.to(device)")


def check_matrix(batch: FaceBatch, matrix: torch.Tensor) -> None:
    """Raise :class:`BatchError` unless ``matrix`` is a floating (B, 3, 3) tensor on the batch's device."""
    b, device = len(batch), batch.pixels.device
    if tuple(matrix.shape) != (b, 3, 3) or not matrix.is_floating_point():
        raise BatchError("matrix", f"expected a floating (B, 3, 3) = ({b}, 3, 3) tensor, found {tuple(matrix.shape)} "
                                   f"{matrix.dtype}")
    if matrix.device != device:
        raise BatchError("matrix", f"on {matrix.device}, but the batch is on {device}")


def check_params(batch, params) -> None:
    """Raise :class:`BatchError` unless every field of ``params`` (an :class:`~gpuaug.params.AugmentParams`)
    has one row per sample of ``batch``, on its device (metadata only, no sync): e.g. params drawn for
    another batch."""
    b, device = len(batch), batch.pixels.device
    for name, value in vars(params).items():
        if value.shape[:1] != (b,):
            raise BatchError(f"params.{name}", f"has {value.shape[0] if value.dim() else 0} rows for a batch of {b}: "
                                               "params drawn for another batch? (aug.sample_params(batch, g))")
        if value.device != device:
            raise BatchError(f"params.{name}", f"on {value.device}, but the batch is on {device}; "
                                               "use params.to(batch.device)")


def sample_validity(batch: FaceBatch, box: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) bool on the batch's device, no host sync: no inf in any label (a NaN is a missing label), something to
    crop around with positive width and height (:func:`~gpuaug.crop.crop_boxes`: the box, else the annotated
    landmarks' extent, else with neither kind the whole frame; ``box`` when the caller has them), and a frame of
    at least 1 x 1 pixels."""
    ok = (batch.sizes > 0).all(1)
    for name in label_kinds(batch):
        ok &= ~torch.isinf(getattr(batch, name)).flatten(1).any(1)
    box = crop_boxes(batch.sizes, batch.bbox, batch.landmarks2d) if box is None else box
    return ok & (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])  # False for NaN


def _bad_value(labels: dict[str, np.ndarray], size: Sequence[int]) -> tuple[str, str] | None:
    """The first value problem of one sample's labels (those its data set has; field, message), or None."""
    for name, value in labels.items():
        if bad_values(name, value[None])[0]:
            return name, "contains inf (a missing label is NaN)"
    if min(size) < 1:
        return "pixels", f"frame size {tuple(int(v) for v in size)} is empty"
    lift = {k: torch.from_numpy(np.asarray(labels[k], dtype=np.float32))[None] if k in labels else None
            for k in ("bbox", "landmarks2d")}
    x0, y0, x1, y1 = crop_boxes(torch.tensor([list(size)]), lift["bbox"], lift["landmarks2d"])[0].tolist()
    if x1 > x0 and y1 > y0:
        return None
    if "bbox" in labels and np.isfinite(labels["bbox"]).all():
        return "bbox", f"{[float(v) for v in labels['bbox']]} has no positive width and height"
    if "landmarks2d" in labels and np.isfinite(labels["landmarks2d"]).all(-1).any():
        return "landmarks2d", "the annotated landmarks' extent (the crop, without a box) has no positive size"
    return ("bbox" if "bbox" in labels else "landmarks2d"), "nothing to crop around: no box and no annotated landmark"


def check_values(batch: FaceBatch) -> None:
    """Raise :class:`BatchError` for the first sample that :func:`sample_validity` rejects (reads the batch on
    the host: a sync on a GPU).

    Args:
        batch: a :class:`~gpuaug.FaceBatch`.
    """
    valid = sample_validity(batch).cpu()
    if bool(valid.all()):
        return
    i = int((~valid).nonzero()[0])
    labels = {k: getattr(batch, k)[i].cpu().numpy() for k in label_kinds(batch)}
    field, message = _bad_value(labels, batch.sizes[i].tolist()) or ("?", "rejected")
    raise BatchError(field, message, sample=i, key=tuple(batch.keys[i].tolist()))


def check_samples(samples: Sequence) -> None:
    """Raise :class:`BatchError` for the first malformed :class:`~gpuaug.FaceSample` (image (H, W, 3) uint8; the
    label kinds of the first sample, each of its shape for the first sample's landmark count; no inf, something
    to crop around)."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    kinds = label_kinds(samples[0])
    n_landmarks = next((len(getattr(samples[0], k)) for k in POINT_FIELDS if getattr(samples[0], k) is not None), 0)
    shapes = {k: v for k, v in label_shapes(n_landmarks).items() if k in kinds}
    for i, s in enumerate(samples):
        image = np.asarray(s.image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise BatchError("image", f"expected (H, W, 3) uint8, found {image.shape} {image.dtype}", i, s.key)
        if label_kinds(s) != kinds:
            name = next(k for k in set(kinds) ^ set(label_kinds(s)))
            have = "has" if getattr(s, name) is not None else "lacks"
            raise BatchError(name, f"this sample {have} it but sample 0 does not: the samples of a batch have the same "
                                   f"label kinds (sample 0: {', '.join(kinds) or 'none'}); mark a missing label of one "
                                   "sample with NaN", i, s.key)
        if s.labels.keys() != samples[0].labels.keys():
            raise BatchError("labels", f"this sample has labels of its own {sorted(s.labels)}, sample 0 has "
                                       f"{sorted(samples[0].labels)}: the samples of a batch have the same labels",
                             i, s.key)
        for name, value in s.labels.items():
            first = np.asarray(samples[0].labels[name])
            if np.shape(value) != first.shape or np.asarray(value).dtype.kind != first.dtype.kind:
                raise BatchError(f"labels.{name}", f"expected {first.dtype.kind}-kind values of shape {first.shape} "
                                                   f"(as sample 0), found {np.asarray(value).dtype} "
                                                   f"{np.shape(value)}", i, s.key)
            if np.isinf(np.asarray(value, dtype=np.float64)).any():
                raise BatchError(f"labels.{name}", "contains inf (a missing value is NaN)", i, s.key)
        labels = {k: np.asarray(getattr(s, k)) for k in shapes}
        for name, shape in shapes.items():
            if labels[name].shape != shape:
                raise BatchError(name, f"expected shape {shape}, found {labels[name].shape}", i, s.key)
        problem = _bad_value(labels, image.shape[:2])
        if problem is not None:
            raise BatchError(*problem, i, s.key)
