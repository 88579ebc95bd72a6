"""Read one face-multitask ``.npz`` video (seed layout, frames last) into frame-first arrays."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpuaug.errors import FaceDataError
from gpuaug.sample import bad_values

#: npz field -> expected shape with ``N`` for the frame count (seed layout, frames last) and ``K`` for the
#: landmark count (68 in the seed; any count, the same in both landmark fields and in every video of a directory).
SEED_FIELDS: dict[str, tuple[int | str, ...]] = {
    "colorImages": ("H", "W", 3, "N"),
    "boundingBox": (4, 2, "N"),
    "landmarks2D": ("K", 2, "N"),
    "landmarks3D": ("K", 3, "N"),
    "headPose": (3, "N"),
    "gazeVector": (3, "N"),
}
LABEL_FIELDS = ("boundingBox", "landmarks2D", "landmarks3D", "headPose", "gazeVector")


@dataclass(frozen=True)
class FrameProblem:
    """A frame that cannot be used, and why."""

    path: str
    frame: int
    kind: str  # "non-finite", "degenerate-bbox" or "bbox-outside-frame"
    detail: str

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class FaceVideo:
    """One video, frame-first.

    images (N, H, W, 3) uint8 RGB; bbox (N, 4) float32 [x0, y0, x1, y1] pixels;
    landmarks2d (N, K, 2) float32 (x, y) pixels (NaN: not annotated); landmarks3d (N, K, 3) float32 (x, y
    pixels, z relative depth in pixel units); head_pose (N, 3) float32 [yaw, pitch, roll] degrees; gaze (N, 3) float32
    [x right, y up, z toward the camera]. Pixel centres are at integer coordinates.
    """

    path: str
    images: np.ndarray
    bbox: np.ndarray
    landmarks2d: np.ndarray
    landmarks3d: np.ndarray
    head_pose: np.ndarray
    gaze: np.ndarray

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
    """K of a video's ``landmarks2D`` and ``landmarks3D`` (shapes as stored, frames last); FaceDataError when the
    two disagree or K is 0."""
    k2, k3 = shapes["landmarks2D"][0], shapes["landmarks3D"][0]
    if k2 != k3:
        raise FaceDataError(path, f"has {k3} points per frame, but landmarks2D has {k2}", "landmarks3D")
    if k2 == 0:
        raise FaceDataError(path, "zero landmarks per frame", "landmarks2D")
    return int(k2)


def check_frame_counts(path: str | Path, shapes: dict[str, tuple[int, ...]]) -> int:
    """The common frame count N (last axis) of all fields; raise if they disagree or N == 0."""
    counts = {field: shape[-1] for field, shape in shapes.items()}
    if len(set(counts.values())) != 1:
        raise FaceDataError(path, f"frame counts disagree (last axis): {counts}")
    n = next(iter(counts.values()))
    if n == 0:
        raise FaceDataError(path, "zero frames")
    return n


def labels_to_frame_first(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Seed label arrays (frames last) -> frame-first float32 arrays keyed by FaceVideo field names."""
    # Values beyond float32's range become inf (no warning): frame_problems then skips them as non-finite.
    with np.errstate(over="ignore"):
        corners = np.moveaxis(arrays["boundingBox"], -1, 0).astype(np.float32)  # (N, 4, 2)
        bbox = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)  # (N, 4) x0 y0 x1 y1
        return {
            "bbox": bbox,
            "landmarks2d": np.moveaxis(arrays["landmarks2D"], -1, 0).astype(np.float32),
            "landmarks3d": np.moveaxis(arrays["landmarks3D"], -1, 0).astype(np.float32),
            "head_pose": np.moveaxis(arrays["headPose"], -1, 0).astype(np.float32),
            "gaze": np.moveaxis(arrays["gazeVector"], -1, 0).astype(np.float32),
        }


def frame_problems(
    path: str, labels: dict[str, np.ndarray], frame_size: tuple[int, int]
) -> list[FrameProblem]:
    """Frames that cannot be used: non-finite labels (a NaN point is a point not annotated, not a problem; an
    inf is), a degenerate box, or a box outside the frame.

    ``labels`` are frame-first (see :func:`labels_to_frame_first`); ``frame_size`` is (H, W).
    """
    problems: list[FrameProblem] = []
    h, w = frame_size
    n = labels["bbox"].shape[0]
    finite = {k: ~bad_values(k, v) for k, v in labels.items()}  # NaN points: not annotated, not a problem
    box = labels["bbox"]
    for i in range(n):
        bad = [k for k, ok in finite.items() if not ok[i]]
        if bad:
            problems.append(FrameProblem(path, i, "non-finite", f"NaN/inf in {', '.join(bad)}"))
            continue
        x0, y0, x1, y1 = box[i]
        if x1 - x0 < 1.0 or y1 - y0 < 1.0:
            problems.append(FrameProblem(path, i, "degenerate-bbox", f"{box[i].tolist()} is under 1 px wide or high"))
        elif x1 < -0.5 or y1 < -0.5 or x0 > w - 0.5 or y0 > h - 0.5:
            problems.append(FrameProblem(path, i, "bbox-outside-frame", f"{box[i].tolist()} vs a {w}x{h} frame"))
    return problems


def read_video(path: str | Path) -> FaceVideo:
    """Read one seed-layout npz into a frame-first :class:`FaceVideo` (all frames, unfiltered).

    Raises :class:`FaceDataError` naming the file and field for a missing field, a wrong rank, shape or
    dtype, disagreeing frame counts, zero frames, or a truncated / non-zip file. Frame-level problems
    (non-finite labels, degenerate boxes) are not errors here: see :func:`frame_problems`.
    """
    path = Path(path)
    with _open_npz(path) as npz:
        arrays = {field: _read_field(npz, path, field) for field in SEED_FIELDS}
    for field, arr in arrays.items():
        check_field(path, field, arr.shape, arr.dtype)
    check_frame_counts(path, {f: a.shape for f, a in arrays.items()})
    landmark_count(path, {f: a.shape for f, a in arrays.items()})
    images = np.ascontiguousarray(np.moveaxis(arrays["colorImages"], -1, 0))
    return FaceVideo(path=str(path), images=images, **labels_to_frame_first(arrays))
