"""What indexing one video file found: the record every frame source produces per video."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gpuaug.errors import FaceDataError
from gpuaug.load.video import FrameProblem


@dataclass(frozen=True)
class VideoIndex:
    """What indexing one file found: its usable frame numbers, the frames it skipped, its landmark count (0 without
    landmarks) and the label kinds it has (FaceSample field names)."""

    path: str
    frame_size: tuple[int, int]
    frames: np.ndarray  # (n_usable,) int64
    skipped: tuple[FrameProblem, ...]
    landmarks: int
    kinds: tuple[str, ...]
    #: Labels of your own: name -> (per-frame shape, dtype name), as stored.
    custom: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)


def check_layouts(videos: Sequence[VideoIndex]) -> None:
    """FaceDataError naming the first video whose label kinds or landmark count differ from the first video's: a
    data set holds one set of label kinds and one landmark layout."""
    first = videos[0] if videos else None
    for v in videos[1:]:
        if v.kinds != first.kinds:
            raise FaceDataError(v.path, f"has the labels {', '.join(v.kinds) or 'none'}, but {first.path} has "
                                        f"{', '.join(first.kinds) or 'none'}: the videos of a data set have the same "
                                        "label fields (mark a missing label of a frame with NaN)")
        if v.custom != first.custom:
            raise FaceDataError(v.path, f"has the labels of your own {v.custom}, but {first.path} has {first.custom}: "
                                        "the videos of a data set have the same")
        if v.landmarks != first.landmarks:
            raise FaceDataError(v.path, f"has {v.landmarks} landmarks per frame, but {first.path} has "
                                        f"{first.landmarks}: a data set holds one landmark layout")
