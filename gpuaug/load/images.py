"""Still images with their labels as a frame source: each image is a video of one frame.

The public data sets (300W, WFLW, 300W-LP, AFLW2000) ship one image per face with its annotation beside it; a
reader (:mod:`gpuaug.datasets`) parses the annotations into :class:`ImageEntry` records and hands them to
:class:`ImageSource`, which :class:`~gpuaug.FaceFrames` reads like npz videos: the same samples, keys
``(image number, 0)``, skip report, ``DataLoader`` + ``gpuaug.collate``, and packing (``python -m gpuaug pack
--format ...``) for the stream loader.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gpuaug.errors import FaceDataError
from gpuaug.load.packed import PackItem
from gpuaug.load.sample import VideoIndex, check_layouts
from gpuaug.load.video import FaceVideo, frame_problems
from gpuaug.sample import LABEL_FIELDS, FaceSample


@dataclass(frozen=True)
class ImageEntry:
    """One annotated image: its file, the label kinds its data set has (FaceSample field names, per-frame
    shapes: bbox (4,) [x0, y0, x1, y1], landmarks2d (K, 2), landmarks3d (K, 3), head_pose (3,) [yaw, pitch, roll]
    degrees, gaze (3,); gpuaug's conventions, float32, NaN for a missing value), labels of your own by name, and
    the annotation file(s) it came from (their bytes count in the pack's change check); ``name``: what reports
    and the audit call it (default the image's path; a set with several faces per image names each face)."""

    image: Path
    labels: dict[str, np.ndarray]
    custom: dict[str, np.ndarray] = field(default_factory=dict)
    sources: tuple[Path, ...] = ()
    name: str = ""


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the image's header (no decode); FaceDataError naming the file when it is not an image."""
    try:
        with Image.open(path) as im:
            return int(im.height), int(im.width)
    except FileNotFoundError:
        raise FaceDataError(path, "no such image (named by its annotation)") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise FaceDataError(path, f"not a readable image: {exc}") from exc


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; FaceDataError naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise FaceDataError(path, f"not a readable image: {exc}") from exc


class ImageSource:
    """A :class:`~gpuaug.load.frames.FrameSource` over annotated still images, one "video" of one frame each.

    Indexing reads each image's header only (its size); pixels are decoded per sample. The images of one source
    have the same label kinds, landmark count and labels of your own (FaceDataError naming the first that
    differs). A frame with a label problem (an inf, nothing to crop around, a box outside the image) is skipped
    with its reason, as for npz videos."""

    def __init__(self, entries: Sequence[ImageEntry], progress: bool | None = None) -> None:
        from tqdm.auto import tqdm

        self.entries = list(entries)
        if not self.entries:
            raise FaceDataError("", "no annotated images found")
        self.videos: list[VideoIndex] = [
            self._index(e) for e in tqdm(self.entries, desc="indexing images", unit="image",
                                         disable=None if progress is None else not progress)]
        check_layouts(self.videos)

    @staticmethod
    def _index(entry: ImageEntry) -> VideoIndex:
        size = _image_size(entry.image)
        labels = {k: np.asarray(v, dtype=np.float32)[None] for k, v in entry.labels.items()}
        custom = {k: np.asarray(v)[None] for k, v in entry.custom.items()}
        name = entry.name or str(entry.image)
        problems = frame_problems(name, labels, size, 1, custom)
        points = [v.shape[1] for k, v in labels.items() if k in ("landmarks2d", "landmarks3d")]
        kinds = tuple(k for k in LABEL_FIELDS if k in labels)
        shapes = {k: (tuple(v.shape[1:]), v.dtype.name) for k, v in custom.items()}
        frames = np.zeros(0 if problems else 1, dtype=np.int64)
        return VideoIndex(name, size, frames, tuple(problems), points[0] if points else 0, kinds, shapes)

    def video(self, video: int) -> FaceVideo:
        """Image ``video`` as a one-frame :class:`~gpuaug.load.video.FaceVideo` (for packing)."""
        e = self.entries[video]
        image = read_image(e.image)
        if image.shape[:2] != self.videos[video].frame_size:
            raise FaceDataError(e.image, f"changed since it was indexed: {image.shape[:2]} pixels, was "
                                         f"{self.videos[video].frame_size}")
        labels = {k: np.asarray(v, dtype=np.float32)[None] for k, v in e.labels.items()}
        custom = {k: np.asarray(v)[None] for k, v in e.custom.items()}
        return FaceVideo(str(e.image), image[None], labels=custom, **labels)

    def source_bytes(self, video: int) -> int:
        """Bytes of the image and its annotation files: what the packer's change check compares."""
        e = self.entries[video]
        return sum(p.stat().st_size for p in (e.image, *e.sources))

    def sample(self, video: int, position: int) -> FaceSample:
        if position != 0 or not len(self.videos[video].frames):
            raise IndexError(f"image {video} has no usable frame {position}")
        v = self.video(video)
        return FaceSample(image=v.images[0], key=(video, 0), labels={k: a[0] for k, a in v.labels.items()},
                          **{k: getattr(v, k)[0] for k in self.videos[video].kinds})


def image_items(source: ImageSource, root: str | Path) -> list[PackItem]:
    """``source``'s images as :class:`~gpuaug.load.packed.PackItem` for :func:`~gpuaug.load.packed.pack_items`:
    named by their path under ``root`` and their number (an image with several faces is several items)."""
    return [PackItem(f"{Path(os.path.relpath(entry.image, root)).as_posix()}#{i}", entry.image,
                     source.source_bytes(i), partial(source.videos.__getitem__, i), partial(source.video, i))
            for i, entry in enumerate(source.entries)]
