"""The record every layer shares: one frame with its labels, and the label fields' per-sample shapes.

It sits at the bottom of the data flow (below loading, batching and checks), so every layer can name it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def label_shapes(n_landmarks: int = 68) -> dict[str, tuple[int, ...]]:
    """Per-sample shape of each label field of a :class:`FaceSample` (float32) for ``n_landmarks`` landmarks."""
    return {"bbox": (4,), "landmarks2d": (n_landmarks, 2), "landmarks3d": (n_landmarks, 3), "head_pose": (3,),
            "gaze": (3,)}


#: The label fields of a sample (and of a batch), in declaration order.
LABEL_FIELDS = tuple(label_shapes())


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
