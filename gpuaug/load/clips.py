"""Clips: windows of T frames at frame step s, consecutive in one video's source frame numbers, as a data set.

A window starting at source frame f of video v holds frames f, f + s, ..., f + (T - 1) s of v, every one of
them usable: a window that would need a skipped frame (non-finite labels, bad box) or run past the end of its
video is never produced, and is counted as lost (:meth:`ClipWindows.report`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch.utils.data

from gpuaug.batch import FaceBatch, Window
from gpuaug.load.frames import FaceFrames


@dataclass(frozen=True)
class ClipWindows:
    """Every usable window of ``length`` frames at ``step`` in a :class:`~gpuaug.FaceFrames`.

    indices (n, T) int64: the data set indices of each window's frames, in time order; windows ordered by
    video, then start frame. possible: windows the videos would hold if no frame had been skipped.
    """

    indices: np.ndarray
    length: int
    step: int
    possible: int
    videos: int

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def lost(self) -> int:
        """Windows lost to skipped frames."""
        return self.possible - len(self)

    def report(self) -> str:
        """Human-readable: how many clips there are, and how many windows the skipped frames cost."""
        lost = f"{self.lost} of {self.possible} windows lost to skipped frames" if self.lost else "none lost to gaps"
        return (f"{len(self)} clips of T={self.length} frames at step s={self.step} from {self.videos} videos; "
                f"{lost}")


def _source_frame_counts(frames: FaceFrames) -> np.ndarray:
    """(V,) int64 frames in each source video, skipped ones included."""
    return np.array([len(v.frames) + len({p.frame for p in v.skipped}) for v in frames.videos], dtype=np.int64)


def check_clip_shape(length: int, step: int = 1) -> None:
    """ValueError naming the argument unless T = ``length`` >= 1 and s = ``step`` >= 1."""
    if length < 1:
        raise ValueError(f"clip length T must be >= 1, got T={length}")
    if step < 1:
        raise ValueError(f"clip frame step s must be >= 1, got s={step}")


def clip_windows(frames: FaceFrames, length: int, step: int = 1) -> ClipWindows:
    """Every window of ``length`` (T) frames at frame step ``step`` (s) whose source frame numbers are all usable
    and in one video (vectorised: one sorted search over all frames).

    Raises ValueError naming the argument for T < 1, s < 1, a span (T - 1) s + 1 longer than every video, or
    when skipped frames leave no window at all.
    """
    check_clip_shape(length, step)
    counts = _source_frame_counts(frames)
    span = (length - 1) * step + 1
    if span > counts.max(initial=0):
        raise ValueError(f"a clip of T={length} frames at step s={step} spans {span} source frames, longer than "
                         f"every video (the longest has {counts.max(initial=0)})")
    # One sorted key per usable frame: video * stride + frame number. stride exceeds any frame number plus a
    # clip's reach, so a window's targets never alias into the next video. A sentinel past every key keeps the
    # search's "not found" position a valid index.
    stride = int(counts.max()) + span
    video, frame = frames.source_frames()
    key = np.append(video * stride + frame, np.iinfo(np.int64).max)
    targets = key[:-1, None] + step * np.arange(length, dtype=np.int64)
    found = np.searchsorted(key, targets)
    whole = (key[found] == targets).all(1)
    windows = ClipWindows(found[whole], length, step, int(np.maximum(counts - span + 1, 0).sum()),
                          len(frames.videos))
    if not len(windows):
        raise ValueError(f"no clip of T={length} frames at step s={step}: skipped frames break all "
                         f"{windows.possible} windows")
    return windows


class FaceClips(torch.utils.data.Dataset):
    """Clips of ``length`` (T) frames at frame step ``step`` (s) from a :class:`~gpuaug.FaceFrames` (npz or
    packed): item i is window i of :func:`clip_windows`.

    ``DataLoader(clips, batch_size=B, collate_fn=gpuaug.collate)`` fetches a batch of clips in one go
    (:meth:`__getitems__`) as ONE ragged :class:`~gpuaug.FaceBatch` of B * T frames, clip-major (clip 0's T
    frames, then clip 1's, ...), ready for :class:`~gpuaug.ClipAugment`. Any sampler works
    (``DistributedSampler`` included: disjoint clips per rank); workers read as for frames.

    Args:
        frames: the frames to cut clips from.
        length: T, frames per clip.
        step: s, the frame step within a clip (a clip spans (T - 1) * s + 1 frames of its video).
    """

    def __init__(self, frames: FaceFrames, length: int, step: int = 1) -> None:
        self.frames = frames
        self.windows = clip_windows(frames, length, step)

    @property
    def length(self) -> int:
        """Frames per clip (T)."""
        return self.windows.length

    def __len__(self) -> int:
        return len(self.windows)

    def frame_indices(self, clips: Sequence[int] | np.ndarray) -> np.ndarray:
        """(B * T,) int64 data set frame indices of ``clips``, clip-major."""
        return self.windows.indices[np.asarray(clips, dtype=np.int64).reshape(-1)].reshape(-1)

    def batch(
        self, clips: Sequence[int] | np.ndarray, pin_memory: bool = False, window: Window | None = None,
        buffer: Callable[[int], torch.Tensor] | None = None,
    ) -> FaceBatch:
        """The frames of ``clips`` as one ragged (B * T)-frame :class:`~gpuaug.FaceBatch`, clip-major; ``window``
        and ``buffer`` as in :meth:`FaceFrames.batch` (a clip's window: ``ReadWindow(config, clip_length=T)``)."""
        return self.frames.batch(self.frame_indices(clips), pin_memory, window, buffer)

    def __getitem__(self, index: int) -> FaceBatch:
        """Clip ``index``'s T frames as one FaceBatch."""
        return self.batch([index])

    def __getitems__(self, indices: list[int]) -> FaceBatch:
        """``DataLoader``'s batched fetch: :meth:`batch`."""
        return self.batch(indices)

    def skip_report(self) -> str:
        """Clips and windows lost to gaps (:meth:`ClipWindows.report`), then the frames' own report."""
        return f"{self.windows.report()}\n{self.frames.skip_report()}"
