"""End-to-end data path: read -> batch -> device -> augment with labels, shuffled, frames of mixed sizes.

Three ways to feed :class:`~gpuaug.FaceAugment` from the same packed data set, timed in one run:

- ``padded``: what gpuaug did before ragged batches: the DataLoader reads one sample at a time and
  :func:`~gpuaug.collate` pads every frame to the batch's largest (``layout="padded"``);
- ``ragged``: ``DataLoader(frames, collate_fn=gpuaug.collate)``: whole batches gathered straight from the
  memory maps into one ragged buffer (``FaceFrames.__getitems__``);
- ``resident``: :class:`~gpuaug.ResidentFrames` holds the data set on the device; a batch is an index select.

Each loader row is one pass per repeat with fresh workers, timed from its first batch on (worker start-up
is a one-off that ``persistent_workers`` removes). ``augment only`` augments the same ragged batches, already
on the device, with nothing else to do: the ceiling of every path.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from gpuaug.augment import AugmentedBatch, FaceAugment
from gpuaug.batch import FaceBatch, collate
from gpuaug.config import AugmentConfig
from gpuaug.load.frames import FaceFrames
from gpuaug.load.packed import pack
from gpuaug.load.resident import ResidentFrames
from gpuaug.sample import FaceSample
from gpuaug.synth import write_dataset

#: Frame sizes of the benchmark's data set (one per video, cycled), as in the real data: many sizes.
SIZES = ((240, 320), (360, 480), (480, 640))


@dataclass
class PathRate:
    """Frames per second of one data path (median over repeats)."""

    path: str  # "padded" / "ragged" / "resident" / "augment only"
    workers: int
    frames: int
    seconds: list[float]

    @property
    def frames_per_second(self) -> float:
        return self.frames / statistics.median(self.seconds)

    def as_dict(self) -> dict:
        return {"path": self.path, "workers": self.workers, "frames": self.frames, "seconds": self.seconds,
                "frames_per_second": self.frames_per_second}


class PerSample(Dataset):
    """``frames`` one sample at a time (no ``__getitems__``): the DataLoader path before ragged batches."""

    def __init__(self, frames: FaceFrames) -> None:
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> FaceSample:
        return self.frames[index]


def write_packed(root: Path, videos: int, frames: int, seed: int = 0) -> Path:
    """Synthetic videos of :data:`SIZES` (uncompressed npz), packed into ``root / "packed"``."""
    write_dataset(root / "npz", videos=videos, frames=frames, seed=seed, sizes=SIZES, compressed=False,
                  progress=True)
    pack(root / "npz", root / "packed")
    return root / "packed"


def _timed_pass(
    batches: Iterable[FaceBatch], step: Callable[[FaceBatch], object], device: torch.device
) -> tuple[float, int]:
    """Seconds and frames of one pass from its first batch on (the first batch is stepped, not timed)."""
    it = iter(batches)
    step(next(it))
    _sync(device)
    start, n = time.perf_counter(), 0
    for batch in it:
        step(batch)
        n += len(batch)
    _sync(device)
    return time.perf_counter() - start, n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _loader(frames: FaceFrames, path: str, batch_size: int, workers: int, device: torch.device) -> DataLoader:
    padded = path == "padded"
    return DataLoader(PerSample(frames) if padded else frames, batch_size=batch_size, shuffle=True,
                      num_workers=workers, collate_fn=partial(collate, layout="padded") if padded else collate,
                      pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))


PATHS = ("padded", "ragged", "resident", "augment only")


def end_to_end_rates(
    folder: Path, device: torch.device, batch_size: int, workers: tuple[int, ...], repeats: int,
    on_pass: Callable[[], None] | None = None, consume: Callable[[AugmentedBatch], object] | None = None,
    paths: tuple[str, ...] = PATHS,
) -> list[PathRate]:
    """Each of ``paths`` over the packed data set ``folder`` on ``device`` (padded and ragged once per worker
    count), ``repeats`` passes each; ``consume`` (e.g. a training step) takes every augmented batch."""
    frames = FaceFrames(folder)
    aug = FaceAugment(AugmentConfig()).to(device)
    gen = torch.Generator().manual_seed(0)

    def step(batch: FaceBatch) -> object:
        out = aug(batch.to(device, non_blocking=True), gen)
        return out if consume is None else consume(out)

    def rate(path: str, w: int, make: Callable[[], Iterable[FaceBatch]]) -> PathRate:
        seconds, n = [], 0
        for _ in range(repeats):
            dt, n = _timed_pass(make(), step, device)
            seconds.append(dt)
            if on_pass is not None:
                on_pass()
        return PathRate(path, w, n, seconds)

    rates = [rate(path, w, partial(_loader, frames, path, batch_size, w, device))
             for path in ("padded", "ragged") if path in paths for w in workers]
    if "resident" in paths:
        resident = ResidentFrames(frames, device, progress=False)
        epochs = iter(range(10**9))
        rates.append(rate("resident", 0, lambda: resident.batches(next(epochs), batch_size)))
    if "augment only" in paths:
        same = [b.to(device) for b in _loader(frames, "ragged", batch_size, 0, device)]
        rates.append(rate("augment only", 0, lambda: same))
    return rates
