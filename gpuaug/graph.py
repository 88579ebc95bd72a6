"""``CapturedAugment``: a fixed-layout :class:`~gpuaug.FaceAugment` step on CUDA replayed as one CUDA graph.

An augment step launches a few dozen small kernels (matrices, labels, colour maps, the render); at B=1024
their launch cost is a large part of the step. Captured once, the whole step is one graph launch.

What is fixed at capture: the device, the batch size B, the pixel buffer's capacity (a later batch's buffer
may be shorter: ragged batches vary), the landmark count and the config. Per call the params are drawn on
the CPU from the caller's generator (the same draws as ``aug(batch, generator)``), packed and copied from
pinned memory without blocking, the batch is copied into the static input buffers (device to device; skipped
when the batch is :attr:`CapturedAugment.batch` itself, e.g. filled in place by a loader; with
``share_pixels`` only the per-sample fields are copied, the pixels being a resident buffer), and the graph
is replayed. No host sync.

The returned :class:`~gpuaug.augment.AugmentedBatch` holds the graph's static output tensors: they are
overwritten by the next call, so consume them (or ``.clone()`` what you keep) before calling again. Its
``params`` are the CPU draws. Only the torch backend (``backend="torch"``) can be captured; DALI runs its
own executor.
"""

from __future__ import annotations

from dataclasses import fields, replace

import torch

from gpuaug.augment import AugmentedBatch, FaceAugment
from gpuaug.batch import FaceBatch
from gpuaug.params import AugmentParams, sample_params


class CapturedAugment:
    """Capture ``aug`` on batches laid out like ``example`` (a CUDA :class:`FaceBatch`); call it like ``aug``.

    Args:
        aug: the step to capture (torch backend); its train/eval mode at capture time is kept.
        example: a batch on the CUDA device whose B and pixel capacity the graph is built for; its values
            are used for the warm-up runs (which also compile the render kernel).
        warmup: eager runs on a side stream before capture (compile, caches, allocator).
        share_pixels: use ``example``'s pixel buffer itself as the static one (no copy, at capture or per
            call): for batches of a :class:`~gpuaug.ResidentFrames`, which all point into one buffer;
            a later batch must then point into that same buffer.
    """

    def __init__(self, aug: FaceAugment, example: FaceBatch, warmup: int = 3, share_pixels: bool = False) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1 (the first run compiles and allocates; that cannot happen "
                             f"inside a capture), got {warmup}")
        if example.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA batch, got one on {example.device}")
        if aug.backend_name != "torch":
            raise ValueError(f"only the torch backend can be captured, not {aug.backend_name!r}")
        self.aug, self.train = aug, aug.training
        self.share_pixels = share_pixels
        owned = [f.name for f in fields(FaceBatch)  # the labels the batch has: absent ones stay None
                 if not (share_pixels and f.name == "pixels") and f.name != "labels"
                 and getattr(example, f.name) is not None]
        self.batch = replace(example, labels={k: v.clone() for k, v in example.labels.items()},  # static inputs
                             **{name: getattr(example, name).clone() for name in owned})
        n = len(example)
        # Static packed params, as wide as this config's draws (its occluder slots).
        self._params = AugmentParams.identity(n, occluder_slots=aug.config.occluder_slots).pack().to(example.device)
        with torch.cuda.device(example.device):  # capture on the batch's device, not the current one
            side = torch.cuda.Stream(example.device)
            side.wait_stream(torch.cuda.current_stream(example.device))
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    self._step()
            torch.cuda.current_stream(example.device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: CUDA calls from other threads (a DataLoader's pin-memory thread) stay legal meanwhile.
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self._out = self._step()

    def _step(self) -> AugmentedBatch:
        # Unpacked inside the captured region, so the bool fields are recomputed from each call's params.
        return self.aug.apply(self.batch, AugmentParams.unpack(self._params))

    def load(self, batch: FaceBatch) -> None:
        """Copy ``batch`` into the static inputs (no sync); its pixels may be shorter than the capacity."""
        if len(batch) != len(self.batch):
            raise ValueError(f"captured for batches of {len(self.batch)}, got {len(batch)}")
        if self.share_pixels and batch.pixels.data_ptr() != self.batch.pixels.data_ptr():
            raise ValueError("captured with share_pixels: the batch must point into the same pixel buffer")
        if batch.pixels.numel() > self.batch.pixels.numel():
            raise ValueError(f"pixel buffer of {batch.pixels.numel()} bytes exceeds the captured capacity "
                             f"{self.batch.pixels.numel()}; capture with the largest batch layout")
        if batch.kinds != self.batch.kinds:
            raise ValueError(f"captured for batches with {', '.join(self.batch.kinds) or 'no labels'}, got one with "
                             f"{', '.join(batch.kinds) or 'none'}")
        if batch.labels.keys() != self.batch.labels.keys():
            raise ValueError(f"captured for labels of your own {sorted(self.batch.labels)}, got {sorted(batch.labels)}")
        for name, src in batch.labels.items():
            self.batch.labels[name].copy_(src, non_blocking=True)
        for f in fields(FaceBatch):
            src, dst = getattr(batch, f.name), getattr(self.batch, f.name)
            if src is None or f.name == "labels":
                continue
            if f.name == "pixels":
                if self.share_pixels:
                    continue
                dst = dst[: src.numel()]
            elif src.shape != dst.shape:
                raise ValueError(f"{f.name}: captured shape {tuple(dst.shape)}, got {tuple(src.shape)}")
            dst.copy_(src, non_blocking=True)

    def __call__(self, batch: FaceBatch, generator: torch.Generator | None = None) -> AugmentedBatch:
        """``aug(batch, generator)`` by graph replay; see the module docstring for the output's lifetime."""
        if batch is not self.batch:
            self.load(batch)
        params = sample_params(self.aug.config, len(self.batch), generator, train=self.train)
        # A fresh pinned block per call: the caching host allocator keeps it alive until the copy is done.
        self._params.copy_(params.pack().pin_memory(), non_blocking=True)
        with torch.cuda.device(self.batch.device):
            self.graph.replay()
        return replace(self._out, params=params)
