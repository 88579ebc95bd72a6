"""npz videos (the face multitask data set's layout) as a frame source: find the files, index them from
headers and labels, read frames through a small per-process cache of decoded videos."""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from gpuaug.errors import FaceDataError
from gpuaug.load.sample import VideoIndex, check_layouts
from gpuaug.load.video import (
    KIND_OF_FIELD,
    LABEL_FIELDS,
    FaceVideo,
    _open_npz,
    _read_field,
    check_field,
    check_frame_counts,
    custom_to_frame_first,
    frame_problems,
    labels_to_frame_first,
    landmark_count,
    read_custom,
    read_video,
)
from gpuaug.sample import FaceSample, label_kinds


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


def index_video(path: str | Path, labels: Sequence[str] = ()) -> VideoIndex:
    """Validate one file from its image header and its (small) label arrays, those it has, and the fields
    ``labels`` (labels of your own); list usable frames."""
    path = Path(path)
    with _open_npz(path) as npz:
        if "colorImages" not in npz.files:
            raise FaceDataError(path, f"missing (the file has {sorted(npz.files)})", "colorImages")
        fields = {field: _read_field(npz, path, field) for field in LABEL_FIELDS if field in npz.files}
        custom = read_custom(npz, path, labels)
    image_shape, image_dtype = _image_header(path)
    check_field(path, "colorImages", image_shape, image_dtype)
    for field, arr in fields.items():
        check_field(path, field, arr.shape, arr.dtype)
    n = check_frame_counts(path, {"colorImages": image_shape, **{f: a.shape for f, a in {**fields, **custom}.items()}})
    landmarks = landmark_count(path, {f: a.shape for f, a in fields.items()})
    frame_size = (int(image_shape[0]), int(image_shape[1]))
    custom = custom_to_frame_first(custom)
    problems = frame_problems(str(path), labels_to_frame_first(fields), frame_size, n, custom)
    bad = {p.frame for p in problems}
    frames = np.array([i for i in range(n) if i not in bad], dtype=np.int64)
    kinds = tuple(KIND_OF_FIELD[f] for f in LABEL_FIELDS if f in fields)
    shapes = {name: (tuple(a.shape[1:]), a.dtype.name) for name, a in custom.items()}
    return VideoIndex(str(path), frame_size, frames, tuple(problems), landmarks, kinds, shapes)


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


class NpzSource:
    """npz videos: indexed from headers and labels; a video's pixels are decoded on first use
    and kept in a small per-process LRU cache (``cache_videos`` decoded videos)."""

    def __init__(self, files: Iterable[Path], cache_videos: int = 2, labels: Sequence[str] = ()) -> None:
        self.labels = tuple(labels)
        self.videos: list[VideoIndex] = [index_video(p, self.labels) for p in files]
        check_layouts(self.videos)
        self._cache: OrderedDict[int, FaceVideo] = OrderedDict()
        self._cache_videos = max(1, int(cache_videos))

    def __getstate__(self) -> dict:
        # DataLoader workers started by spawn get the dataset pickled: send the index, not decoded pixels.
        return {**self.__dict__, "_cache": OrderedDict()}

    def _video(self, v: int) -> FaceVideo:
        if v in self._cache:
            self._cache.move_to_end(v)
            return self._cache[v]
        video = read_video(self.videos[v].path, self.labels)
        self._cache[v] = video
        while len(self._cache) > self._cache_videos:
            self._cache.popitem(last=False)
        return video

    def sample(self, video: int, position: int) -> FaceSample:
        """Usable frame number ``position`` (0-based, skipped frames not counted) of video ``video``."""
        f = int(self.videos[video].frames[position])
        data = self._video(video)
        return FaceSample(image=data.images[f], key=(video, f), labels={k: v[f] for k, v in data.labels.items()},
                          **{k: getattr(data, k)[f] for k in label_kinds(data)})
