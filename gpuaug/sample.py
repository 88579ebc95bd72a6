"""The record every layer shares: one frame with its labels, and the label fields' per-sample shapes.

It sits at the bottom of the data flow (below loading, batching and checks), so every layer can name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def label_shapes(n_landmarks: int) -> dict[str, tuple[int, ...]]:
    """Per-sample shape of each label field of a :class:`FaceSample` (float32) for ``n_landmarks`` landmarks."""
    return {"bbox": (4,), "landmarks2d": (n_landmarks, 2), "landmarks3d": (n_landmarks, 3), "head_pose": (3,),
            "gaze": (3,)}


#: The label fields of a sample (and of a batch), in declaration order (the keys of :func:`label_shapes`).
LABEL_FIELDS = ("bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze")
#: The point fields: a NaN point (any coordinate) is a point not annotated.
POINT_FIELDS = ("landmarks2d", "landmarks3d")


def bad_values(name: str, value: np.ndarray) -> np.ndarray:
    """(N, ...) values of label field ``name`` -> (N,) bool: the rows that hold a bad value, an inf. A NaN is not
    bad: it marks a missing label (a point not annotated, a sample without that label)."""
    return np.isinf(value.reshape(len(value), -1)).any(1)


def label_kinds(obj: object) -> tuple[str, ...]:
    """The label fields ``obj`` (a sample, a batch, a video) has, i.e. that are not None, in
    :data:`LABEL_FIELDS` order."""
    return tuple(name for name in LABEL_FIELDS if getattr(obj, name, None) is not None)


@dataclass(frozen=True)
class FaceSample:
    """One frame and the labels its data set has (numpy), as a data set's ``__getitem__`` returns it.

    Labels are float32 pixels, None when the data set does not have that kind. A NaN marks a missing label (a
    point not annotated, a sample without its box, pose or gaze); it stays NaN through the step. An inf is a
    bad value.

    Args:
        image: (H, W, 3) uint8 RGB.
        bbox: (4,) [x0, y0, x1, y1].
        landmarks2d: (K, 2), K points of the layout the augmentation's flip table names (68 for "ibug68").
        landmarks3d: (K, 3): x, y pixels, z depth in pixel units.
        head_pose: (3,) [yaw, pitch, roll] degrees.
        gaze: (3,) [x right, y up, z toward the camera].
        key: (video number, frame number in that video), to trace a sample back to its file.
        labels: labels of your own by name, (D,) float or () integer each (:mod:`gpuaug.labels.custom`).
    """

    image: np.ndarray
    bbox: np.ndarray | None = None
    landmarks2d: np.ndarray | None = None
    landmarks3d: np.ndarray | None = None
    head_pose: np.ndarray | None = None
    gaze: np.ndarray | None = None
    key: tuple[int, int] = (0, 0)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
