"""Read windows: the part of each frame that any draw of a config can sample, so a loader copies only that.

Every output pixel centre (u, v) in {0 .. S-1}^2 comes from the source point ``c' + R(-angle) F (o / k)`` with
``o = (u, v) - (S-1)/2``, ``k = S * scale / side``, ``side = d * (1 + 2 * margin)`` (d: the crop box's larger side)
and ``c' = centre + shift * side`` (:func:`~gpuaug.labels.matrix.crop_matrix`). Over the config's ranges the
point stays within ``centre +- reach * d`` per axis, ``reach = (1 + 2 margin_max) * ((S-1)/(2S) * (|cos|+|sin|)(
angle_max) / scale_min + max_shift)``; a mirror maps the output corners onto each other, so flips need no room.

The render's bilinear taps of a source coordinate x are ``floor(x)`` and ``floor(x) + 1`` (a tap with weight 0
may read anything: it adds nothing), so the window holds the columns ``floor(centre - reach d) ..
floor(centre + reach d) + 1`` (rows likewise), widened by :data:`SLACK` pixels against float32 rounding of the
matrix and its inverse, and clamped to the frame (taps outside the frame weigh 0: zero fill).

:func:`matrix_windows` is the same rule for one draw: the bounding box of the source points of that draw's
output pixel centres (its matrix's inverse at the four output corners: an affine map sends the square's corners
to the parallelogram's), a smaller window than the config-wide one (:mod:`gpuaug.load.draws` draws the params
in the loader to know it before reading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gpuaug.clip_params import CropMode, check_crop, clip_boxes
from gpuaug.config import AugmentConfig
from gpuaug.labels.matrix import affine_inverse, crop_square

#: Pixels added to each side of the exact reach: float32 matrices put source points up to ~1e-3 px off the
#: exact ones (coordinates up to a few thousand); 0.05 px covers that many times over and still lets a window
#: one pixel short show in the output of an extreme draw (tests/test_window_reads.py).
SLACK = 0.05


def reach(config: AugmentConfig, train: bool = True) -> float:
    """Half the side of the square (per axis, around the crop box's centre) that a draw can sample, in units of
    the box's larger side; ``train=False``: the eval framing (mid margin and zoom, no shift or rotation)."""
    s = config.out_size
    corner = (s - 1) / (2 * s)  # outermost output pixel centre, in units of the output side
    if not train:
        return (1 + sum(config.crop_margin)) * corner / (sum(config.scale) / 2)
    # |cos a| + |sin a| grows with |a| up to 45 degrees (sqrt 2 there and beyond: the ranges hold 45).
    angle = math.radians(min(config.max_rotation, 45.0))
    turn = math.cos(angle) + math.sin(angle)
    return (1 + 2 * config.crop_margin[1]) * (corner * turn / config.scale[0] + config.max_shift)


def read_windows(boxes: torch.Tensor, sizes: np.ndarray, reach: float) -> np.ndarray:
    """(B, 4) float crop boxes [x0, y0, x1, y1] source pixels, (B, 2) int64 frame (H, W), :func:`reach` ->
    (B, 4) int64 windows [top, left, height, width]: the rows and columns the render can read with a nonzero
    weight, clamped to the frame and at least 1 x 1. A box that is not finite gets the whole frame."""
    box = boxes.detach().cpu().double()
    centre, side = crop_square(box, torch.zeros(len(box), dtype=torch.float64))
    half = side[:, None] * reach  # (B, 1)
    return extent_windows((centre - half).numpy(), (centre + half).numpy(), sizes)


def matrix_windows(matrix: torch.Tensor, sizes: np.ndarray, out_size: int) -> np.ndarray:
    """(B, 3, 3) source -> output matrices (as the render gets them), (B, 2) int64 frame (H, W), output side S
    -> (B, 4) int64 windows [top, left, height, width]: the rows and columns the render of THIS matrix can read
    with a nonzero weight (the source points of the output pixel centres, their taps), clamped to the frame and
    at least 1 x 1. A matrix that is not finite or singular (an invalid sample: it renders as fill) gets the
    whole frame."""
    # The render's own inverse (labels.matrix.affine_inverse, float64: a singular matrix gives inf/NaN, so the
    # whole frame), then numpy: the loader calls this per group of batches on the CPU, where numpy's small ops
    # cost a tenth of torch's.
    inverse = affine_inverse(matrix.detach().cpu().double()).numpy()
    last = out_size - 1
    corners = np.array([[0, 0], [last, 0], [0, last], [last, last]], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # an invalid sample's inf/NaN: expected, handled below
        points = corners @ inverse[:, :2, :2].transpose(0, 2, 1) + inverse[:, None, :2, 2]  # (B, 4, 2) x, y
    # Elementwise over the four corners: numpy's reductions over a short middle axis cost ~40 us each.
    lo = np.minimum(np.minimum(points[:, 0], points[:, 1]), np.minimum(points[:, 2], points[:, 3]))
    hi = np.maximum(np.maximum(points[:, 0], points[:, 1]), np.maximum(points[:, 2], points[:, 3]))
    return extent_windows(lo, hi, sizes)


def extent_windows(lo: np.ndarray, hi: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(B, 2) float64 [x, y] least and greatest source coordinates an output pixel centre maps to, (B, 2) int64
    frame (H, W) -> (B, 4) int64 windows [top, left, height, width]: columns ``floor(lo_x - SLACK) ..
    floor(hi_x + SLACK) + 1`` (the bilinear taps; rows likewise), clamped to the frame and at least 1 x 1; the
    whole frame where an extent is not finite."""
    lo, hi = lo - SLACK, hi + SLACK
    hw = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    wh = hw[:, ::-1]  # (B, 2) W, H: the x, y extents
    finite = (np.isfinite(lo) & np.isfinite(hi)).all(1)[:, None]
    lo, hi = np.where(finite, lo, 0), np.where(finite, hi, 0)
    # minimum/maximum rather than clip: a fifth of its cost on small arrays, the same values.
    first = np.maximum(np.minimum(np.floor(lo), wh - 1), 0).astype(np.int64)
    end = np.minimum(np.maximum(np.floor(hi) + 2, first + 1), wh).astype(np.int64)  # exclusive
    first, end = np.where(finite, first, 0), np.where(finite, end, wh)
    return np.stack([first[:, 1], first[:, 0], end[:, 1] - first[:, 1], end[:, 0] - first[:, 0]], 1)


@dataclass(frozen=True)
class ReadWindow:
    """What a loader reads of each frame for augmentation with ``config``: call it with a batch's (B, 4) boxes
    and (B, 2) frame sizes for :func:`read_windows`.

    Args:
        config: the augmentation whose draws the window must hold.
        train: the training draws (False: the eval framing, a smaller window; training windows hold it too).
        clip_length: T > 1: the batch is B clips of T clip-major frames cropped around their clip's box
            (:func:`~gpuaug.clip_params.clip_boxes` with ``crop``), as :class:`~gpuaug.ClipAugment` does.
        crop: how a clip's box is made from its frames' boxes (:func:`~gpuaug.clip_params.clip_boxes`).
    """

    config: AugmentConfig
    train: bool = True
    clip_length: int = 1
    crop: CropMode = "mean"

    def __post_init__(self) -> None:
        check_crop(self.crop)
        if self.clip_length < 1:
            raise ValueError(f"clip_length must be >= 1, got {self.clip_length}")

    def __call__(self, bbox: torch.Tensor, sizes: np.ndarray) -> np.ndarray:
        boxes = bbox if self.clip_length == 1 else clip_boxes(bbox, self.clip_length, self.crop)
        return read_windows(boxes, sizes, reach(self.config, self.train))
