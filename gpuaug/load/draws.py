"""Augmentation params drawn in the loader, before the pixels are read, so each frame's read is only the window
THAT draw samples (:func:`~gpuaug.window.matrix_windows`), not the window of every draw of the config.

The loader knows a batch's labels (the boxes) before it copies a pixel; with the params drawn there, the matrix
each sample renders with is known too. It comes from the augmentation's own :meth:`~gpuaug.FaceAugment.matrix`
(:meth:`~gpuaug.ClipAugment.matrix` for clips: the clip's crop box), the code ``aug.apply(batch, params)`` runs,
so the window and the render cannot disagree about the geometry.

Each batch's params come from a generator seeded by (seed, epoch, batch number, rank) alone, so an epoch's draws
are reproducible and a pass resumed at batch k draws what the uninterrupted pass drew there.
"""

from __future__ import annotations

import numpy as np
import torch

from gpuaug.augment import FaceAugment
from gpuaug.batch import FaceBatch
from gpuaug.clips import ClipAugment
from gpuaug.params import AugmentParams
from gpuaug.window import matrix_windows

Augment = FaceAugment | ClipAugment


def draw_generator(seed: int, epoch: int, batch: int, rank: int = 0) -> torch.Generator:
    """A CPU generator for batch ``batch`` of ``epoch`` on ``rank``, seeded from those numbers and ``seed``
    only (``numpy.random.SeedSequence`` mixes them: nearby tuples give unrelated streams)."""
    state = np.random.SeedSequence([seed, epoch, batch, rank]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def frame_augment(augment: Augment) -> FaceAugment:
    """The :class:`~gpuaug.FaceAugment` that renders ``augment``'s frames: its config, and its ``training``
    flag, the mode ``sample_params`` draws in (a ClipAugment's own flag may differ after ``clip_aug.aug.eval()``)."""
    return augment.aug if isinstance(augment, ClipAugment) else augment


def boxes_only(bbox: torch.Tensor, sizes: np.ndarray) -> FaceBatch:
    """A CPU :class:`~gpuaug.FaceBatch` of B samples holding only what drawing params and computing matrices
    read: the (B, 4) boxes and (B, 2) frame sizes; no pixels, no landmarks (L = 0), zero pose, gaze and keys."""
    b = len(bbox)
    return FaceBatch(pixels=torch.empty(0, dtype=torch.uint8), offsets=torch.zeros(b, dtype=torch.int64),
                     strides=torch.zeros(b, dtype=torch.int64), sizes=torch.as_tensor(sizes), bbox=bbox.cpu(),
                     landmarks2d=torch.zeros(b, 0, 2), landmarks3d=torch.zeros(b, 0, 3), head_pose=torch.zeros(b, 3),
                     gaze=torch.zeros(b, 3), keys=torch.zeros(b, 2, dtype=torch.int64))


class DrawWindows:
    """A read window (:data:`~gpuaug.batch.Window`) that draws the batch's params from ``generator`` when
    called, keeps them in :attr:`params`, and gives each frame the window of its own draw. One per batch.

    ``FaceFrames.batch(indices, window=draw)`` (or ``FaceClips.batch``) then returns a
    :class:`~gpuaug.batch.WindowedBatch` that ``augment.apply(batch, draw.params)`` renders bit-identical to
    the whole frames under the same params (``tests/test_window_reads.py``).
    """

    def __init__(self, augment: Augment, generator: torch.Generator, train: bool = True) -> None:
        self.augment, self.generator, self.train = augment, generator, train
        self.params: AugmentParams | None = None

    def __call__(self, bbox: torch.Tensor, sizes: np.ndarray) -> np.ndarray:
        """(B, 4) float32 boxes, (B, 2) int64 frame (H, W) -> (B, 4) int64 windows [top, left, height, width];
        draws :attr:`params` (CPU, B rows)."""
        boxes = boxes_only(bbox, sizes)
        # In the mode fixed when the pass started: a mode switch mid-pass (a validation in between) cannot reach
        # the batches already being read.
        self.params = self.augment.sample_params(boxes, self.generator, train=self.train)
        out_size = frame_augment(self.augment).config.out_size
        return matrix_windows(self.augment.matrix(boxes, self.params), sizes, out_size)
