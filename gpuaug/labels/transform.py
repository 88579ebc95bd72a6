"""Labels under the per-sample matrix: landmarks (2D, 3D), bbox, head pose and gaze.

Every rule reads the geometry from the final matrix alone (scale, in-plane rotation and mirror via
:func:`~gpuaug.labels.matrix.decompose`), so any similarity matrix, sampled or user-made, gets labels
that agree with the warped pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gpuaug.labels.matrix import affine_inverse, apply_points, decompose
from gpuaug.labels.rotation import matrix_to_pose, pose_to_matrix, rot_z
from gpuaug.linalg import matmul


@dataclass
class Labels:
    """Output-space labels, None for a kind the batch does not have: landmarks2d (B, K, 2) and landmarks3d
    (B, K, 3) output pixels (z scaled by the matrix's isotropic scale; NaN where the input point was NaN: not
    annotated); bbox (B, 4) enclosing box of the transformed box; head_pose (B, 3) degrees; gaze (B, 3); with 2D
    landmarks, visible (B, K) bool, landmark inside the output square, and (a property) annotated (B, K) bool, the
    2D landmark is a number (False for a point not annotated, and for every point of an invalid sample, whose
    matrix is NaN). A missing label (NaN in) comes out NaN."""

    landmarks2d: torch.Tensor | None
    landmarks3d: torch.Tensor | None
    bbox: torch.Tensor | None
    head_pose: torch.Tensor | None
    gaze: torch.Tensor | None
    visible: torch.Tensor | None

    @property
    def annotated(self) -> torch.Tensor | None:
        """(B, K) bool with 2D landmarks (:func:`annotated_points`), computed on access."""
        return None if self.landmarks2d is None else annotated_points(self.landmarks2d)


def annotated_points(points: torch.Tensor) -> torch.Tensor:
    """(..., K, D) points -> (..., K) bool: the point is a number (not NaN: not annotated, or of an invalid
    sample)."""
    return torch.isfinite(points).all(-1)


def reindex(points: torch.Tensor, flipped: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, N, D) points; where ``flipped``, re-order as ``points[:, table]`` (left <-> right)."""
    return torch.where(flipped[:, None, None], points[:, table.to(points.device)], points)


def camera_rotation(phi: torch.Tensor, flipped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The image's geometry as camera-space 3x3 maps: Q = Rz(phi) @ Mx^flipped and Mx^flipped.

    (B,) radians, (B,) bool -> (B, 3, 3) Q, (B, 3) mirror diagonal (x negated where flipped).
    """
    one = torch.ones_like(phi)
    mirror = torch.stack([torch.where(flipped, -one, one), one, one], -1)
    return rot_z(phi) * mirror[:, None, :], mirror


def transform_pose(head_pose: torch.Tensor, phi: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """(B, 3) degrees -> (B, 3) degrees: R' = Rz(phi) Mx R Mx (mirror: yaw, roll negate; turn: compose)."""
    q, mirror = camera_rotation(phi, flipped)
    return matrix_to_pose(matmul(q, pose_to_matrix(head_pose)) * mirror[:, None, :])


def transform_gaze(gaze: torch.Tensor, phi: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """(B, 3) [x right, y up, z toward camera] -> same convention, rotated/mirrored with the image."""
    q, _ = camera_rotation(phi, flipped)

    def to_camera(v: torch.Tensor) -> torch.Tensor:
        # Gaze is [x right, y up, z toward the camera]; camera coordinates are [x right, y down, z away].
        return torch.cat([v[..., :1], -v[..., 1:]], -1)

    return to_camera(matmul(q, to_camera(gaze)[..., None])[..., 0])


def transform_bbox(matrix: torch.Tensor, bbox: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3), (B, 4) [x0, y0, x1, y1] -> (B, 4) box enclosing the four transformed corners."""
    x0, y0, x1, y1 = bbox.unbind(-1)
    corners = torch.stack([torch.stack(c, -1) for c in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))], 1)
    out = apply_points(matrix, corners)
    return torch.cat([out.amin(1), out.amax(1)], dim=1)


def transform_labels(
    matrix: torch.Tensor,
    flip_table: torch.Tensor,
    out_size: int,
    bbox: torch.Tensor | None = None,
    landmarks2d: torch.Tensor | None = None,
    landmarks3d: torch.Tensor | None = None,
    head_pose: torch.Tensor | None = None,
    gaze: torch.Tensor | None = None,
) -> Labels:
    """Move every label the batch has (None: that kind is absent, and nothing is computed for it) through
    ``matrix`` (B, 3, 3), re-indexing landmarks of mirrored samples. A NaN point comes out NaN in its
    (re-indexed) slot: the matrix product keeps each point's NaN to itself."""
    k, phi, flipped = decompose(matrix)
    lm2d = lm3d = visible = None
    if landmarks2d is not None:
        lm2d = reindex(apply_points(matrix, landmarks2d), flipped, flip_table)
        visible = ((lm2d >= -0.5) & (lm2d <= out_size - 0.5)).all(-1)  # False for NaN
    if landmarks3d is not None:
        xy3d = apply_points(matrix, landmarks3d[..., :2])
        lm3d = reindex(torch.cat([xy3d, landmarks3d[..., 2:] * k[:, None, None]], -1), flipped, flip_table)
    return Labels(
        landmarks2d=lm2d,
        landmarks3d=lm3d,
        bbox=None if bbox is None else transform_bbox(matrix, bbox),
        head_pose=None if head_pose is None else transform_pose(head_pose, phi, flipped),
        gaze=None if gaze is None else transform_gaze(gaze, phi, flipped),
        visible=visible,
    )


def points_to_source(matrix: torch.Tensor, flip_table: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Output-space (B, K, 2) landmarks -> source-frame coordinates: un-flip re-index, inverse matrix."""
    _, _, flipped = decompose(matrix)
    return apply_points(affine_inverse(matrix), reindex(points, flipped, flip_table))
