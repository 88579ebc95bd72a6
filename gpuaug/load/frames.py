"""``FaceFrames``: a map-style dataset over every usable frame of every video, npz or packed."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch.utils.data

from gpuaug.batch import FaceBatch, Window, WindowedBatch, collate
from gpuaug.errors import FaceDataError
from gpuaug.load.exclude import exclude_frames, read_flags
from gpuaug.load.npz_source import NpzSource, list_videos
from gpuaug.load.packed import PackedSource, is_packed
from gpuaug.load.sample import VideoIndex
from gpuaug.load.video import FrameProblem
from gpuaug.sample import FaceSample

__all__ = ["FaceFrames", "FrameSource", "open_source"]

Policy = Literal["skip", "error"]
_log = logging.getLogger("gpuaug")


class FrameSource(Protocol):
    """Where :class:`FaceFrames` reads: one :class:`VideoIndex` per video and any usable frame of one."""

    videos: list[VideoIndex]

    def sample(self, video: int, position: int) -> FaceSample:
        """Usable frame number ``position`` (0-based, skipped frames not counted) of video ``video``."""
        ...


def open_source(
    paths_or_directory: str | Path | Sequence[str | Path] | FrameSource, cache_videos: int = 2,
    progress: bool | None = None, mapped: bool = False, labels: Sequence[str] = (),
) -> FrameSource:
    """A packed directory (``python -m gpuaug pack``) -> its reader (``mapped``: see
    :class:`~gpuaug.load.packed.PackedSource`; its labels of your own are those it was packed with, and
    ``labels``, when given, must name them); else npz files (:func:`list_videos`; ``mapped`` is refused;
    ``labels``: the fields holding labels of your own to read); a frame source already made (the readers of
    :mod:`gpuaug.datasets`) -> itself."""
    if hasattr(paths_or_directory, "videos") and hasattr(paths_or_directory, "sample"):
        return paths_or_directory
    if isinstance(paths_or_directory, (str, Path)) and is_packed(paths_or_directory):
        source = PackedSource(paths_or_directory, mapped)
        if labels and tuple(labels) != source.label_names:
            raise FaceDataError(paths_or_directory, f"was packed with the labels of your own {source.label_names}, "
                                                    f"not {tuple(labels)}: pack again with --labels")
        return source
    if mapped:
        raise ValueError(f"mapped=True reads packed directories through memory maps; {paths_or_directory} is not "
                         "one (npz files are decoded): pack it with `python -m gpuaug pack SRC DST`")
    files = list_videos(paths_or_directory)
    if progress is not False:
        from tqdm.auto import tqdm

        # None: a bar only on a terminal (tqdm's disable=None), so logs and tests stay clean.
        files = tqdm(files, desc="indexing videos", unit="file", disable=None if progress is None else False)
    return NpzSource(files, cache_videos, labels)


class FaceFrames(torch.utils.data.Dataset):
    """Every usable frame of every video, indexed lazily, from npz files or a packed directory.

    npz: indexing reads each file's image header and label arrays (small), never its pixels; a video's
    pixels are decoded on first use and kept in a small per-process LRU cache, so
    ``DataLoader(num_workers>0)`` gives each worker its own cache. Packed (``python -m gpuaug pack``):
    frames are read from the files (``pread``, no memory map) for each batch, so a file truncated under a reader
    is a :class:`FaceDataError` naming it, not a crash (:class:`~gpuaug.load.packed.PackedSource` says what a
    file changed in other ways gives). Both give identical samples, batches and keys. Works with any sampler
    (``DistributedSampler`` included).

    ``DataLoader`` fetches a whole batch through :meth:`__getitems__`, which returns a
    :class:`~gpuaug.FaceBatch` (see :meth:`batch`), so its ``collate_fn`` receives that batch:
    ``gpuaug.collate`` passes it through; another collate_fn must accept a FaceBatch.

    Args:
        paths_or_directory: a packed directory (it has ``index.json``), a directory (searched recursively
            for ``*.npz``; other files are ignored), one npz file, a list of npz files, or a frame source (what
            the readers of :mod:`gpuaug.datasets` make: annotated still images).
        policy: ``"skip"`` (default) skips and counts frames with non-finite labels or a degenerate or
            out-of-frame box; ``"error"`` raises :class:`FaceDataError` for the first such frame.
        cache_videos: decoded videos kept per process (npz only).
        progress: progress bar while indexing npz files; None (default) shows it on a terminal only.
        mapped: packed only: copy pixels from memory maps instead of ``pread`` (faster window reads, but a file
            truncated while it is read kills the process with SIGBUS: see
            :class:`~gpuaug.load.packed.PackedSource`); for data nothing writes while it is read.
        labels: npz fields holding labels of your own to read (e.g. ``("blendshapes",)``: (D, N) float, or (N,)
            integer classes), into each sample's ``labels``; a packed directory has those it was packed with.
        exclude: a label audit's report folder (or its ``audit.csv``, ``python -m gpuaug audit``): its flagged
            frames are left out, each in ``skipped`` with the audit's reasons.

    Attributes:
        skipped: every skipped frame with its file, frame number and reason.
    """

    def __init__(
        self,
        paths_or_directory: str | Path | Sequence[str | Path] | FrameSource,
        policy: Policy = "skip",
        cache_videos: int = 2,
        progress: bool | None = None,
        mapped: bool = False,
        labels: Sequence[str] = (),
        exclude: str | Path | None = None,
    ) -> None:
        if policy not in ("skip", "error"):
            raise ValueError(f"policy must be 'skip' or 'error', got {policy!r}")
        self.source = open_source(paths_or_directory, cache_videos, progress, mapped, labels)
        flags = {} if exclude is None else read_flags(exclude)
        self.videos: list[VideoIndex] = [exclude_frames(v, flags) for v in self.source.videos]
        # (n,) int64: each dataset index's position among its video's usable frames in the source (which reads
        # by that position): an excluded frame leaves a hole.
        self._source_positions = np.concatenate(
            [np.flatnonzero(np.isin(s.frames, v.frames)) for s, v in zip(self.source.videos, self.videos, strict=True)]
            + [np.zeros(0, np.int64)]).astype(np.int64)
        self.skipped: list[FrameProblem] = [p for v in self.videos for p in v.skipped]
        if policy == "error" and self.skipped:
            first = self.skipped[0]
            raise FaceDataError(first.path, f"frame {first.frame}: {first.reason}")
        # (V + 1,) int64: dataset index of each video's first usable frame, then the total.
        self._starts = np.cumsum([0] + [len(v.frames) for v in self.videos], dtype=np.int64)
        # (n,) int64: frame number (in its video) of every dataset index, so keys need no per-sample lookup.
        self._frame_numbers = np.concatenate([np.asarray(v.frames, dtype=np.int64) for v in self.videos])
        # (V, 2) int64: (H, W) of each video's frames.
        self._video_sizes = np.array([v.frame_size for v in self.videos], dtype=np.int64).reshape(-1, 2)
        if self.skipped:
            _log.warning("%s (details: FaceFrames.skipped)", self.skip_report())

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def landmarks(self) -> int:
        """Landmarks per frame (K; the same in every video; 0 without landmarks): give the augmentation a flip
        table of K points."""
        return self.videos[0].landmarks if self.videos else 0

    @property
    def label_names(self) -> tuple[str, ...]:
        """The names of the data set's labels of your own (each sample's ``labels``)."""
        return tuple(self.videos[0].custom) if self.videos else ()

    @property
    def kinds(self) -> tuple[str, ...]:
        """The label kinds of the data set (FaceSample field names; the same in every video), in
        :data:`~gpuaug.sample.LABEL_FIELDS` order."""
        return self.videos[0].kinds if self.videos else ()

    def _positions(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dataset indices (B,) -> video numbers and usable-frame positions in those videos, (B,) int64."""
        bad = (indices < 0) | (indices >= len(self))
        if bad.any():
            raise IndexError(f"index {int(indices[bad][0])} out of range for {len(self)} frames")
        video = np.searchsorted(self._starts, indices, side="right") - 1
        return video, self._source_positions[indices]

    def locate(self, index: int) -> tuple[int, int]:
        """Dataset index -> (video number, frame number in that video)."""
        video, _ = self._positions(np.array([int(index)], dtype=np.int64))
        return int(video[0]), int(self._frame_numbers[index])

    def source_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """(n,) int64 video number and (n,) int64 source frame number (in that video) of every data set index."""
        video = np.repeat(np.arange(len(self.videos), dtype=np.int64), np.diff(self._starts))
        return video, self._frame_numbers

    def frame_sizes(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(B, 2) int64 (H, W) of the frames at ``indices``, from the index alone (no pixels read)."""
        video, _ = self._positions(np.asarray(indices, dtype=np.int64).reshape(-1))
        return self._video_sizes[video]

    def boxes(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Packed data: the (B, 4) float32 crop boxes (:func:`~gpuaug.crop.crop_boxes`: the box, else the annotated
        landmarks' extent, else the whole frame) and (B, 2) int64 frame sizes (H, W) of the frames at ``indices``,
        from the labels and the index alone (no pixels read): what deciding each frame's read window needs."""
        if not isinstance(self.source, PackedSource):
            raise TypeError("boxes alone need packed data (`python -m gpuaug pack`); use "
                            "self.batch(indices).crop_boxes()")
        video, position = self._positions(np.asarray(indices, dtype=np.int64).reshape(-1))
        return torch.from_numpy(self.source.boxes(video, position)), self._video_sizes[video]

    def frame_view(self, index: int) -> np.ndarray:
        """Packed data: frame ``index`` as an (H, W, 3) uint8 read-only view of its memory map (no copy). The one
        mapped read: touching the view after its file was truncated kills the process with SIGBUS (any memory map
        does); ``frames[index].image`` is a copy read safely."""
        if not isinstance(self.source, PackedSource):
            raise TypeError("frame views need packed data (`python -m gpuaug pack`); use frames[index].image")
        video, position = self._positions(np.array([int(index)], dtype=np.int64))
        return self.source.frame(int(video[0]), int(position[0]))

    def __getitem__(self, index: int) -> FaceSample:
        video, position = self._positions(np.array([int(index)], dtype=np.int64))
        return self.source.sample(int(video[0]), int(position[0]))

    def batch(
        self, indices: Sequence[int] | np.ndarray, pin_memory: bool = False, window: Window | None = None,
        buffer: Callable[[int], torch.Tensor] | None = None,
    ) -> FaceBatch:
        """The frames at ``indices`` as one ragged :class:`~gpuaug.FaceBatch`, samples in that order.

        Packed data: each frame's bytes are read once, straight from the files into one flat buffer (one
        ``pread`` per run of consecutive frames of a size; no per-sample checks: packing kept checked frames only;
        a file truncated since it was opened: :class:`FaceDataError` naming it).
        npz: ``collate([self[i] for i in indices])``. ``pin_memory``: the batch is page-locked.
        ``window`` (:data:`~gpuaug.batch.Window`): copy only that part of each frame (a
        :class:`~gpuaug.window.ReadWindow`: the part the config's draws can sample; the windows of
        :func:`~gpuaug.load.draws.draw`: the part each frame's own draw samples), into a
        :class:`~gpuaug.batch.WindowedBatch` that renders bit-identical to the whole frames. ``buffer(nbytes)``
        (packed only): where the pixels go.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if not len(indices):
            raise ValueError("a batch needs at least one index")
        if not isinstance(self.source, PackedSource):
            return collate([self[i] for i in indices], pin_memory=pin_memory, window=window)
        video, position = self._positions(indices)
        keys = torch.from_numpy(np.stack([video, self._frame_numbers[indices]], axis=1))
        fields = self.source.gather(video, position, pin_memory, window, buffer)
        kind = FaceBatch if window is None else WindowedBatch
        return kind(**fields, keys=keys.pin_memory() if pin_memory else keys)

    def __getitems__(self, indices: list[int]) -> FaceBatch:
        """``DataLoader``'s batched fetch (it passes the result to ``collate_fn``): :meth:`batch`."""
        return self.batch(indices)

    def skip_report(self) -> str:
        """Human-readable summary of what was skipped and why."""
        total = len(self) + len(self.skipped)
        if not self.skipped:
            return f"{len(self)} frames from {len(self.videos)} videos, none skipped"
        reasons = Counter(p.kind for p in self.skipped)
        lines = [f"{len(self)} of {total} frames usable; skipped {len(self.skipped)}:"]
        lines += [f"  {count} x {reason}" for reason, count in reasons.most_common()]
        return "\n".join(lines)
