"""``FaceFrames``: a map-style dataset over every usable frame of every video."""

from __future__ import annotations

import bisect
import logging
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch.utils.data

from gpuaug.errors import FaceDataError
from gpuaug.load.video import (
    LABEL_FIELDS,
    SEED_FIELDS,
    FaceVideo,
    FrameProblem,
    _open_npz,
    _read_field,
    check_field,
    check_frame_counts,
    frame_problems,
    labels_to_frame_first,
    read_video,
)

Policy = Literal["skip", "error"]
_log = logging.getLogger("gpuaug")


@dataclass(frozen=True)
class FaceSample:
    """One frame and its labels (frame-first numpy, see :class:`~gpuaug.load.video.FaceVideo`).

    ``key`` is (video number, frame number in that video) for tracing a sample back to its file.
    """

    image: np.ndarray
    bbox: np.ndarray
    landmarks2d: np.ndarray
    landmarks3d: np.ndarray
    head_pose: np.ndarray
    gaze: np.ndarray
    key: tuple[int, int]


@dataclass(frozen=True)
class VideoIndex:
    """What indexing one file found: its usable frame numbers and the frames it skipped."""

    path: str
    frame_size: tuple[int, int]
    frames: np.ndarray  # (n_usable,) int64
    skipped: tuple[FrameProblem, ...]


