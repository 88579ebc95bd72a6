"""Loader-side rates: frames through ``FaceFrames`` + ``DataLoader`` (npz compressed / uncompressed / packed,
shuffled as in training and sequential as in evaluation), and host -> device copies."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from gpuaug.batch import FaceBatch, collate
from gpuaug.load.frames import FaceFrames
from gpuaug.load.packed import pack
from gpuaug.synth import write_dataset


@dataclass
class LoaderRate:
    """Frames per second of one pass after its first batch (median over repeats), each pass with a fresh
    dataset and workers; ``seconds`` include each video's decodes, as in a real epoch."""

    kind: str  # "npz compressed" / "npz uncompressed" / "packed" / "h2d pinned"
    order: str  # "shuffled" / "sequential" ("-" for h2d)
    workers: int
    frames: int
    seconds: list[float]
    bytes_per_frame: int

    @property
    def frames_per_second(self) -> float:
        return self.frames / sorted(self.seconds)[len(self.seconds) // 2]

    def as_dict(self) -> dict:
        return {**asdict(self), "frames_per_second": self.frames_per_second}


def write_datasets(root: Path, videos: int, frames: int, size: tuple[int, int], seed: int) -> dict[str, Path]:
    """The same synthetic videos as ``npz compressed``, ``npz uncompressed`` and ``packed``."""
    out = {}
    for kind, compressed in (("npz compressed", True), ("npz uncompressed", False)):
        folder = root / kind.replace(" ", "_")
        write_dataset(folder, videos=videos, frames=frames, seed=seed, sizes=[size], compressed=compressed)
        out[kind] = folder
    pack(out["npz compressed"], root / "packed", progress=False)
    out["packed"] = root / "packed"
    return out


def _one_pass(folder: Path, batch_size: int, workers: int, shuffle: bool) -> tuple[float, int]:
    """Seconds and frames of one pass, timed from the first batch on: worker start-up is a one-off that
    ``persistent_workers`` removes in training, so it would only blur the per-frame cost."""
    loader = DataLoader(FaceFrames(folder), batch_size=batch_size, num_workers=workers, collate_fn=collate,
                        shuffle=shuffle, generator=torch.Generator().manual_seed(0))
    if len(loader) < 2:
        raise ValueError(f"{folder}: a loader pass needs at least 2 batches of {batch_size} (one is untimed)")
    batches = iter(loader)
    next(batches)
    start = time.perf_counter()
    frames = sum(len(batch) for batch in batches)
    return time.perf_counter() - start, frames


def loader_rates(
    folders: dict[str, Path], batch_size: int, workers: tuple[int, ...], repeats: int,
    on_pass: Callable[[], None] | None = None,
) -> list[LoaderRate]:
    """Full passes over each folder for each worker count, shuffled then sequential."""
    rates = []
    for kind, folder in folders.items():
        size = sum(p.stat().st_size for p in folder.iterdir())
        for order in ("shuffled", "sequential"):
            for w in workers:
                seconds, frames = [], 0
                for _ in range(repeats):
                    dt, frames = _one_pass(folder, batch_size, w, shuffle=order == "shuffled")
                    seconds.append(dt)
                    if on_pass is not None:
                        on_pass()
                rates.append(LoaderRate(kind, order, w, frames, seconds, size // max(frames, 1)))
    return rates


def h2d_rate(batch: FaceBatch, device: torch.device, repeats: int) -> LoaderRate:
    """A pinned :class:`FaceBatch` copied to ``device`` (non-blocking, then synchronised)."""
    pinned = batch.pin_memory()
    pinned.to(device, non_blocking=True)
    torch.cuda.synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        pinned.to(device, non_blocking=True)
        torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    per_frame = pinned.pixels.numel() // len(pinned)
    return LoaderRate("h2d pinned", "-", 0, len(batch), seconds, per_frame)
