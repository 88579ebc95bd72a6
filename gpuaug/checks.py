"""Input checks: a batch's structure (always, from metadata alone) and its values (per sample).

Structure (dtypes, shapes, one device, landmark count) is read from tensor metadata, so checking it never
waits for a GPU; :func:`check_structure` raises :class:`~gpuaug.errors.BatchError` naming the field.
Values (finite labels, a box of positive size, a frame of at least 1 x 1 pixels) need the data:
:func:`sample_validity` computes a per-sample mask on the batch's device without a host sync (what
:class:`~gpuaug.FaceAugment` uses), :func:`check_values` and :func:`check_samples` raise on the host, naming
the sample (what ``collate`` uses on the CPU copy a loader builds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gpuaug.camera.sample import OCC
from gpuaug.errors import BatchError
from gpuaug.sample import POINT_FIELDS, bad_values, label_shapes


def check_structure(batch, n_landmarks: int) -> None:
    """Raise :class:`BatchError` unless ``batch`` (a :class:`~gpuaug.FaceBatch`) is well formed.

    pixels 1-D uint8 (float images are refused: their range is ambiguous); offsets, strides (B,) and sizes
    (B, 2), keys (B, 2) int64 (and windows (B, 4) int64 of a windowed batch); float32 labels of the shapes
    in :func:`label_shapes`; one device for all.
    """
    if batch.pixels.dtype != torch.uint8:
        raise BatchError("pixels", f"expected uint8 RGB bytes, found {batch.pixels.dtype}; convert float images "
                                   "in [0, 1] with (x * 255).round().to(torch.uint8)")
    if batch.pixels.dim() != 1:
        raise BatchError("pixels", f"expected a flat (N,) buffer, found shape {tuple(batch.pixels.shape)}; build "
                                   "batches with gpuaug.collate or FaceBatch.from_padded")
    if batch.offsets.dim() != 1:
        raise BatchError("offsets", f"expected shape (B,), found {tuple(batch.offsets.shape)}")
    points = batch.landmarks2d.shape
    if len(points) == 3 and points[2] == 2 and points[1] != n_landmarks:
        raise BatchError("landmarks2d", f"has {points[1]} landmarks per sample, but the flip table has "
                                        f"{n_landmarks}: give AugmentConfig(flip_table=...) the table of this layout "
                                        "(e.g. 'wflw98' for WFLW's 98 points, or your own)")
    b = batch.offsets.shape[0]
    expected = {"offsets": ((b,), torch.int64), "strides": ((b,), torch.int64), "sizes": ((b, 2), torch.int64),
                "keys": ((b, 2), torch.int64),
                **({"windows": ((b, 4), torch.int64)} if hasattr(batch, "windows") else {}),
                **{k: ((b, *s), torch.float32) for k, s in label_shapes(n_landmarks).items()}}
    for name, (shape, dtype) in expected.items():
        t = getattr(batch, name)
        if tuple(t.shape) != shape:
            raise BatchError(name, f"expected shape {shape}, found {tuple(t.shape)}")
        if t.dtype != dtype:
            raise BatchError(name, f"expected {dtype}, found {t.dtype}")
        if t.device != batch.pixels.device:
            raise BatchError(name, f"on {t.device}, but pixels are on {batch.pixels.device}; move the whole batch "
                                   "with batch.to(device)")


def check_matrix(batch, matrix: torch.Tensor) -> None:
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
    # A texture occluder's source is a row number of the batch. Out of range it would make the gather raise
    # deep inside, or abort the process in compiled code; CPU params are read without a sync (on a device
    # they are not read, and not inside a caller's compiled graph, which a data-dependent raise would break).
    source = params.occluders[..., OCC["source"]]
    if source.device.type == "cpu" and source.numel() and not torch.compiler.is_compiling():
        bad = (source < 0) | (source > b - 1)
        if bad.any():
            row = int(bad.any(1).nonzero()[0, 0])
            raise BatchError("params.occluders", f"row {row} has a texture source {int(source[bad][0])} outside the "
                                                 f"batch's rows 0..{b - 1}: slice params with params.rows(start, "
                                                 "stop), which re-numbers the sources")


def sample_validity(batch) -> torch.Tensor:
    """(B,) bool on the batch's device, no host sync: finite labels (a point may be NaN: not annotated; an inf
    is a bad value anywhere), a box of positive width and height, and a frame of at least 1 x 1 pixels."""
    finite = torch.ones(len(batch), dtype=torch.bool, device=batch.pixels.device)
    for name in label_shapes(batch.landmarks2d.shape[1]):
        value = getattr(batch, name).flatten(1)
        finite &= ~torch.isinf(value).any(1) if name in POINT_FIELDS else torch.isfinite(value).all(1)
    box = batch.bbox
    return finite & (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1]) & (batch.sizes > 0).all(1)


def _bad_value(labels: dict[str, np.ndarray], size: Sequence[int]) -> tuple[str, str] | None:
    """The first value problem of one sample's labels (field, message), or None."""
    for name, value in labels.items():
        if bad_values(name, value[None])[0]:
            return name, "contains inf" if name in POINT_FIELDS else "contains NaN or inf"
    x0, y0, x1, y1 = labels["bbox"]
    if not (x1 > x0 and y1 > y0):
        return "bbox", f"{[float(v) for v in labels['bbox']]} has no positive width and height"
    if min(size) < 1:
        return "pixels", f"frame size {tuple(int(v) for v in size)} is empty"
    return None


def check_values(batch) -> None:
    """Raise :class:`BatchError` for the first sample that :func:`sample_validity` rejects (reads the batch on
    the host: a sync on a GPU)."""
    valid = sample_validity(batch).cpu()
    if bool(valid.all()):
        return
    i = int((~valid).nonzero()[0])
    labels = {k: getattr(batch, k)[i].cpu().numpy() for k in label_shapes(batch.landmarks2d.shape[1])}
    field, message = _bad_value(labels, batch.sizes[i].tolist()) or ("?", "rejected")
    raise BatchError(field, message, sample=i, key=tuple(batch.keys[i].tolist()))


def check_samples(samples: Sequence) -> None:
    """Raise :class:`BatchError` for the first malformed :class:`~gpuaug.FaceSample` (image (H, W, 3) uint8,
    label shapes as the first sample's landmark count, finite values, a box of positive size)."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    n_landmarks = np.shape(samples[0].landmarks2d)[0]
    shapes = label_shapes(n_landmarks)
    for i, s in enumerate(samples):
        image = np.asarray(s.image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise BatchError("image", f"expected (H, W, 3) uint8, found {image.shape} {image.dtype}", i, s.key)
        labels = {k: np.asarray(getattr(s, k)) for k in shapes}
        for name, shape in shapes.items():
            if labels[name].shape != shape:
                raise BatchError(name, f"expected shape {shape}, found {labels[name].shape}", i, s.key)
        problem = _bad_value(labels, image.shape[:2])
        if problem is not None:
            raise BatchError(*problem, i, s.key)
