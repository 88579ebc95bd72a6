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
#: The point fields: a NaN point (any coordinate) is a point not annotated, not a bad value (other fields must be
#: finite, and no point may hold an inf).
POINT_FIELDS = ("landmarks2d", "landmarks3d")


def bad_values(name: str, value: np.ndarray) -> np.ndarray:
    """(N, ...) values of label field ``name`` -> (N,) bool: the rows that hold a bad value (an inf anywhere, or
    a NaN outside the point fields, where NaN marks a missing point)."""
    flat = value.reshape(len(value), -1)
    return np.isinf(flat).any(1) if name in POINT_FIELDS else ~np.isfinite(flat).all(1)


@dataclass(frozen=True)
class FaceSample:
    """One frame and its labels (frame-first numpy, see :class:`~gpuaug.load.video.FaceVideo`).

    landmarks2d (K, 2) and landmarks3d (K, 3): K points of the layout the augmentation's flip table names
    (68 for ``"ibug68"``); a point with a NaN coordinate is not annotated (it stays NaN through the step).
    ``key`` is (video number, frame number in that video) for tracing a sample back to its file.
    """

    image: np.ndarray
    bbox: np.ndarray
    landmarks2d: np.ndarray
    landmarks3d: np.ndarray
    head_pose: np.ndarray
    gaze: np.ndarray
    key: tuple[int, int]
