"""Loading speed, npz directory vs packed directory: frames/s through DataLoader + collate (no augmentation).

    python bench/loader_formats.py [--videos 8 --frames 32 --workers 1 2 --out bench/results/loader_formats.json]

Writes a synthetic data set (gpuaug.synth, compressed npz like typical recordings), packs it, then times
whole epochs for each format, worker count and order (shuffled, as in training; sequential, as in
evaluation). The CPU load average is printed with the figures: on a shared machine it moves them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from gpuaug.batch import collate
from gpuaug.load.frames import FaceFrames
from gpuaug.load.packed import pack
from gpuaug.synth import write_dataset


def frames_per_second(path: Path, workers: int, shuffle: bool, batch: int, epochs: int) -> float:
    """Frames/s over ``epochs`` epochs after one untimed warm-up batch (worker start-up excluded)."""
    loader = DataLoader(FaceFrames(path), batch_size=batch, shuffle=shuffle, collate_fn=collate,
                        num_workers=workers, persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(0))
    next(iter(loader))
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for b in loader:
            seen += len(b)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        npz, packed = Path(tmp) / "npz", Path(tmp) / "packed"
        write_dataset(npz, videos=args.videos, frames=args.frames, seed=0)
        pack(npz, packed, progress=False)
        load_before = os.getloadavg()
        rows = [
            {"format": name, "workers": w, "order": "shuffled" if shuffle else "sequential",
             "frames_per_s": round(frames_per_second(path, w, shuffle, args.batch, args.epochs), 1)}
            for shuffle in (True, False) for w in args.workers for name, path in (("npz", npz), ("packed", packed))
        ]
        sizes = {name: sum(f.stat().st_size for f in p.iterdir()) / 2**20 for name, p in (("npz", npz),
                                                                                       ("packed", packed))}
    result = {"videos": args.videos, "frames_per_video": args.frames, "batch": args.batch,
              "disk_mb": {k: round(v, 1) for k, v in sizes.items()}, "cpus": os.cpu_count(),
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "rows": rows}
    print(f"{args.videos} videos x {args.frames} frames, batch {args.batch}, {os.cpu_count()} CPUs, "
          f"disk npz {sizes['npz']:.0f} MB / packed {sizes['packed']:.0f} MB")
    print("| order | workers | npz frames/s | packed frames/s |\n|---|---|---|---|")
    for order in ("shuffled", "sequential"):
        for w in args.workers:
            fps = {r["format"]: r["frames_per_s"] for r in rows if r["order"] == order and r["workers"] == w}
            print(f"| {order} | {w} | {fps['npz']:.0f} | {fps['packed']:.0f} |")
    print("load average (1, 5, 15 min) before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
        *load_before, *result["loadavg_after"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
