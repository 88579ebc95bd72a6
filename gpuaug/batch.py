"""``FaceBatch`` and ``collate``: frames of mixed sizes padded into one batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from gpuaug.load.frames import FaceSample


@dataclass
class FaceBatch:
    """A batch of raw frames and labels.

    images (B, Hmax, Wmax, 3) uint8 RGB, zero-padded at the bottom/right; sizes (B, 2) int64 true (H, W);
    bbox (B, 4) [x0, y0, x1, y1]; landmarks2d (B, 68, 2); landmarks3d (B, 68, 3); head_pose (B, 3)
    [yaw, pitch, roll] degrees; gaze (B, 3); keys (B, 2) int64 (video, frame). Labels are float32 in
    source-pixel coordinates (pixel centres at integers).
    """

    images: torch.Tensor
    sizes: torch.Tensor
    bbox: torch.Tensor
    landmarks2d: torch.Tensor
    landmarks3d: torch.Tensor
    head_pose: torch.Tensor
    gaze: torch.Tensor
    keys: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def _map(self, fn) -> FaceBatch:
        return replace(self, **{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> FaceBatch:
        """Every tensor moved to ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> FaceBatch:
        """Page-locked copy, so ``DataLoader(pin_memory=True)`` and non-blocking H2D copies work."""
        return self._map(lambda t: t.pin_memory())


def collate(samples: Sequence[FaceSample]) -> FaceBatch:
    """Stack samples into a :class:`FaceBatch`, zero-padding frames to the largest H and W."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    sizes = np.array([s.image.shape[:2] for s in samples], dtype=np.int64)
    h, w = sizes.max(axis=0)
    images = torch.zeros((len(samples), int(h), int(w), 3), dtype=torch.uint8)
    for i, s in enumerate(samples):
        images[i, : s.image.shape[0], : s.image.shape[1]] = torch.from_numpy(np.ascontiguousarray(s.image))

    def stack(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(s, name) for s in samples]).astype(np.float32))

    return FaceBatch(
        images=images,
        sizes=torch.from_numpy(sizes),
        bbox=stack("bbox"),
        landmarks2d=stack("landmarks2d"),
        landmarks3d=stack("landmarks3d"),
        head_pose=stack("head_pose"),
        gaze=stack("gaze"),
        keys=torch.tensor([s.key for s in samples], dtype=torch.int64),
    )