def _image_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of ``colorImages`` read from its .npy header only (no full decode)."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open("colorImages.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else (
                np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(f)
    except KeyError:
        raise FaceDataError(path, "missing", "colorImages") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FaceDataError(path, f"unreadable .npy header: {exc}", "colorImages") from exc
    return tuple(shape), np.dtype(dtype)


def index_video(path: str | Path) -> VideoIndex:
    """Validate one file from its image header and its (small) label arrays; list usable frames."""
    path = Path(path)
    with _open_npz(path) as npz:
        missing = [f for f in SEED_FIELDS if f not in npz.files]
        if missing:
            raise FaceDataError(path, f"missing (the file has {sorted(npz.files)})", missing[0])
        labels = {field: _read_field(npz, path, field) for field in LABEL_FIELDS}
    image_shape, image_dtype = _image_header(path)
    check_field(path, "colorImages", image_shape, image_dtype)
    for field, arr in labels.items():
        check_field(path, field, arr.shape, arr.dtype)
    n = check_frame_counts(path, {"colorImages": image_shape, **{f: a.shape for f, a in labels.items()}})
    frame_size = (int(image_shape[0]), int(image_shape[1]))
    problems = frame_problems(str(path), labels_to_frame_first(labels), frame_size)
    bad = {p.frame for p in problems}
    frames = np.array([i for i in range(n) if i not in bad], dtype=np.int64)
    return VideoIndex(str(path), frame_size, frames, tuple(problems))


def list_videos(paths_or_directory: str | Path | Iterable[str | Path]) -> list[Path]:
    """A directory -> its ``*.npz`` files (sorted, recursive); a path or a list of paths -> themselves.

    Files in a directory that are not ``.npz`` are ignored (they are not videos), but an explicitly named
    path is always read, so a wrong file there gets its error.
    """
    if isinstance(paths_or_directory, (str, Path)):
        p = Path(paths_or_directory)
        if p.is_dir():
            files = sorted(p.rglob("*.npz"))
            if not files:
                raise FaceDataError(p, "directory contains no .npz files")
            return files
        return [p]
    files = [Path(p) for p in paths_or_directory]
    if not files:
        raise ValueError("no video paths given")
    return files


class FrameSource(Protocol):
    """Where :class:`FaceFrames` reads: one :class:`VideoIndex` per video and any usable frame of one."""

    videos: list[VideoIndex]

    def sample(self, video: int, position: int) -> FaceSample:
        """Usable frame number ``position`` (0-based, skipped frames not counted) of video ``video``."""
        ...


class NpzSource:
    """Seed-layout npz files: indexed from headers and labels; a video's pixels are decoded on first use
    and kept in a small per-process LRU cache (``cache_videos`` decoded videos)."""

    def __init__(self, files: Iterable[Path], cache_videos: int = 2) -> None:
        self.videos: list[VideoIndex] = [index_video(p) for p in files]
        self._cache: OrderedDict[int, FaceVideo] = OrderedDict()
        self._cache_videos = max(1, int(cache_videos))

    def __getstate__(self) -> dict:
        # DataLoader workers started by spawn get the dataset pickled: send the index, not decoded pixels.
        return {**self.__dict__, "_cache": OrderedDict()}

    def _video(self, v: int) -> FaceVideo:
        if v in self._cache:
            self._cache.move_to_end(v)
            return self._cache[v]
        video = read_video(self.videos[v].path)
        self._cache[v] = video
        while len(self._cache) > self._cache_videos:
            self._cache.popitem(last=False)
        return video

    def sample(self, video: int, position: int) -> FaceSample:
        f = int(self.videos[video].frames[position])
        data = self._video(video)
        return FaceSample(
            image=data.images[f],
            bbox=data.bbox[f],
            landmarks2d=data.landmarks2d[f],
            landmarks3d=data.landmarks3d[f],
            head_pose=data.head_pose[f],
            gaze=data.gaze[f],
            key=(video, f),
        )


def open_source(
    paths_or_directory: str | Path | Sequence[str | Path], cache_videos: int = 2, progress: bool | None = None
) -> FrameSource:
    """A packed directory (``python -m gpuaug pack``) -> its reader; else npz files (:func:`list_videos`)."""
    if isinstance(paths_or_directory, (str, Path)):
        from gpuaug.load.packed import PackedSource, is_packed  # packed.py imports this module

        if is_packed(paths_or_directory):
            return PackedSource(paths_or_directory)
    files = list_videos(paths_or_directory)
    if progress is not False:
        from tqdm.auto import tqdm

        # None: a bar only on a terminal (tqdm's disable=None), so logs and tests stay clean.
        files = tqdm(files, desc="indexing videos", unit="file", disable=None if progress is None else False)
    return NpzSource(files, cache_videos)


class FaceFrames(torch.utils.data.Dataset):
    """Every usable frame of every video, indexed lazily, from npz files or a packed directory.

    npz: indexing reads each file's image header and label arrays (small), never its pixels; a video's
    pixels are decoded on first use and kept in a small per-process LRU cache, so
    ``DataLoader(num_workers>0)`` gives each worker its own cache. Packed (``python -m gpuaug pack``):
    frames are memory-mapped. Both give identical samples and keys. Works with any sampler
    (``DistributedSampler`` included).

    Args:
        paths_or_directory: a packed directory (it has ``index.json``), a directory (searched recursively
            for ``*.npz``; other files are ignored), one npz file, or a list of npz files.
        policy: ``"skip"`` (default) skips and counts frames with non-finite labels or a degenerate or
            out-of-frame box; ``"error"`` raises :class:`FaceDataError` for the first such frame.
        cache_videos: decoded videos kept per process (npz only).
        progress: progress bar while indexing npz files; None (default) shows it on a terminal only.

    Attributes:
        skipped: every skipped frame with its file, frame number and reason.
    """

    def __init__(
        self,
        paths_or_directory: str | Path | Sequence[str | Path],
        policy: Policy = "skip",
        cache_videos: int = 2,
        progress: bool | None = None,
    ) -> None:
        if policy not in ("skip", "error"):
            raise ValueError(f"policy must be 'skip' or 'error', got {policy!r}")
        self.source = open_source(paths_or_directory, cache_videos, progress)
        self.videos: list[VideoIndex] = self.source.videos
        self.skipped: list[FrameProblem] = [p for v in self.videos for p in v.skipped]
        if policy == "error" and self.skipped:
            first = self.skipped[0]
            raise FaceDataError(first.path, f"frame {first.frame}: {first.reason}")
        self._starts = np.cumsum([0] + [len(v.frames) for v in self.videos]).tolist()
        if self.skipped:
            _log.warning("%s (details: FaceFrames.skipped)", self.skip_report())

    def __len__(self) -> int:
        return self._starts[-1]

    def _position(self, index: int) -> tuple[int, int]:
        """Dataset index -> (video number, usable-frame position in that video)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        v = bisect.bisect_right(self._starts, index) - 1
        return v, index - self._starts[v]

    def locate(self, index: int) -> tuple[int, int]:
        """Dataset index -> (video number, frame number in that video)."""
        v, i = self._position(index)
        return v, int(self.videos[v].frames[i])

    def __getitem__(self, index: int) -> FaceSample:
        return self.source.sample(*self._position(int(index)))

    def skip_report(self) -> str:
        """Human-readable summary of what was skipped and why."""
        total = len(self) + len(self.skipped)
        if not self.skipped:
            return f"{len(self)} frames from {len(self.videos)} videos, none skipped"
        reasons = Counter(p.kind for p in self.skipped)
        lines = [f"{len(self)} of {total} frames usable; skipped {len(self.skipped)}:"]
        lines += [f"  {count} x {reason}" for reason, count in reasons.most_common()]
        return "\n".join(lines)
