"""``python -m gpuaug.bench.camera``: the camera ops' cost on the CPU (or CUDA), on the same batches.

Rows: the base step (today's default chain); the webcam preset and the STAR recipe (at the base step's size and
grey output), with eager camera ops, with the ops compiled on their own (``GPUAUG_COMPILE_CAMERA=1``) and inside
``torch.compile(aug.apply, fullgraph=True)`` (warm-ups include the compiles);
albumentations 2.x doing the webcam chain per sample (the base chain plus RandomGamma, CoarseDropout, MotionBlur,
GaussianBlur, Downscale, GaussNoise, ShotNoise, ImageCompression at the preset's probabilities and ranges).
Results: ``bench/results/camera_<device name>.md`` with the load average before and after each row (the machine may
be shared).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from gpuaug import recipes
from gpuaug.augment import FaceAugment
from gpuaug.bench.cli import cpu_name
from gpuaug.bench.contenders import _albumentations
from gpuaug.bench.harness import time_step
from gpuaug.bench.report import slug
from gpuaug.bench.step import Unavailable
from gpuaug.bench.workload import Workload, make_workload
from gpuaug.config import AugmentConfig


def webcam_albumentations(A, c: AugmentConfig) -> list:
    """The webcam preset's camera ops as albumentations 2.x transforms (same probabilities and ranges)."""
    return [
        A.RandomGamma(gamma_range=(round(100 * c.gamma[0]), round(100 * c.gamma[1])), p=c.gamma_p),
        A.CoarseDropout(num_holes_range=(1, c.occluder_max), hole_height_range=c.occluder_size,
                        hole_width_range=c.occluder_size, fill="random_uniform", p=c.occluder_p),
        A.MotionBlur(blur_range=(3, 9), p=c.motion_blur_p),
        A.GaussianBlur(sigma_range=c.blur_sigma, p=c.blur_p),
        A.Downscale(scale_range=c.low_res, interpolation_pair={"downscale": 3, "upscale": 1}, p=c.low_res_p),
        A.GaussNoise(std_range=c.noise_std, p=c.noise_p),
        A.ShotNoise(scale_range=c.shot_noise, p=c.shot_noise_p),
        A.ImageCompression(quality_range=c.jpeg_quality, p=c.jpeg_p),
    ]


def _gpuaug(config: AugmentConfig, work: Workload, device: torch.device, mode: str = "eager") -> Callable[[], object]:
    """gpuaug's step: "eager" camera ops, "ops" with the ops compiled on their own (``GPUAUG_COMPILE_CAMERA=1``),
    "step" the whole step in ``torch.compile(aug.apply, fullgraph=True)``."""
    aug = FaceAugment(config).to(device)
    batch, g = work.batch.to(device), torch.Generator().manual_seed(0)
    if mode == "step":
        step = torch.compile(aug.apply, fullgraph=True)
        return lambda: step(batch, aug.sample_params(batch, g))
    if mode == "ops":
        def run() -> object:
            os.environ["GPUAUG_COMPILE_CAMERA"] = "1"
            try:
                return aug(batch, g)
            finally:
                os.environ.pop("GPUAUG_COMPILE_CAMERA")

        return run
    return partial(aug, batch, g)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    work = make_workload(args.batch, 240, 320, 128)
    base = work.config
    size = dict(out_size=base.out_size, grayscale_p=base.grayscale_p)
    webcam = recipes.webcam(**size)
    star = recipes.star(**size, blur_sigma=(0.3, recipes.star().blur_sigma[1] * base.out_size / 256))
    rows: list[tuple[str, Callable[[], Callable[[], object]], int]] = [
        ("base step (seed config)", lambda: _gpuaug(base, work, device), args.repeats),
        ("webcam preset", lambda: _gpuaug(webcam, work, device), args.repeats),
        ("webcam preset, ops compiled (GPUAUG_COMPILE_CAMERA=1)", lambda: _gpuaug(webcam, work, device, "ops"),
         args.repeats),
        ("webcam preset, whole step compiled", lambda: _gpuaug(webcam, work, device, "step"), args.repeats),
        ("STAR recipe", lambda: _gpuaug(star, work, device), args.repeats),
        ("STAR recipe, ops compiled", lambda: _gpuaug(star, work, device, "ops"), args.repeats),
        ("base step, whole step compiled", lambda: _gpuaug(base, work, device, "step"), args.repeats),
    ]
    if device.type == "cpu":
        webcam_work = Workload(**{**vars(work), "config": webcam})
        rows.append(("albumentations 2.x per sample, webcam chain",
                     lambda: _albumentations(webcam_work, device, webcam_albumentations), 2))
    machine = cpu_name() if device.type == "cpu" else f"cuda {torch.cuda.get_device_name(device)}"
    lines = [f"# Camera ops, {machine}, torch {torch.__version__}", "",
             f"batch {args.batch} frames of 240x320 -> 128x128 grey, median of the timed repeats. Every op runs on "
             "every sample (static shapes; a sample it skips gets the identity), so a preset's cost does not shrink "
             "with its probabilities. Warm-up includes compiles unless Inductor's on-disk cache already held them. "
             "The machine may be shared: compare rows by the load average next to them.", "",
             "| row | img/s | median ms | x base | warm-up s | load avg before/after |", "|---|---|---|---|---|---|"]
    base_rate = None
    for name, build, repeats in rows:
        before = os.getloadavg()[0]
        try:
            step = build()
        except Unavailable as exc:
            lines.append(f"| {name} | unavailable: {exc} | | | | |")
            continue
        timing = time_step(step, args.batch, device, repeats=repeats, warmup=1)
        median = sorted(timing.seconds)[len(timing.seconds) // 2]
        rate = args.batch / median
        base_rate = base_rate or rate
        lines.append(f"| {name} | {rate:.0f} | {median * 1000:.0f} | {rate / base_rate:.2f} | "
                     f"{timing.warmup_seconds:.1f} | {before:.2f} / {os.getloadavg()[0]:.2f} |")
        print(lines[-1], flush=True)
    out = Path(args.out) / f"camera_{slug(machine)}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
