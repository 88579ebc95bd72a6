"""Loader-side rates: npz frames through ``FaceFrames`` + ``DataLoader``, and host -> device copies."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from gpuaug.batch import FaceBatch, collate
from gpuaug.load.frames import FaceFrames
from gpuaug.synth import write_dataset


@dataclass
class LoaderRate:
    """Frames per second of one full pass (median over repeats), each pass with a fresh dataset and workers.

    ``seconds`` include worker start-up and each video's first decode, as in a real epoch.
    """

    kind: str  # "npz compressed" / "npz uncompressed" / "h2d pinned"
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
    """The same synthetic videos written twice: ``npz compressed`` and ``npz uncompressed``."""
    out = {}
    for kind, compressed in (("npz compressed", True), ("npz uncompressed", False)):
        folder = root / kind.replace(" ", "_")
        write_dataset(folder, videos=videos, frames=frames, seed=seed, sizes=[size], compressed=compressed)
        out[kind] = folder
    return out


def _one_pass(folder: Path, batch_size: int, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    loader = DataLoader(FaceFrames(folder), batch_size=batch_size, num_workers=workers, collate_fn=collate)
    frames = sum(len(batch) for batch in loader)
    return time.perf_counter() - start, frames


def loader_rates(
    folders: dict[str, Path], batch_size: int, workers: tuple[int, ...], repeats: int,
    on_pass: Callable[[], None] | None = None,
) -> list[LoaderRate]:
    """Full passes over each folder for each worker count."""
    rates = []
    for kind, folder in folders.items():
        for w in workers:
            seconds, frames = [], 0
            for _ in range(repeats):
                dt, frames = _one_pass(folder, batch_size, w)
                seconds.append(dt)
                if on_pass is not None:
                    on_pass()
            size = sum(p.stat().st_size for p in folder.glob("*.npz"))
            rates.append(LoaderRate(kind, w, frames, seconds, size // max(frames, 1)))
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
    per_frame = pinned.images[0].numel() * pinned.images.element_size()
    return LoaderRate("h2d pinned", 0, len(batch), seconds, per_frame)
