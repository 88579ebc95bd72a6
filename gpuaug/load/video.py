"""Read one face-multitask ``.npz`` video (the face multitask data set's layout, frames last) into
frame-first arrays."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np
import torch

from gpuaug.crop import crop_boxes
from gpuaug.errors import FaceDataError
from gpuaug.sample import bad_values

#: npz field -> expected shape with ``N`` for the frame count (frames last) and ``K`` for the
#: landmark count (68 in the seed; any count, the same in both landmark fields and in every video of a directory).
#: ``colorImages`` is required; a video has any subset of the label fields (the same in every video of a directory).
SEED_FIELDS: dict[str, tuple[int | str, ...]] = {
    "colorImages": ("H", "W", 3, "N"),
    "boundingBox": (4, 2, "N"),
    "landmarks2D": ("K", 2, "N"),
    "landmarks3D": ("K", 3, "N"),
    "headPose": (3, "N"),
    "gazeVector": (3, "N"),
}
LABEL_FIELDS = ("boundingBox", "landmarks2D", "landmarks3D", "headPose", "gazeVector")
#: npz label field -> the FaceVideo / FaceSample field it loads into.
KIND_OF_FIELD = dict(zip(LABEL_FIELDS, ("bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze"), strict=True))


@dataclass(frozen=True)
class FrameProblem:
    """A frame that cannot be used, and why.

    Args:
        path: its video's file.
        frame: its frame number in that video.
        kind: "non-finite", "degenerate-bbox", "bbox-outside-frame", "no-crop" or "audit".
        detail: what was found.
    """

    path: str
    frame: int
    kind: str  # "non-finite", "degenerate-bbox", "bbox-outside-frame", "no-crop" or "audit" (a report's flags)
    detail: str

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class FaceVideo:
    """One video, frame-first, with the labels its file has (None for a field it lacks). Pixel centres are at
    integer coordinates; NaN: a missing label (a point not annotated, a frame without its box, pose or gaze).

    Args:
        path: the file.
        images: (N, H, W, 3) uint8 RGB.
        bbox: (N, 4) float32 [x0, y0, x1, y1] pixels.
        landmarks2d: (N, K, 2) float32 (x, y) pixels.
        landmarks3d: (N, K, 3) float32 (x, y pixels, z relative depth in pixel units).
        head_pose: (N, 3) float32 [yaw, pitch, roll] degrees.
        gaze: (N, 3) float32 [x right, y up, z toward the camera].
        labels: the labels of your own asked for, by field name, frame-first: (N, ...) float32, or int64 for
            integer fields.
    """

    path: str
    images: np.ndarray
    bbox: np.ndarray | None = None
    landmarks2d: np.ndarray | None = None
    landmarks3d: np.ndarray | None = None
    head_pose: np.ndarray | None = None
    gaze: np.ndarray | None = None
    labels: dict[str, np.ndarray] = dataclass_field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every frame."""
        return int(self.images.shape[1]), int(self.images.shape[2])


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    if not path.exists():
        raise FaceDataError(path, "no such file")
    if path.stat().st_size == 0:
        raise FaceDataError(path, "empty file (0 bytes), expected an .npz archive")
    if not zipfile.is_zipfile(path):
        raise FaceDataError(path, "not a zip/npz archive (truncated or wrong format)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FaceDataError(path, f"cannot open as npz: {exc}") from exc


def _read_field(npz: np.lib.npyio.NpzFile, path: Path, field: str) -> np.ndarray:
    if field not in npz.files:
        raise FaceDataError(path, f"missing (the file has {sorted(npz.files)})", field)
    try:
        arr = npz[field]
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # object arrays need pickle, which is never enabled (unsafe)
            raise FaceDataError(path, f"expected a numeric array, got an object array: {exc}", field) from exc
        raise FaceDataError(path, f"truncated or corrupt data: {exc}", field) from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FaceDataError(path, f"truncated or corrupt data: {exc}", field) from exc
    if not isinstance(arr, np.ndarray):  # NpzFile hands back the raw bytes of a member that is not .npy
        raise FaceDataError(path, "expected an .npy array, got a member without the .npy header", field)
    return arr


def check_field(path: str | Path, field: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Validate one seed field's shape and dtype (without its frame count); raise FaceDataError."""
    expected = SEED_FIELDS[field]
    shown = "(" + ", ".join(str(e) for e in expected) + ")"
    if len(shape) != len(expected):
        raise FaceDataError(path, f"expected rank {len(expected)} {shown}, got shape {shape}", field)
    for want, got in zip(expected, shape, strict=True):
        if isinstance(want, int) and want != got:
            raise FaceDataError(path, f"expected shape {shown}, got {shape}", field)
    if field == "colorImages":
        if dtype != np.uint8:
            raise FaceDataError(path, f"expected dtype uint8, got {dtype}", field)
        if shape[0] == 0 or shape[1] == 0:
            raise FaceDataError(path, f"zero-size frames: shape {shape}", field)
    elif dtype.kind not in "fiu":
        raise FaceDataError(path, f"expected a real numeric dtype, got {dtype}", field)


def landmark_count(path: str | Path, shapes: dict[str, tuple[int, ...]]) -> int:
    """K of a video's ``landmarks2D`` and ``landmarks3D`` (shapes as stored, frames last; those it has), 0 with
    neither; FaceDataError when the two disagree or K is 0."""
    counts = {f: shapes[f][0] for f in ("landmarks2D", "landmarks3D") if f in shapes}
    if len(set(counts.values())) > 1:
        raise FaceDataError(path, f"has {counts['landmarks3D']} points per frame, but landmarks2D has "
                                  f"{counts['landmarks2D']}", "landmarks3D")
    for field, k in counts.items():
        if k == 0:
            raise FaceDataError(path, "zero landmarks per frame", field)
    return int(next(iter(counts.values()), 0))


def check_frame_counts(path: str | Path, shapes: dict[str, tuple[int, ...]]) -> int:
    """The common frame count N (last axis) of all fields; raise if they disagree or N == 0."""
    counts = {field: shape[-1] for field, shape in shapes.items()}
    if len(set(counts.values())) != 1:
        raise FaceDataError(path, f"frame counts disagree (last axis): {counts}")
    n = next(iter(counts.values()))
    if n == 0:
        raise FaceDataError(path, "zero frames")
    return n


def custom_to_frame_first(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Labels of your own (frames last) -> frame-first arrays: float32, or int64 for integer and bool fields
    (a class index never goes through a float)."""
    with np.errstate(over="ignore"):
        return {name: np.moveaxis(a, -1, 0).astype(np.int64 if a.dtype.kind in "iub" else np.float32)
                for name, a in arrays.items()}


def read_custom(npz: np.lib.npyio.NpzFile, path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The fields ``names`` (labels of your own, frames last) of an open npz, checked numeric; FaceDataError
    naming the file and field for one it lacks."""
    out = {}
    for name in names:
        if name not in npz.files:
            raise FaceDataError(path, f"missing: a label of your own asked for (the file has {sorted(npz.files)})",
                                name)
        out[name] = _read_field(npz, path, name)
        if out[name].dtype.kind not in "fiub" or out[name].ndim < 1:
            raise FaceDataError(path, f"expected a numeric array with frames last, got {out[name].dtype} of shape "
                                      f"{out[name].shape}", name)
    return out


def labels_to_frame_first(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Seed label arrays (frames last; those a video has) -> frame-first float32 arrays keyed by FaceVideo field
    names."""
    out = {}
    # Values beyond float32's range become inf (no warning): frame_problems then skips them as non-finite.
    with np.errstate(over="ignore"):
        for field, kind in KIND_OF_FIELD.items():
            if field in arrays:
                out[kind] = np.moveaxis(arrays[field], -1, 0).astype(np.float32)
        if "bbox" in out:  # (N, 4, 2) corners -> (N, 4) x0 y0 x1 y1 (a NaN corner: a NaN box)
            corners = out["bbox"]
            out["bbox"] = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    return out


def frame_problems(
    path: str, labels: dict[str, np.ndarray], frame_size: tuple[int, int], frames: int,
    custom: dict[str, np.ndarray] | None = None,
) -> list[FrameProblem]:
    """Frames that cannot be used: an inf in a label (a NaN is a missing label, not a problem), nothing to crop
    around (no box and no annotated landmark, in a video with either kind), a crop box (the box, else the
    annotated landmarks' extent: :func:`~gpuaug.crop.crop_boxes`) under 1 px wide or high, or one outside the
    frame.

    ``labels`` are frame-first (see :func:`labels_to_frame_first`; the fields the video has); ``frame_size`` is
    (H, W); ``frames`` is N; ``custom``: labels of your own, frame-first (an inf there too).
    """
    problems: list[FrameProblem] = []
    h, w = frame_size
    inf = {k: bad_values(k, v) for k, v in {**labels, **(custom or {})}.items()}
    lift = {k: torch.from_numpy(labels[k]) if k in labels else None for k in ("bbox", "landmarks2d")}
    crops = crop_boxes(torch.tensor([[h, w]]).expand(frames, 2), lift["bbox"], lift["landmarks2d"]).numpy()
    boxed = np.isfinite(labels["bbox"]).all(1) if "bbox" in labels else np.zeros(frames, bool)
    for i in range(frames):
        bad = [k for k, rows in inf.items() if rows[i]]
        if bad:
            problems.append(FrameProblem(path, i, "non-finite", f"inf in {', '.join(bad)} (a missing label is NaN)"))
            continue
        x0, y0, x1, y1 = crops[i]
        what = f"{labels['bbox'][i].tolist()}" if boxed[i] else f"the annotated landmarks' extent {crops[i].tolist()}"
        if not np.isfinite(crops[i]).all():
            problems.append(FrameProblem(path, i, "no-crop", "no box and no annotated landmark to crop around"))
        elif x1 - x0 < 1.0 or y1 - y0 < 1.0:
            problems.append(FrameProblem(path, i, "degenerate-bbox", f"{what} is under 1 px wide or high"))
        elif x1 < -0.5 or y1 < -0.5 or x0 > w - 0.5 or y0 > h - 0.5:
            problems.append(FrameProblem(path, i, "bbox-outside-frame", f"{what} vs a {w}x{h} frame"))
    return problems


def read_video(path: str | Path, labels: Sequence[str] = ()) -> FaceVideo:
    """Read one npz video (the face multitask data set's layout) into a frame-first :class:`FaceVideo` (all
    frames, unfiltered).

    Any subset of the label fields (``colorImages`` is required); the labels it lacks are None. Raises
    :class:`FaceDataError` naming the file and field for a missing ``colorImages``, a wrong rank, shape or
    dtype, disagreeing frame counts, zero frames, or a truncated / non-zip file. Frame-level problems (an inf,
    degenerate boxes) are not errors here: see :func:`frame_problems`.

    Args:
        path: the ``.npz`` file.
        labels: fields holding labels of your own to read too (frames last), into ``FaceVideo.labels``.
    """
    path = Path(path)
    with _open_npz(path) as npz:
        fields = ["colorImages", *(f for f in LABEL_FIELDS if f in npz.files)]
        arrays = {field: _read_field(npz, path, field) for field in fields}
        custom = read_custom(npz, path, labels)
    for field, arr in arrays.items():
        check_field(path, field, arr.shape, arr.dtype)
    check_frame_counts(path, {f: a.shape for f, a in {**arrays, **custom}.items()})
    landmark_count(path, {f: a.shape for f, a in arrays.items()})
    images = np.ascontiguousarray(np.moveaxis(arrays["colorImages"], -1, 0))
    return FaceVideo(path=str(path), images=images, labels=custom_to_frame_first(custom),
                     **labels_to_frame_first(arrays))
