"""Head rotations fitted from landmarks to the 3D mean face, batched, float64.

The mean face (68 iBUG points, :func:`~gpuaug.synth.face_model.mean_face`) is in gpuaug's camera frame (x right,
y down, z away). From 3D landmarks (x, y pixels, z depth in pixels) the fit is a similarity (Kabsch with scale);
from 2D landmarks a weak-perspective camera: the least-squares 2x3 map, its nearest scaled pair of orthonormal
rows, their cross product the third row. Points not annotated (NaN) weigh 0.
"""

from __future__ import annotations

import torch

from gpuaug.linalg import matmul


def _centred(points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    mean = (points * weights[..., None]).sum(1, keepdim=True) / weights.sum(1)[:, None, None].clamp(min=1)
    return (points - mean) * weights[..., None]


def fit_rotation(points: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, 2 or 3) landmarks (NaN: not annotated), (K, 3) mean face -> (B, 3, 3) rotation taking the face onto
    the landmarks, and (B,) RMS residual of the fit in the landmarks' units (NaN with fewer than 4 points)."""
    points = points.double()
    face = face.double().expand(len(points), -1, -1)
    weights = torch.isfinite(points).all(-1).double()
    p = _centred(torch.nan_to_num(points), weights)
    f = _centred(face, weights)
    cov = matmul(p.mT, f)  # (B, D, 3)
    u, s, vt = torch.linalg.svd(cov, full_matrices=False)
    if points.shape[-1] == 3:
        d = torch.sign(torch.linalg.det(matmul(u, vt)))
        fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
        rotation = matmul(matmul(u, fix), vt)
        scale = (s * fix.diagonal(dim1=-2, dim2=-1)).sum(-1) / (f * f).sum((1, 2)).clamp(min=1e-12)
        fitted = scale[:, None, None] * matmul(f, rotation.mT)
    else:
        rows = matmul(u, vt)  # (B, 2, 3): the nearest orthonormal rows
        rotation = torch.cat([rows, torch.linalg.cross(rows[:, 0], rows[:, 1])[:, None]], 1)
        spread = matmul(matmul(rows, matmul(f.mT, f)), rows.mT).diagonal(dim1=-2, dim2=-1).sum(-1)
        scale = s.sum(-1) / spread.clamp(min=1e-12)
        fitted = scale[:, None, None] * matmul(f, rows.mT)
    n = weights.sum(1)
    residual = (((fitted - p) ** 2).sum(-1) * weights).sum(1).div(n.clamp(min=1)).sqrt()
    return rotation, torch.where(n >= 4, residual, torch.nan)


def rotation_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3), (B, 3, 3) rotations -> (B,) degrees of the rotation between them."""
    cos = ((matmul(a.mT, b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))
