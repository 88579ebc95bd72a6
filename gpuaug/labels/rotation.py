"""Head-pose angles <-> rotation matrices, in the data's conventions.

Camera coordinates: x to the image right, y down, z away from the camera. Head pose [yaw, pitch, roll]
in degrees: +yaw turns the face toward image right, +pitch turns it down, +roll turns it clockwise on
screen. The head's rotation is ``R = Ry(-yaw) @ Rx(pitch) @ Rz(roll)`` with the standard right-handed
rotation matrices, so a head point P maps to camera coordinates ``R @ P`` (plus a translation).
"""

from __future__ import annotations

import torch

from gpuaug.linalg import matmul


def _rotation(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """(...,) radians -> (..., 3, 3) right-handed rotation about x (0), y (1) or z (2)."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = {
        0: ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        1: ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        2: ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def rot_x(angle: torch.Tensor) -> torch.Tensor:
    return _rotation(0, angle)


def rot_y(angle: torch.Tensor) -> torch.Tensor:
    return _rotation(1, angle)


def rot_z(angle: torch.Tensor) -> torch.Tensor:
    return _rotation(2, angle)


def pose_to_matrix(head_pose: torch.Tensor) -> torch.Tensor:
    """(..., 3) [yaw, pitch, roll] degrees -> (..., 3, 3) head rotation in camera coordinates."""
    yaw, pitch, roll = torch.deg2rad(head_pose).unbind(-1)
    return matmul(matmul(rot_y(-yaw), rot_x(pitch)), rot_z(roll))


def matrix_to_pose(rotation: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation -> (..., 3) [yaw, pitch, roll] degrees, inverse of :func:`pose_to_matrix`.

    Pitch is returned in [-90, 90]; yaw and roll in (-180, 180].
    """
    r = rotation
    pitch = torch.asin((-r[..., 1, 2]).clamp(-1.0, 1.0))
    yaw = -torch.atan2(r[..., 0, 2], r[..., 2, 2])
    roll = torch.atan2(r[..., 1, 0], r[..., 1, 1])
    return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=-1))
