"""torch.profiler tables of the torch backend: each warp's render alone, then the whole step.

``python -m gpuaug.bench.profile [--batch 256] [--out bench/results]`` writes
``profile_torch_backend_<device>.txt``: for each warp (kornia, the eager gather on CUDA, the default: Triton on
CUDA, the compiled gather on the CPU) the median render time, its effective bandwidth for the bytes a render
must move (the output, plus each sample's source window once: S^2 / k^2 pixels of 3 bytes at zoom k) and the
top ops of one profiled call; then the same for the whole step (params, matrices, labels and render).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from gpuaug.augment import FaceAugment
from gpuaug.backends.torch_backend import render
from gpuaug.bench.cli import device_name
from gpuaug.bench.report import slug
from gpuaug.bench.workload import make_workload


def _median_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()  # warm-up (compiles the kernel)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def moved_bytes(matrix: torch.Tensor, sizes: torch.Tensor, out_size: int, out_bytes: int) -> int:
    """Bytes a render must move at least: its output, plus each sample's source window read once (the S x S
    output's footprint, S^2 / k^2 pixels at zoom k = sqrt|det A|, at most the frame, 3 bytes a pixel)."""
    det = (matrix[:, 0, 0] * matrix[:, 1, 1] - matrix[:, 0, 1] * matrix[:, 1, 0]).abs()
    window = torch.minimum(out_size**2 / det, sizes.prod(1).to(det))
    return out_bytes + int(3 * window.sum())


def profile_warps(batch: int, height: int, width: int, out_size: int, repeats: int, device: torch.device) -> str:
    """Report text: for each warp and the whole step, median ms over ``repeats`` and the profiler's top ops."""
    work = make_workload(batch, height, width, out_size)
    aug = FaceAugment(work.config).to(device)
    b = work.batch.to(device)
    g = torch.Generator().manual_seed(0)
    params = aug.sample_params(b, g)
    matrix = aug.matrix(b, params)
    args = (b, matrix, params, work.config)
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if device.type == "cuda" else [])]
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    lines = [f"{device_name(device)}; batch {batch} {height}x{width} -> {out_size}; load {os.getloadavg()}"]
    out = render(*args)
    moved = moved_bytes(matrix, b.sizes, out_size, out.numel() * out.element_size())
    runs = {f"render, warp={w}": partial(render, *args, warp=w)
            for w in ("kornia", *(["gather"] if device.type == "cuda" else []), "auto")}
    runs["whole step (auto)"] = partial(aug, b, g)
    for name, fn in runs.items():
        median = _median_seconds(fn, repeats, device)
        with profile(activities=activities) as prof:
            fn()
        lines += [f"\n{name}: median {1e3 * median:.2f} ms = {batch / median:.0f} img/s; "
                  f"{moved / median / 1e9:.1f} GB/s for the {moved / 1e6:.1f} MB a render moves",
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
