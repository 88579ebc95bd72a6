"""torch.profiler tables of the torch backend's render, kornia warp vs the default (gather) warp.

``python -m gpuaug.bench.profile [--batch 256] [--out bench/results]`` writes
``profile_torch_backend_<device>.txt``: median render time of each warp and the top ops of one profiled call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from gpuaug.augment import FaceAugment
from gpuaug.backends.torch_backend import render
from gpuaug.bench.cli import device_name
from gpuaug.bench.report import slug
from gpuaug.bench.workload import make_workload


def profile_warps(batch: int, height: int, width: int, out_size: int, repeats: int, device: torch.device) -> str:
    """Report text: for each warp, median ms of ``render`` over ``repeats`` and the profiler's top 12 ops."""
    work = make_workload(batch, height, width, out_size)
    aug = FaceAugment(work.config).to(device)
    b = work.batch.to(device)
    params = aug.sample_params(b, torch.Generator().manual_seed(0))
    args = (b, aug.matrix(b, params), params, work.config)
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if device.type == "cuda" else [])]
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    lines = [f"{device_name(device)}; batch {batch} {height}x{width} -> {out_size}; load {os.getloadavg()}"]
    for warp in ("kornia", "auto"):
        render(*args, warp=warp)  # warm-up (compiles the gather warp on the CPU)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            render(*args, warp=warp)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        with profile(activities=activities) as prof:
            render(*args, warp=warp)
        lines += [f"\nwarp={warp}: median {1e3 * median:.1f} ms = {batch / median:.0f} img/s (render only)",
                  prof.key_averages().table(sort_by=sort, row_limit=12)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gpuaug.bench.profile", description=__doc__)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--out-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    text = profile_warps(args.batch, args.height, args.width, args.out_size, args.repeats, device)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"profile_torch_backend_{slug(device_name(device))}.txt"
    path.write_text(text + "\n")
    print(text)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
