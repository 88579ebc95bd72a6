"""What indexing one video file found: the record every frame source produces per video."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuaug.load.video import FrameProblem


@dataclass(frozen=True)
class VideoIndex:
    """What indexing one file found: its usable frame numbers and the frames it skipped."""

    path: str
    frame_size: tuple[int, int]
    frames: np.ndarray  # (n_usable,) int64
    skipped: tuple[FrameProblem, ...]
