"""A 3D mean face (68 iBUG points) and its weak-perspective projection under a head pose.

The points come from yinguobing/head-pose-estimation (MIT, notice in ``gpuaug/assets``): x right,
y down, z away from the camera, about millimetres. Projection: ``(x, y) = s * (R @ P)_xy + t`` with R
from :func:`gpuaug.labels.rotation.pose_to_matrix`; z = ``s * (R @ P)_z`` is a relative depth in pixels.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import numpy as np
import torch

from gpuaug.labels.flip_tables import FLIP_TABLES
from gpuaug.labels.rotation import pose_to_matrix

INTEROCULAR = (36, 45)  # outer eye corners


@cache
def mean_face(symmetric: bool = True) -> np.ndarray:
    """(68, 3) float64 mean face, centred on its centroid.

    ``symmetric=True`` averages it with its mirror image (x -> -x, re-indexed with the iBUG flip table),
    so mirroring it maps it exactly onto itself; the raw face is off by 0.76 on average (2.6 at most).
    """
    raw = np.loadtxt(str(files("gpuaug").joinpath("assets/mean_face_68.txt"))).reshape(3, 68).T
    if symmetric:
        mirrored = raw[list(FLIP_TABLES["ibug68"])] * np.array([-1.0, 1.0, 1.0])
        raw = (raw + mirrored) / 2
    return raw - raw.mean(axis=0)


def project(
    head_pose: torch.Tensor, scale: torch.Tensor, centre: torch.Tensor, face: np.ndarray | None = None
) -> torch.Tensor:
    """Posed face in pixels.

    Args:
        head_pose: (B, 3) [yaw, pitch, roll] degrees.
        scale: (B,) pixels per face unit.
        centre: (B, 2) pixel position of the face's centroid.
        face: (68, 3) points, default :func:`mean_face`.

    Returns:
        (B, 68, 3): x, y pixels and z relative depth in pixels (0 at the centroid).
    """
    pts = torch.as_tensor(mean_face() if face is None else face, dtype=head_pose.dtype)
    cam = pts @ pose_to_matrix(head_pose).transpose(1, 2) * scale[:, None, None]
    return torch.cat([cam[..., :2] + centre[:, None], cam[..., 2:]], dim=-1)


def fit_similarity(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares scale + translation (no rotation) taking (B, N, 2) ``src`` onto ``dst``; returns
    the fitted src. Used to compare a re-projection with landmarks up to the unknown scale and shift."""
    sc, dc = src - src.mean(1, keepdim=True), dst - dst.mean(1, keepdim=True)
    s = (sc * dc).sum((1, 2)) / (sc * sc).sum((1, 2))
    return sc * s[:, None, None] + dst.mean(1, keepdim=True)
