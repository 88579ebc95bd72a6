"""Augmentation params drawn in the loader, before the pixels are read, so each frame's read is only the window
THAT draw samples (:func:`~gpuaug.window.matrix_windows`), not the window of every draw of the config.

The loader reads a batch's boxes (a few bytes per frame) before it copies a pixel; with the params drawn there,
the matrix each sample renders with is known too. It comes from the augmentation's own
:meth:`~gpuaug.FaceAugment.matrix` (:meth:`~gpuaug.ClipAugment.matrix` for clips: the clip's crop box), the
code ``aug.apply(batch, params)`` runs, so the window and the render cannot disagree about the geometry.

Draws come in groups of :data:`DRAW_GROUP` batches, one generator per group seeded by (seed, epoch, rank,
group number) alone: an epoch's draws are reproducible, and a pass resumed at batch k draws what the
uninterrupted pass drew there (batch k's rows of its group's draw). Why groups: reading the boxes, drawing and
computing windows is some fifty small tensor ops whatever the batch size (the stream bench's draw row:
``python -m gpuaug.bench.stream``), each taking the GIL that the reading threads need between their per-frame
copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpuaug.augment import FaceAugment
from gpuaug.batch import FaceBatch
from gpuaug.clips import ClipAugment
from gpuaug.distributed import rank_generator
from gpuaug.params import AugmentParams
from gpuaug.window import matrix_windows

Augment = FaceAugment | ClipAugment
#: Batches whose params are drawn at once (see the module docstring).
DRAW_GROUP = 8
#: Key of the draws' random streams, before the group number: without it group g's stream would be
#: ``rank_generator(seed, epoch, rank, g)``, which other loaders use for their batch g (and SeedSequence ignores
#: a trailing 0, so group 0 would be the plain (seed, epoch, rank) stream a training loop draws from).
DRAW_STREAM = 2**41


def frame_augment(augment: Augment) -> FaceAugment:
    """The :class:`~gpuaug.FaceAugment` that renders ``augment``'s frames: its config, and its ``training``
    flag, the mode ``sample_params`` draws in (a ClipAugment's own flag may differ after ``clip_aug.aug.eval()``)."""
    return augment.aug if isinstance(augment, ClipAugment) else augment


def boxes_only(bbox: torch.Tensor, sizes: np.ndarray) -> FaceBatch:
    """A CPU :class:`~gpuaug.FaceBatch` of B samples holding only what drawing params and computing matrices
    read: the (B, 4) crop boxes (:func:`~gpuaug.crop.crop_boxes`, as its ``bbox``) and (B, 2) frame sizes; no
    pixels, no other label, zero keys."""
    b = len(bbox)
    return FaceBatch(pixels=torch.empty(0, dtype=torch.uint8), offsets=torch.zeros(b, dtype=torch.int64),
                     strides=torch.zeros(b, dtype=torch.int64), sizes=torch.as_tensor(sizes), bbox=bbox.cpu(),
                     keys=torch.zeros(b, 2, dtype=torch.int64))


@dataclass(frozen=True)
class Draws:
    """Params drawn for n frames and the window each frame's draw reads.

    Args:
        params: n rows (CPU; clips: clip-major, T rows per clip).
        windows: (n, 4) int64 [top, left, height, width], a ready :data:`~gpuaug.batch.Window` for
            ``FaceFrames.batch(indices, window=draws.windows)``.
        length: frames per item (T for clips, else 1).
    """

    params: AugmentParams
    windows: np.ndarray
    length: int = 1

    def rows(self, start: int, stop: int) -> Draws:
        """Frames ``start .. stop - 1`` (on item boundaries) as the draws of a batch of their own: params of
        ``stop - start`` rows (:meth:`~gpuaug.AugmentParams.rows`: occluder sources re-numbered into the batch)
        and (stop - start, 4) windows."""
        return Draws(self.params.rows(start, stop, self.length), self.windows[start:stop], self.length)


def draw(augment: Augment, bbox: torch.Tensor, sizes: np.ndarray, generator: torch.Generator,
         train: bool = True) -> Draws:
    """Draw ``augment``'s params for frames of (n, 4) float32 crop boxes and (n, 2) int64 sizes (H, W) (clips: whole
    clips, clip-major) from ``generator``, training draws or the eval framing (``train``), as
    ``augment.sample_params`` would for a batch of those frames, and each frame's window for its draw.

    Args:
        augment: the FaceAugment (or ClipAugment) whose params to draw.
        bbox: (n, 4) float32 crop boxes (:func:`~gpuaug.crop.crop_boxes`).
        sizes: (n, 2) int64 frame sizes (H, W).
        generator: the CPU generator the draws come from.
        train: training draws, or (False) the eval framing."""
    boxes = boxes_only(bbox, sizes)
    params = augment.sample_params(boxes, generator, train=train)
    out_size = frame_augment(augment).config.out_size
    length = augment.length if isinstance(augment, ClipAugment) else 1
    return Draws(params, matrix_windows(augment.matrix(boxes, params), sizes, out_size), length)


def draw_group(augment: Augment, bbox: torch.Tensor, sizes: np.ndarray, seed: int, epoch: int, group: int,
               rank: int = 0, train: bool = True) -> Draws:
    """:func:`draw` for the frames of batches ``group * DRAW_GROUP ..`` of an epoch (their boxes and sizes, in
    batch order), from the generator of (``seed``, ``epoch``, ``rank``, ``group``)
    (:func:`~gpuaug.distributed.rank_generator` with the draws' own stream key)."""
    return draw(augment, bbox, sizes, rank_generator(seed, epoch, rank, DRAW_STREAM, group), train)
