"""The audit's per-frame checks: each a score per frame from the labels (and pixels) a data set has, flagged above
its threshold. Scores are NaN where a check does not apply (a kind missing, a label missing).

Thresholds (defaults, :data:`CHECKS`) were set on the bundled synthetic data (which scores about 0 on every
check) and the faults the tests plant, with margin for real labels made by other models: a box that leaves out
10 % of the landmarks, a 3D x-y 5 % of the face size off the 2D points, a pose 25 degrees from the rotation
fitted to the landmarks (typical disagreement of head-pose estimators is 4-8 degrees), a landmark set whose rigid
fit leaves 15 % of the face size, a gaze 2 % off unit length or more than 90 degrees from the face's forward
direction (eyes turn up to about 50 degrees in the head), a frame whose change from the previous one is 10 times
the video's median change (and at least 5 % of the face size, or 5 degrees), an empty or a repeated frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpuaug.audit.fit import fit_rotation, rotation_angle
from gpuaug.crop import crop_boxes
from gpuaug.labels.rotation import pose_to_matrix
from gpuaug.synth.face_model import mean_face


@dataclass(frozen=True)
class Check:
    """One check of the audit.

    Args:
        name: its column in the table.
        score: what the score measures.
        threshold: a frame scoring above it is flagged.
    """

    name: str
    score: str
    threshold: float


CHECKS = (
    Check("box", "fraction of annotated landmarks outside the box (grown by 5 % a side)", 0.10),
    Check("xy3d", "median 2D - 3D x-y distance / face size", 0.05),
    Check("pose", "degrees between the pose and the rotation fitted from the landmarks (68 iBUG points)", 25.0),
    Check("layout", "RMS residual of the landmarks' fit to the mean face / face size (68 iBUG points)", 0.15),
    Check("gaze_unit", "| |gaze| - 1 |", 0.02),
    Check("gaze_out", "degrees between the gaze and the face's forward direction", 90.0),
    Check("jump", "change from the previous frame / the video's median change", 10.0),
    Check("empty", "1 for a frame of one colour", 0.5),
    Check("duplicate", "1 for a frame identical to the previous one of its video", 0.5),
)
#: Smallest change a jump needs, whatever the video's median: face sizes for points and boxes, degrees for pose.
JUMP_FLOOR = {"points": 0.05, "pose": 5.0}


def face_size(sizes: torch.Tensor, bbox: torch.Tensor | None, landmarks2d: torch.Tensor | None) -> torch.Tensor:
    """(B,) diagonal of each frame's crop box (:func:`~gpuaug.crop.crop_boxes`) in pixels."""
    box = crop_boxes(sizes, bbox, landmarks2d).double()
    return torch.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])


def label_scores(batch) -> dict[str, torch.Tensor]:
    """Check name -> (B,) float64 scores of the label checks that do not look at other frames, on the batch's
    device (NaN where a check does not apply)."""
    nan = torch.full((len(batch),), torch.nan, dtype=torch.float64, device=batch.device)
    size = face_size(batch.sizes, batch.bbox, batch.landmarks2d)
    lm2d, lm3d, pose = batch.landmarks2d, batch.landmarks3d, batch.head_pose
    scores = {c.name: nan for c in CHECKS if c.name not in ("jump", "empty", "duplicate")}
    if batch.bbox is not None and lm2d is not None:
        box = batch.bbox.double()
        grow = torch.stack([box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]], -1)[:, None] * 0.05
        p = lm2d.double()
        inside = ((p >= box[:, None, :2] - grow) & (p <= box[:, None, 2:] + grow)).all(-1)
        annotated = torch.isfinite(p).all(-1)
        scores["box"] = ((annotated & ~inside).sum(1) / annotated.sum(1)).double()  # NaN: nothing annotated
    if lm2d is not None and lm3d is not None:
        gap = torch.linalg.vector_norm(lm2d.double() - lm3d[..., :2].double(), dim=-1)
        scores["xy3d"] = torch.nanmedian(gap, 1).values / size
    points = lm3d if lm3d is not None else lm2d
    face = mean_face()
    # The mean face's points correspond to the iBUG 68-point layout only: other layouts get no fit (NaN).
    if points is not None and points.shape[1] == len(face):
        face = torch.from_numpy(face).to(points.device)
        fitted, residual = fit_rotation(points, face)
        scores["layout"] = residual / size
        if pose is not None:
            scores["pose"] = rotation_angle(fitted, pose_to_matrix(pose.double()))
    if batch.gaze is not None:
        gaze = batch.gaze.double()
        norm = torch.linalg.vector_norm(gaze, dim=-1)
        scores["gaze_unit"] = (norm - 1).abs()
        if pose is not None:
            forward = -pose_to_matrix(pose.double())[..., 2]  # the face looks along its -z (camera frame)
            camera = torch.stack([gaze[:, 0], -gaze[:, 1], -gaze[:, 2]], -1) / norm[:, None]
            cos = (camera * forward).sum(-1).clamp(-1, 1)
            scores["gaze_out"] = torch.rad2deg(torch.acos(cos))
    return scores


def motion(batch) -> dict[str, torch.Tensor]:
    """What the jump check compares between consecutive frames: "points" (B, K, 2) landmarks or box corners
    divided by the face size, "pose" (B, 3, 3) head rotations; those the batch has."""
    out = {}
    size = face_size(batch.sizes, batch.bbox, batch.landmarks2d)[:, None, None]
    if batch.landmarks2d is not None:
        out["points"] = batch.landmarks2d.double() / size
    elif batch.bbox is not None:
        out["points"] = batch.bbox.double().reshape(-1, 2, 2) / size
    if batch.head_pose is not None:
        out["pose"] = pose_to_matrix(batch.head_pose.double())
    return out


def changes(previous: dict[str, torch.Tensor], current: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(B,) change per kind between frames ``previous`` and ``current`` (as :func:`motion` gives): mean point
    displacement in face sizes, rotation in degrees."""
    out = {}
    if "points" in current:
        out["points"] = torch.nanmean(torch.linalg.vector_norm(current["points"] - previous["points"], dim=-1), 1)
    if "pose" in current:
        out["pose"] = rotation_angle(previous["pose"], current["pose"])
    return out


def jump_scores(change: dict[str, np.ndarray], video: np.ndarray, first: np.ndarray) -> np.ndarray:
    """(n,) jump score of every frame: its change per kind (``change``: kind -> (n,), per frame since the previous
    usable frame of its video) over the larger of its video's median change and the floor (:data:`JUMP_FLOOR`
    divided by the check's threshold, so a change under the floor never flags); the largest over kinds. NaN for
    a video's ``first`` frame."""
    threshold = next(c.threshold for c in CHECKS if c.name == "jump")
    score = np.zeros(len(video))
    for kind, values in change.items():
        for v in np.unique(video):
            rows = (video == v) & ~first
            if not rows.any():
                continue
            median = np.nanmedian(values[rows]) if np.isfinite(values[rows]).any() else 0.0
            scale = max(median, JUMP_FLOOR[kind] / threshold)
            score[rows] = np.fmax(score[rows], values[rows] / scale)
    score[first] = np.nan
    return score
