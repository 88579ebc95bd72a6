"""``python -m gpuaug.bench.camera``: the camera ops' cost on the CPU (or CUDA), on the same batches.

Rows: the base step (today's default chain); the webcam preset and the STAR recipe (at the base step's size and
grey output) as the step runs them (on the CPU each op compiled, on the rows that draw it:
:mod:`gpuaug.camera.staged`), and inside ``torch.compile(aug.apply, fullgraph=True)`` (every op over every
sample, as CUDA runs them; warm-ups include the compiles); albumentations 2.x doing the webcam chain per sample
(the base chain plus RandomGamma, CoarseDropout, MotionBlur, GaussianBlur, Downscale, GaussNoise, ShotNoise,
ImageCompression at the preset's probabilities and ranges), in the main process and in DataLoader workers (one
per core, batches of the same size); kornia's batched chain (the base chain's ``AugmentationSequential`` plus
RandomGamma, RandomErasing, RandomMotionBlur, RandomGaussianBlur, RandomGaussianNoise and RandomJPEG at the
preset's probabilities: kornia has no downscale and no shot noise, so its row does less).
Results: ``bench/results/camera_<device name>.md`` with the load average before and after each row (the machine may
be shared).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import torch

from gpuaug import recipes
from gpuaug.augment import FaceAugment
from gpuaug.bench.cli import cpu_name
from gpuaug.bench.contenders import _albumentations, _kornia
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


def webcam_kornia(K, c: AugmentConfig) -> list:
    """The webcam preset's camera ops that kornia has, as its batched augmentations (same probabilities; the
    occluder as one erased rectangle of the preset's area range; no downscale, no shot noise)."""
    radius = (round(c.motion_blur_length[1]) - 1) // 2
    return [
        K.RandomGamma(gamma=c.gamma, p=c.gamma_p),
        K.RandomErasing(scale=(c.occluder_size[0] ** 2, c.occluder_size[1] ** 2), value=0.5, p=c.occluder_p),
        K.RandomMotionBlur(kernel_size=(3, 2 * radius + 1), angle=180.0, direction=1.0, p=c.motion_blur_p),
        K.RandomGaussianBlur(kernel_size=7, sigma=c.blur_sigma, p=c.blur_p),
        K.RandomGaussianNoise(std=sum(c.noise_std) / 2, p=c.noise_p),
        K.RandomJPEG(jpeg_quality=c.jpeg_quality, p=c.jpeg_p),
    ]


def _kornia_webcam(work: Workload, device: torch.device) -> Callable[[], object]:
    """kornia's base chain (the main bench's contender), then :func:`webcam_kornia` on its output."""
    try:
        import kornia.augmentation as K
    except ImportError as exc:
        raise Unavailable(f"kornia not installed ({exc})") from exc
    base = _kornia(work, device)
    camera = K.AugmentationSequential(*webcam_kornia(K, recipes.webcam())).to(device)

    def step() -> object:
        images, landmarks = base()
        return camera(images), landmarks

    return step


class _AlbumentationsSamples(torch.utils.data.Dataset):
    """Sample i of the workload through one albumentations step per sample (what a DataLoader worker runs)."""

    def __init__(self, step: Callable[[int], object], n: int) -> None:
        self.step, self.n = step, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> object:
        return self.step(i)


def _albumentations_workers(work: Workload, device: torch.device) -> Callable[[], object]:
    """The albumentations webcam chain in DataLoader worker processes, one per core: one batch per call."""
    sample = _albumentations(work, device, webcam_albumentations, per_item=True)
    workers = max(1, len(os.sched_getaffinity(0)))
    loader = torch.utils.data.DataLoader(_AlbumentationsSamples(sample, len(work)), batch_size=len(work),
                                         num_workers=workers, persistent_workers=True, prefetch_factor=1,
                                         collate_fn=list, sampler=_Forever(len(work)))
    batches = iter(loader)
    return lambda: next(batches)


class _Forever(torch.utils.data.Sampler):
    """0 .. n-1, over and over (the workers never run dry between timed repeats)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[int]:
        while True:
            yield from range(self.n)


def _gpuaug(config: AugmentConfig, work: Workload, device: torch.device, mode: str = "step") -> Callable[[], object]:
    """gpuaug's step: "step" as ``aug(batch, g)`` runs it, "compiled" the whole step in ``torch.compile(aug.apply,
    fullgraph=True)``."""
    aug = FaceAugment(config).to(device)
    batch, g = work.batch.to(device), torch.Generator().manual_seed(0)
    if mode == "compiled":
        step = torch.compile(aug.apply, fullgraph=True)
        return lambda: step(batch, aug.sample_params(batch, g))
    return partial(aug, batch, g)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--no-compiled", action="store_true",
                        help="leave out the whole-step compiled rows (their first call compiles for minutes)")
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
        ("webcam preset, whole step compiled", lambda: _gpuaug(webcam, work, device, "compiled"), args.repeats),
        ("STAR recipe", lambda: _gpuaug(star, work, device), args.repeats),
        ("base step, whole step compiled", lambda: _gpuaug(base, work, device, "compiled"), args.repeats),
        ("kornia AugmentationSequential, webcam chain (less: no downscale, no shot noise)",
         lambda: _kornia_webcam(work, device), 2),
    ]
    if args.no_compiled:
        rows = [row for row in rows if "compiled" not in row[0]]
    if device.type == "cpu":
        webcam_work = Workload(**{**vars(work), "config": webcam})
        rows.append(("albumentations 2.x per sample, webcam chain, main process",
                     lambda: _albumentations(webcam_work, device, webcam_albumentations), 2))
        rows.append((f"albumentations 2.x per sample, webcam chain, {len(os.sched_getaffinity(0))} DataLoader workers",
                     lambda: _albumentations_workers(webcam_work, device), 2))
    machine = cpu_name() if device.type == "cpu" else f"cuda {torch.cuda.get_device_name(device)}"
    lines = [f"# Camera ops, {machine}, torch {torch.__version__}", "",
             f"batch {args.batch} frames of 240x320 -> 128x128 grey, median of {args.repeats} timed steps (2 for "
             "kornia and albumentations, seconds a step) after 3 untimed ones. On the CPU the "
             "step runs each camera op on the rows that draw it; the whole-step compiled rows and CUDA run every op "
             "over every sample (static shapes; a sample it skips gets the identity). Warm-up includes compiles "
             "unless Inductor's on-disk cache already held them. The machine may be shared: compare rows by the "
             "load average next to them.", "",
             "| row | img/s | median ms | x base | warm-up s | load avg before/after |", "|---|---|---|---|---|---|"]
    base_rate = None
    for name, build, repeats in rows:
        before = os.getloadavg()[0]
        try:
            step = build()
        except Unavailable as exc:
            lines.append(f"| {name} | unavailable: {exc} | | | | |")
            continue
        # Three untimed steps: the first compiles; a camera op draws different rows at each step, and its
        # kernels and the allocator's heap settle over the next ones (steps 2-3 ran 10-40 % slower than later ones).
        timing = time_step(step, args.batch, device, repeats=repeats, warmup=3)
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
