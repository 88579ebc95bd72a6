"""End-to-end data path: read -> batch -> device -> augment with labels, shuffled, frames of mixed sizes.

Three ways to feed :class:`~gpuaug.FaceAugment` from the same packed data set, timed in one run:

- ``padded``: what gpuaug did before ragged batches: the DataLoader reads one sample at a time and
  :func:`~gpuaug.collate` pads every frame to the batch's largest (``layout="padded"``);
- ``ragged``: ``DataLoader(frames, collate_fn=gpuaug.collate)``: whole batches gathered straight from the
  memory maps into one ragged buffer (``FaceFrames.__getitems__``);
- ``resident``: :class:`~gpuaug.ResidentFrames` holds the data set on the device; a batch is an index select;
- ``stream``: :class:`~gpuaug.StreamLoader`, threads reading each frame's window for the config into recycled
  buffers (pinned on CUDA), a few batches in flight; ``stream, whole frames`` the same reading whole frames;
  ``stream, per-draw windows`` (asked for by name only) the same drawing the params in the loader
  (``augment=``) and reading each draw's own window, the step ``aug.apply(batch, params)``.

Each loader row is one pass per repeat with fresh workers, timed from its first batch on (worker start-up
is a one-off that ``persistent_workers`` removes). ``augment only`` augments the same ragged batches, already
on the device, with nothing else to do: the ceiling of every path.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from gpuaug.augment import AugmentedBatch, FaceAugment
from gpuaug.batch import collate
from gpuaug.config import AugmentConfig
from gpuaug.load.frames import FaceFrames
from gpuaug.load.packed import pack
from gpuaug.load.resident import ResidentFrames
from gpuaug.load.stream import Item, StreamLoader
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


def _timed_pass(batches: Iterable[Item], step: Callable[[Item], object], device: torch.device) -> tuple[float, int]:
    """Seconds and frames of one pass from its first batch on (the first batch is stepped, not timed)."""
    it = iter(batches)
    step(next(it))
    _sync(device)
    start, n = time.perf_counter(), 0
    for item in it:
        step(item)
        n += len(item[0] if isinstance(item, tuple) else item)
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


def _next_epoch(loader: StreamLoader) -> Callable[[], Iterable[Item]]:
    """Each call: the loader's next epoch (a fresh order, as in training)."""
    epochs = itertools.count()
    return lambda: loader.batches(next(epochs))


PATHS = ("padded", "ragged", "resident", "stream", "stream, whole frames", "augment only")


def end_to_end_rates(
    folder: Path, device: torch.device, batch_size: int, workers: tuple[int, ...], repeats: int,
    on_pass: Callable[[], None] | None = None, consume: Callable[[AugmentedBatch], object] | None = None,
    paths: tuple[str, ...] = PATHS, interleave: bool = False,
) -> list[PathRate]:
    """Each of ``paths`` over the packed data set ``folder`` on ``device`` (padded and ragged once per worker
    count), ``repeats`` passes each; ``consume`` (e.g. a training step) takes every augmented batch.
    ``interleave``: one untimed pass of each first, then rounds of one pass of each (a busy moment of a shared
    machine then hits every row alike); else each row's passes back to back. Paths beyond :data:`PATHS`:
    ``"stream, per-draw windows"``, and ``"stream, per-draw windows, mapped"`` (the same from memory maps:
    ``FaceFrames(folder, mapped=True)``)."""
    frames = FaceFrames(folder)
    aug = FaceAugment(AugmentConfig()).to(device)
    gen = torch.Generator().manual_seed(0)

    def step(item: Item) -> object:
        # (batch, params) from StreamLoader(augment=): the loader drew the params
        out = aug.apply(*item) if isinstance(item, tuple) else aug(item.to(device, non_blocking=True), gen)
        return out if consume is None else consume(out)

    rows: list[tuple[str, int, Callable[[], Iterable[Item]]]] = [
        (path, w, partial(_loader, frames, path, batch_size, w, device))
        for path in ("padded", "ragged") if path in paths for w in workers]
    for path in ("stream", "stream, whole frames", "stream, per-draw windows", "stream, per-draw windows, mapped"):
        if path in paths:
            data = FaceFrames(folder, mapped=True) if path.endswith("mapped") else frames
            loader = StreamLoader(data, batch_size, shuffle=True, device=device,
                                  config=aug.config if path == "stream" else None,
                                  augment=aug if "per-draw" in path else None)
            rows.append((path, 0, _next_epoch(loader)))
    if "resident" in paths:
        resident = ResidentFrames(frames, device, progress=False)
        epochs = iter(range(10**9))
        rows.append(("resident", 0, lambda: resident.batches(next(epochs), batch_size)))
    if "augment only" in paths:
        same = [b.to(device) for b in _loader(frames, "ragged", batch_size, 0, device)]
        rows.append(("augment only", 0, lambda: same))
    seconds: list[list[float]] = [[] for _ in rows]
    counts = [0] * len(rows)
    # (repeat, row); repeat -1: the untimed warm-up pass
    passes = ([(k, i) for k in range(-1, repeats) for i in range(len(rows))] if interleave
              else [(k, i) for i in range(len(rows)) for k in range(repeats)])
    for k, i in passes:
        dt, counts[i] = _timed_pass(rows[i][2](), step, device)
        if k >= 0:
            seconds[i].append(dt)
            if on_pass is not None:
                on_pass()
    return [PathRate(path, w, n, secs) for (path, w, _), n, secs in zip(rows, counts, seconds, strict=True)]
