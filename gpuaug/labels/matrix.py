"""One 3x3 affine matrix per sample, mapping source pixels to output pixels.

Pixel convention (OpenCV / kornia ``align_corners=True``): (x, y) = (column, row), pixel centres at
integer coordinates, so an S-pixel output spans [-0.5, S - 0.5] and its centre is (S - 1) / 2.
"""

from __future__ import annotations

import torch

from gpuaug.linalg import matmul


def translation(offset: torch.Tensor) -> torch.Tensor:
    """(B, 2) -> (B, 3, 3) homogeneous translation by ``offset``."""
    m = torch.eye(3, dtype=offset.dtype, device=offset.device).repeat(offset.shape[0], 1, 1)
    m[:, :2, 2] = offset
    return m


def rotation_2d(angle: torch.Tensor) -> torch.Tensor:
    """(B,) radians -> (B, 2, 2) ``[[cos, -sin], [sin, cos]]``: clockwise on screen in y-down pixels."""
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def crop_square(bbox: torch.Tensor, margin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 4) [x0, y0, x1, y1], (B,) margin -> centre (B, 2), side (B,) = max(w, h) * (1 + 2 * margin)."""
    centre = (bbox[:, :2] + bbox[:, 2:]) / 2
    side = (bbox[:, 2:] - bbox[:, :2]).amax(dim=1) * (1 + 2 * margin)
    return centre, side


def crop_matrix(
    bbox: torch.Tensor,
    margin: torch.Tensor,
    shift: torch.Tensor,
    angle: torch.Tensor,
    scale: torch.Tensor,
    flip: torch.Tensor,
    out_size: int,
) -> torch.Tensor:
    """Compose the per-sample source -> output matrix.

    Args:
        bbox: (B, 4) [x0, y0, x1, y1] source pixels.
        margin: (B,) crop margin: square side = max(w, h) * (1 + 2 * margin), centred on the box.
        shift: (B, 2) crop-window shift as a fraction of the side (x, y).
        angle: (B,) degrees; the image content turns clockwise on screen by this angle about the
            crop centre.
        scale: (B,) zoom: > 1 shows a smaller region, larger.
        flip: (B,) bool, mirror left/right about the crop centre (after the rotation).
        out_size: output side S in pixels; the crop square maps onto [-0.5, S - 0.5]^2.

    Returns:
        (B, 3, 3) float32: ``out = T((S-1)/2) @ k F R(angle) @ T(-(centre + shift * side))``.
    """
    centre, side = crop_square(bbox, margin)
    centre = centre + shift * side[:, None]
    k = out_size * scale / side
    a = rotation_2d(torch.deg2rad(angle)) * k[:, None, None]
    a[:, 0] = torch.where(flip[:, None], -a[:, 0], a[:, 0])
    # The product written out (the translations' 0/1 entries multiply exactly), in the order the composed
    # matmuls sum it, t = (A (-c)) + (S-1)/2: the same bits as composing the three matrices, in a third of the
    # ops (the loader draws matrices per group of batches on the CPU, where each small op costs ~10 us).
    t = matmul(a, -centre[:, :, None])[..., 0] + (out_size - 1) / 2
    bottom = torch.eye(3, dtype=a.dtype, device=a.device)[2:].expand(len(a), 1, 3)  # made on the device: no copy
    return torch.cat([torch.cat([a, t[:, :, None]], 2), bottom], 1)


def decompose(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a similarity (optionally mirrored) as ``A = k * R(phi) @ F^flipped``, F = diag(-1, 1).

    Args:
        matrix: (B, 3, 3) source -> output.

    Returns:
        k (B,) isotropic scale sqrt(|det A|); phi (B,) radians, the in-plane rotation of the content
        (clockwise on screen) applied after an optional mirror; flipped (B,) bool (det A < 0).
    """
    a = matrix[:, :2, :2]
    det = _det2(a)
    flipped = det < 0
    col0 = torch.where(flipped[:, None], -a[:, :, 0], a[:, :, 0])  # column 0 of A @ F^flipped
    return det.abs().sqrt(), torch.atan2(col0[:, 1], col0[:, 0]), flipped


def _det2(a: torch.Tensor) -> torch.Tensor:
    """(B, 2, 2) -> (B,) determinant, in closed form (``linalg.det`` factorises, and checks on the host)."""
    return a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]


def affine_inverse(matrix: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) affine (last row 0, 0, 1) -> (B, 3, 3) inverse, in closed form: no host sync and no error
    for a singular matrix (its inverse comes out inf/NaN, which the gather warp reads as fill)."""
    a, t = matrix[:, :2, :2], matrix[:, :2, 2:]
    det = _det2(a)[:, None, None]
    adj = torch.stack([torch.stack([a[:, 1, 1], -a[:, 0, 1]], -1), torch.stack([-a[:, 1, 0], a[:, 0, 0]], -1)], -2)
    inv = adj / det
    bottom = matrix[:, 2:]  # (0, 0, 1) of an affine matrix, kept as the caller's rows
    return torch.cat([torch.cat([inv, -matmul(inv, t)], -1), bottom], 1)


def apply_points(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) matrix, (B, N, 2) points -> (B, N, 2) transformed points (full precision: :mod:`gpuaug.linalg`)."""
    a, t = matrix[:, None, :2, :2], matrix[:, None, :2, 2]
    return points[..., :1] * a[..., 0] + points[..., 1:] * a[..., 1] + t
