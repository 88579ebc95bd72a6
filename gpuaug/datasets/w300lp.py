"""300W-LP and AFLW2000-3D: images with a ``.mat`` file each, fitted by 3DDFA (Zhu et al.).

Fields read (MATLAB files, read with scipy): ``Pose_Para`` (1, 7) ``[pitch, yaw, roll, tx, ty, tz, scale]``,
radians (required); ``pt2d`` (2, 68) 2D landmarks (300W-LP); ``pt3d_68`` (3, 68) 3D landmarks (AFLW2000-3D).
AFLW2000-3D's ``pt2d`` holds AFLW's own 21 points (-1 where not annotated), another layout: it is not read,
and the 68 2D landmarks are ``pt3d_68``'s x, y (the fitted points, as AFLW2000-3D's 68-point evaluations use).
Coordinates are 1-based image pixels (3DDFA projects with ``y' = height + 1 - y``), so x and y become ``x - 1``,
``y - 1``; 3DDFA's z points toward the camera and gpuaug's away from it, so z is negated.

The angles: 3DDFA poses its face model (x right, y up, z toward the camera) with ``R = Rx(pitch)^T Ry(yaw)^T
Rz(roll)^T`` (its ``RotationMatrix``), then flips y into the image. In gpuaug's camera frame (x right, y down, z
away: the model frame turned half a turn about x, D = diag(1, -1, -1)) the head's rotation is ``D R D``, and
:func:`pose_from_3ddfa` returns the [yaw, pitch, roll] of that matrix in gpuaug's convention
(:func:`~gpuaug.labels.rotation.matrix_to_pose`). About zero it is ``[-yaw, -pitch, roll]`` in degrees: gpuaug's
+yaw turns the face toward image right and +pitch down, 300W-LP's toward image left and up. The tests hold it to
3DDFA's matrix on the mean face and to the head axes that Hopenet and 6DRepNet, which train on 300W-LP, draw for
these angles. (6DRepNet's training target ``get_R(pitch, yaw, roll) = Rz Ry Rx`` is the transpose of 3DDFA's
matrix: a consistent encoding of the label for its network, not the head's rotation in the image.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gpuaug.datasets.files import annotation_files, sibling_image
from gpuaug.errors import FaceDataError
from gpuaug.labels.rotation import matrix_to_pose, rot_x, rot_y, rot_z
from gpuaug.linalg import matmul
from gpuaug.load.frames import FaceFrames
from gpuaug.load.images import ImageEntry, ImageSource
from gpuaug.sample import LABEL_FIELDS

#: 3DDFA's model frame (y up, z toward the camera) -> gpuaug's camera frame (y down, z away).
FRAME = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))


def pose_from_3ddfa(pitch_yaw_roll: np.ndarray | torch.Tensor) -> np.ndarray:
    """(..., 3) 3DDFA angles ``[pitch, yaw, roll]`` radians (``Pose_Para[:3]``) -> (..., 3) float32 gpuaug head
    pose ``[yaw, pitch, roll]`` degrees, the same head rotation (module :mod:`gpuaug.datasets.w300lp`).
    Computed in float64.

    Args:
        pitch_yaw_roll: (..., 3) radians, as ``Pose_Para[:3]``.
    """
    p, y, r = torch.as_tensor(np.asarray(pitch_yaw_roll), dtype=torch.float64).unbind(-1)
    pose_3ddfa = matmul(matmul(rot_x(p).mT, rot_y(y).mT), rot_z(r).mT)  # 3DDFA's RotationMatrix(pitch, yaw, roll)
    return matrix_to_pose(matmul(matmul(FRAME, pose_3ddfa), FRAME)).numpy().astype(np.float32)


def _loadmat(path: Path) -> dict:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ImportError("reading 300W-LP / AFLW2000 .mat files needs scipy: pip install scipy (or gpuaug's "
                          "'datasets' extra)") from None
    try:
        return loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError... for a file that is not a .mat
        raise FaceDataError(path, f"not a readable .mat file: {exc}") from exc


def _field(mat: dict, path: Path, name: str, shape: tuple[int, ...]) -> np.ndarray:
    value = np.asarray(mat[name])
    if value.shape != shape or value.dtype.kind not in "fiu":
        raise FaceDataError(path, f"expected a numeric array of shape {shape}, got {value.dtype} {value.shape}", name)
    return value.astype(np.float64)


def read_mat(path: str | Path) -> dict[str, np.ndarray]:
    """One 300W-LP / AFLW2000 ``.mat`` -> its labels in gpuaug's conventions (module
    :mod:`gpuaug.datasets.w300lp`): head_pose (3,),
    and landmarks2d (68, 2) / landmarks3d (68, 3) where the file has ``pt2d`` / ``pt3d_68``. FaceDataError naming
    the file and field for a missing ``Pose_Para`` or a field of another shape."""
    path = Path(path)
    mat = _loadmat(path)
    if "Pose_Para" not in mat:
        raise FaceDataError(path, f"missing (the file has {sorted(k for k in mat if not k.startswith('__'))})",
                            "Pose_Para")
    labels = {"head_pose": pose_from_3ddfa(_field(mat, path, "Pose_Para", (1, 7))[0, :3])}
    if "pt3d_68" in mat:
        xyz = _field(mat, path, "pt3d_68", (3, 68)).T
        labels["landmarks3d"] = np.concatenate([xyz[:, :2] - 1.0, -xyz[:, 2:]], 1).astype(np.float32)
    if "pt2d" in mat and ("pt3d_68" not in mat or np.shape(mat["pt2d"]) == (2, 68)):
        labels["landmarks2d"] = (_field(mat, path, "pt2d", (2, 68)).T - 1.0).astype(np.float32)
    elif "landmarks3d" in labels:  # AFLW2000-3D: AFLW's 21-point pt2d is another layout (module docstring)
        labels["landmarks2d"] = labels["landmarks3d"][:, :2].copy()
    return dict(sorted(labels.items(), key=lambda kv: LABEL_FIELDS.index(kv[0])))


def read_300wlp(root: str | Path, progress: bool | None = None) -> FaceFrames:
    """Every ``.mat`` under ``root`` (300W-LP's folders, or AFLW2000-3D's) with the image beside it: a
    :class:`~gpuaug.FaceFrames` with the head pose and the landmarks the files have, in gpuaug's conventions
    (module :mod:`gpuaug.datasets.w300lp`); 68 points: the ``"ibug68"`` flip table. Without a box the crop
    frames the landmarks' extent. A file without ``Pose_Para``, a field of another shape or a missing image raises
    :class:`~gpuaug.FaceDataError` naming the file and field; files of one root must have the same fields.
    Needs scipy.

    Args:
        root: the folder searched (recursively) for ``.mat`` files.
        progress: progress bar while indexing; None shows it on a terminal only.
    """
    entries = [ImageEntry(sibling_image(mat), read_mat(mat), sources=(mat,))
               for mat in annotation_files(root, ".mat")]
    return FaceFrames(ImageSource(entries, progress))
