"""``ResidentClips``: one rank's share of the clips, their frames held once on a device; a batch of clips is
an index select of B * T frames (no pixel copy, no host sync on CUDA)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from gpuaug.batch import FaceBatch
from gpuaug.load.clips import FaceClips
from gpuaug.load.resident import ResidentFrames, epoch_batches, epoch_order, shard_indices


class ResidentClips:
    """Rank ``rank``'s clips of ``clips`` (clip rank, rank + W, ...: disjoint across ranks, every clip on one),
    with the frames they use loaded once onto ``device`` (a frame shared by overlapping clips is held once).

    Args:
        clips: the clip data set.
        device: where the frames are held.
        rank: this process's rank (0 <= rank < world_size).
        world_size: how many processes share the clips.
        progress: a progress bar while loading; None (default) shows it on a terminal only.

    Attributes:
        indices: (n_r,) int64 CPU: clip number (in ``clips``) of each held clip.
        frames: the held frames (:class:`~gpuaug.ResidentFrames` over exactly those frames).
        windows: (n_r, T) int64 on ``device``: each held clip's frames as positions in ``frames``.
    """

    def __init__(
        self,
        clips: FaceClips,
        device: torch.device | str,
        rank: int = 0,
        world_size: int = 1,
        progress: bool | None = None,
    ) -> None:
        self.length, self.rank, self.world_size, self._total = clips.length, rank, world_size, len(clips)
        held = shard_indices(len(clips), rank, world_size)
        if not len(held):
            raise ValueError(f"rank {rank} of {world_size} holds no clip: the data set has {len(clips)}")
        needed = clips.windows.indices[held]
        frame_indices, positions = np.unique(needed, return_inverse=True)
        self.frames = ResidentFrames(clips.frames, device, rank, world_size, progress, indices=frame_indices)
        self.indices = torch.from_numpy(held)
        self._positions = torch.from_numpy(positions.reshape(needed.shape))  # host copy, for host indices
        self.windows = self._positions.to(self.frames.device)

    @property
    def device(self) -> torch.device:
        return self.frames.device

    def __len__(self) -> int:
        """Clips held by this rank."""
        return len(self.indices)

    def __getitem__(self, index: torch.Tensor | Sequence[int] | slice) -> FaceBatch:
        """The held clips at positions ``index`` (B,) as one (B * T)-frame FaceBatch, clip-major. A host index is
        looked up on the host (out of range: ``IndexError``); a device tensor on the device (no wait)."""
        if isinstance(index, torch.Tensor) and index.device.type != "cpu":
            return self.frames.data.select(self.windows[index].reshape(-1))
        return self.frames[self._positions[index].reshape(-1)]

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches of ``batch_size`` clips per epoch (see :meth:`ResidentFrames.num_batches`)."""
        return epoch_batches(len(self), self._total, self.world_size, batch_size, drop_last)

    def batches(self, epoch: int, batch_size: int, seed: int = 0, drop_last: bool = False) -> Iterator[FaceBatch]:
        """One epoch: every held clip once, in a permutation fixed by (seed, epoch, rank), ``batch_size`` clips
        (``batch_size * T`` frames) per batch; the last may be short unless ``drop_last``."""
        order = epoch_order(len(self), epoch, seed, self.rank, self.device)
        for b in range(self.num_batches(batch_size, drop_last)):
            yield self[order[b * batch_size:(b + 1) * batch_size]]
