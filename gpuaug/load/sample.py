"""What indexing one video file found: the record every frame source produces per video."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpuaug.errors import FaceDataError
from gpuaug.load.video import FrameProblem


@dataclass(frozen=True)
class VideoIndex:
    """What indexing one file found: its usable frame numbers, the frames it skipped and its landmark count."""

    path: str
    frame_size: tuple[int, int]
    frames: np.ndarray  # (n_usable,) int64
    skipped: tuple[FrameProblem, ...]
    landmarks: int


def check_layouts(videos: Sequence[VideoIndex]) -> None:
    """FaceDataError naming the first video whose landmark count differs from the first video's: a data set
    holds one landmark layout."""
    for v in videos[1:]:
        if v.landmarks != videos[0].landmarks:
            raise FaceDataError(v.path, f"has {v.landmarks} landmarks per frame, but {videos[0].path} has "
                                        f"{videos[0].landmarks}: a data set holds one landmark layout")
