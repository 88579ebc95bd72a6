"""``FaceBatch`` and ``collate``: frames of mixed sizes in one flat pixel buffer, plus their labels.

A batch's frames live back to back in one flat uint8 buffer; each sample has the offset of its first byte,
its row stride in bytes and its true (H, W). Two layouts share this one form:

- ragged (the default): rows of ``3 W`` bytes, no padding; one copy per byte from the source frames;
- padded: every frame in an ``Hmax x Wmax`` slot (rows of ``3 Wmax`` bytes), what ``collate`` did before;
  kept for comparison and for code that wants a dense ``(B, Hmax, Wmax, 3)`` tensor.

Kernels address a tap as ``pixels[offset + y * stride + 3 x + channel]``, so they read either layout, and a
data set held whole on a device (:mod:`gpuaug.load.resident`) hands out batches that point into its buffer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
import torch

from gpuaug.buffers import pixel_buffer
from gpuaug.checks import check_samples
from gpuaug.sample import LABEL_FIELDS, FaceSample
from gpuaug.transfer import move

Layout = Literal["ragged", "padded"]


@dataclass
class FaceBatch:
    """A batch of raw frames and labels.

    pixels (N,) uint8: the frames' RGB bytes; offsets (B,) int64: index in ``pixels`` of each frame's
    pixel (0, 0); strides (B,) int64: bytes per row (3 W ragged, 3 Wmax padded); sizes (B, 2) int64 true
    (H, W). Labels, float32 in source-pixel coordinates (pixel centres at integers): bbox (B, 4) [x0, y0, x1,
    y1]; landmarks2d (B, L, 2); landmarks3d (B, L, 3); head_pose (B, 3) [yaw, pitch, roll] degrees; gaze
    (B, 3). keys (B, 2) int64 (video, frame).
    """

    pixels: torch.Tensor
    offsets: torch.Tensor
    strides: torch.Tensor
    sizes: torch.Tensor
    bbox: torch.Tensor
    landmarks2d: torch.Tensor
    landmarks3d: torch.Tensor
    head_pose: torch.Tensor
    gaze: torch.Tensor
    keys: torch.Tensor

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    @classmethod
    def from_padded(cls, images: torch.Tensor, sizes: torch.Tensor, **labels: torch.Tensor) -> FaceBatch:
        """A batch over a dense (B, Hmax, Wmax, 3) uint8 tensor (no copy when it is contiguous); frame i is
        ``images[i, :sizes[i, 0], :sizes[i, 1]]``. ``labels``: the label fields and ``keys``."""
        b, h, w, _ = images.shape
        slot = torch.arange(b, dtype=torch.int64, device=images.device)
        return cls(pixels=images.contiguous().reshape(-1), offsets=slot * (h * w * 3),
                   strides=torch.full((b,), 3 * w, dtype=torch.int64, device=images.device), sizes=sizes, **labels)

    @property
    def images(self) -> torch.Tensor:
        """(B, Hmax, Wmax, 3) uint8, each frame at the top left and zeros beyond its size (a new tensor;
        reads the sizes on the host)."""
        h, w = (int(v) for v in self.sizes.amax(0).tolist()) if len(self) else (0, 0)
        dev = self.device
        y = torch.arange(h, device=dev)[None, :, None, None]
        x = torch.arange(w, device=dev)[None, None, :, None]
        c = torch.arange(3, device=dev)[None, None, None, :]
        index = self.offsets[:, None, None, None] + y * self.strides[:, None, None, None] + 3 * x + c
        inside = (y < self.sizes[:, 0, None, None, None]) & (x < self.sizes[:, 1, None, None, None])
        return torch.where(inside, self.pixels[index.clamp(0, max(self.pixels.numel() - 1, 0))], 0)

    def frame(self, i: int) -> torch.Tensor:
        """Frame ``i`` as an (H, W, 3) uint8 view of ``pixels``."""
        h, w = (int(v) for v in self.sizes[i].tolist())
        offset, stride = int(self.offsets[i]), int(self.strides[i])
        return self.pixels.as_strided((h, w, 3), (stride, 3, 1), offset)

    def select(self, index: torch.Tensor | slice | Sequence[int]) -> FaceBatch:
        """The samples at ``index`` (in that order), sharing this batch's pixel buffer (no pixel copy)."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "pixels"})

    def _map(self, fn) -> FaceBatch:
        return replace(self, **{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> FaceBatch:
        """Every tensor moved to ``device`` (``non_blocking`` only for copies to an accelerator: see
        :func:`gpuaug.transfer.move`)."""
        return self._map(lambda t: move(t, device, non_blocking))

    def pin_memory(self) -> FaceBatch:
        """Page-locked copy, so ``DataLoader(pin_memory=True)`` and non-blocking H2D copies work."""
        return self._map(lambda t: t.pin_memory())


def _frame_bytes(samples: Sequence[FaceSample], layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sizes (B, 2), offsets (B,), strides (B,) and total bytes of ``samples`` laid out as ``layout``."""
    sizes = np.array([s.image.shape[:2] for s in samples], dtype=np.int64).reshape(-1, 2)
    if layout == "ragged":
        nbytes = sizes[:, 0] * sizes[:, 1] * 3
        offsets = np.concatenate([[0], np.cumsum(nbytes)[:-1]]).astype(np.int64)
        return sizes, offsets, 3 * sizes[:, 1], int(nbytes.sum())
    if layout == "padded":
        h, w = sizes.max(axis=0)
        slot = int(h * w * 3)
        return sizes, np.arange(len(samples), dtype=np.int64) * slot, np.full(len(samples), 3 * w), slot * len(samples)
    raise ValueError(f"unknown layout {layout!r}; choose 'ragged' or 'padded'")


def collate(
    samples: Sequence[FaceSample] | FaceBatch, layout: Layout = "ragged", pin_memory: bool = False
) -> FaceBatch:
    """Samples -> a :class:`FaceBatch` (one copy of each frame's bytes); a FaceBatch is passed through (padded
    first when ``layout="padded"``).

    ``layout="ragged"`` (default) packs frames back to back; ``"padded"`` zero-pads each to the largest H
    and W. ``pin_memory`` allocates the pixel buffer page-locked (for non-blocking copies to a GPU). Raises
    :class:`~gpuaug.errors.BatchError` naming the sample and field for a malformed or non-finite sample.
    """
    if isinstance(samples, FaceBatch):  # FaceFrames.__getitems__ built it already (ragged)
        if layout == "ragged":
            return samples
        labels = {name: getattr(samples, name) for name in (*LABEL_FIELDS, "keys")}
        return FaceBatch.from_padded(samples.images, samples.sizes, **labels)
    check_samples(samples)
    sizes, offsets, strides, total = _frame_bytes(samples, layout)
    pixels = pixel_buffer(total, pin_memory)
    if layout == "padded":
        pixels.zero_()
    flat = pixels.numpy()
    for s, o, st in zip(samples, offsets, strides, strict=True):
        h, w = s.image.shape[:2]
        np.lib.stride_tricks.as_strided(flat[o:], (h, w, 3), (int(st), 3, 1), writeable=True)[...] = s.image
    return FaceBatch(
        pixels=pixels,
        offsets=torch.from_numpy(offsets),
        strides=torch.from_numpy(strides.astype(np.int64)),
        sizes=torch.from_numpy(sizes),
        keys=torch.tensor([s.key for s in samples], dtype=torch.int64).reshape(-1, 2),
        **{name: torch.from_numpy(np.stack([getattr(s, name) for s in samples]).astype(np.float32))
           for name in LABEL_FIELDS},
    )
