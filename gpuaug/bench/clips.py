"""Clip benchmark: B clips of T frames through :class:`~gpuaug.ClipAugment` (frames/s) next to the same B * T
frames through :class:`~gpuaug.FaceAugment` (img/s) and kornia's ``VideoSequential`` doing the original
loader's chain on the same clips, in one run.

``python -m gpuaug.bench.clips`` (or ``python -m gpuaug bench --clips``) writes
``bench/results/clips_<device>.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import torch

from gpuaug.augment import FaceAugment
from gpuaug.bench.contenders import kornia_crop
from gpuaug.bench.harness import cpu_seconds, other_cores
from gpuaug.bench.report import run_alone, run_per_device
from gpuaug.bench.step import Step, Unavailable
from gpuaug.bench.workload import Workload, make_workload
from gpuaug.clip_params import clip_boxes
from gpuaug.clips import ClipAugment
from gpuaug.labels.flip_tables import resolve_flip_table

FRAMES = "gpuaug frames (FaceAugment)"
CLIPS = "gpuaug clips (ClipAugment)"
DRIFT = "gpuaug clips, drift 0.5"
KORNIA = "kornia VideoSequential"


def _gpuaug_frames(work: Workload, device: torch.device, length: int) -> Step:
    return partial(FaceAugment(work.config).to(device), work.batch.to(device), torch.Generator().manual_seed(0))


def _gpuaug_clips(drift: float) -> Callable[[Workload, torch.device, int], Step]:
    def build(work: Workload, device: torch.device, length: int) -> Step:
        clip_aug = ClipAugment(FaceAugment(work.config), length, drift=drift).to(device)
        return partial(clip_aug, work.batch.to(device), torch.Generator().manual_seed(0))

    return build


def _video_sequential(work: Workload, device: torch.device, length: int) -> Step:
    """The kornia contender's chain with one draw per clip: VideoSequential(ColorJitter, RandomGrayscale) on the
    full frames, crop_and_resize to the clip's mean box (gpuaug's default clip crop), VideoSequential(flip,
    affine) with keypoints inside an AugmentationSequential; flipped landmarks re-indexed afterwards."""
    try:
        import kornia.augmentation as K
        from kornia.geometry.transform import crop_and_resize
        from kornia.geometry.transform.imgwarp import transform_points
    except ImportError as exc:
        raise Unavailable(f"kornia not installed ({exc})") from exc
    c, s, n = work.config, work.config.out_size, len(work)
    video = partial(K.VideoSequential, data_format="BTCHW", same_on_frame=True)
    colour = video(K.ColorJitter(c.brightness, c.contrast, c.saturation, c.hue, p=1),
                   K.RandomGrayscale(p=c.grayscale_p)).to(device)
    geometry = K.AugmentationSequential(
        video(K.RandomHorizontalFlip(p=c.flip_p),
              K.RandomAffine(degrees=c.max_rotation, translate=(c.max_shift, c.max_shift), resample="nearest", p=1)),
        data_keys=["input", "keypoints"],
    ).to(device)
    table = resolve_flip_table(c.flip_table).to(device)
    frames = work.batch.images.to(device).view(n // length, length, *work.frames.shape[1:])
    boxes, crop = kornia_crop(clip_boxes(work.batch.bbox, length).to(device), s)
    landmarks = transform_points(crop, work.batch.landmarks2d.to(device))

    def step() -> tuple[torch.Tensor, torch.Tensor]:
        img = colour(frames.permute(0, 1, 4, 2, 3).float().div(255))
        img = crop_and_resize(img.flatten(0, 1), boxes, (s, s)).unflatten(0, (-1, length))
        img, kp = geometry(img, landmarks.unflatten(0, (-1, length)))
        flipped = geometry._params[0].data[0].data["batch_prob"].to(device).bool()  # (B * T,): one per clip, repeated
        kp = kp.flatten(0, 1)
        return img, torch.where(flipped[:, None, None], kp[:, table], kp)

    return step


ROWS: tuple[tuple[str, Callable[[Workload, torch.device, int], Step]], ...] = (
    (FRAMES, _gpuaug_frames), (CLIPS, _gpuaug_clips(0.0)), (DRIFT, _gpuaug_clips(0.5)), (KORNIA, _video_sequential),
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_seconds(steps: dict[str, tuple[Step, int]], device: torch.device, rounds: int, warmup: int
                        ) -> dict[str, dict]:
    """Each step ``warmup`` times, then ``rounds`` rounds in which each step runs once in turn, a step with n runs
    in n rounds spread evenly over them: a shared machine's swings hit every step alike, so ratios hold within
    the run. Returns per step its seconds per timed run and the mean cores other processes used meanwhile."""
    for step, _ in steps.values():
        for _ in range(warmup):
            step()
    _sync(device)
    out: dict[str, dict] = {name: {"seconds": [], "busy": 0.0} for name in steps}
    for i in range(rounds):
        for name, (step, runs) in steps.items():
            if (i * runs) // rounds == ((i + 1) * runs) // rounds:
                continue  # not one of this step's rounds
            start, t0 = cpu_seconds(), time.perf_counter()
            step()
            _sync(device)
            seconds = time.perf_counter() - t0
            out[name]["seconds"].append(seconds)
            out[name]["busy"] += other_cores(start, seconds) * seconds
    return {name: {"seconds": r["seconds"], "other_cores": r["busy"] / sum(r["seconds"])} for name, r in out.items()}


def clip_rates(work: Workload, length: int, device: torch.device, repeats: int, slow_repeats: int,
               warmup: int) -> list[dict]:
    """Frames/s of every row on ``device``, all timed interleaved: gpuaug's rows ``repeats`` times, kornia's
    ``slow_repeats`` times spread over the same rounds."""
    built, rows = {}, []
    for name, build in ROWS:
        try:
            built[name] = (build(work, device, length), slow_repeats if name == KORNIA else repeats)
        except Unavailable as exc:
            rows.append({"name": name, "unavailable": str(exc)})
    rows += [{"name": name, **timed} for name, timed in interleaved_seconds(built, device, repeats, warmup).items()]
    for row in rows:
        if "seconds" in row:
            row["median_s"] = statistics.median(row["seconds"])
            row["frames_per_s"] = len(work) / row["median_s"]
    return rows


def markdown(result: dict) -> str:
    """The run's table: frames/s of each row, clips vs frames and vs kornia VideoSequential."""
    env = result["environment"]
    lines = [f"{env['clips']} clips x T={env['length']} frames = {env['frames']} frames of {env['height']}x"
             f"{env['width']} -> {env['out_size']}x{env['out_size']}, grey p={env['grayscale_p']}, with landmarks; "
             f"{env['device']}, torch {env['torch']}, {env['torch_threads']} threads; {env['timestamp']}; load "
             f"average before {env['load_before']}.", "",
             "| row | frames/s | vs frames | vs kornia VideoSequential | ms / batch | timed runs | other load |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    rate = {r["name"]: r["frames_per_s"] for r in result["rows"] if "frames_per_s" in r}
    for r in result["rows"]:
        if "unavailable" in r:
            lines.append(f"| {r['name']} | not available: {r['unavailable']} | | | | | |")
            continue
        vs = [f"{r['frames_per_s'] / rate[ref]:.2f}x" if ref in rate else "" for ref in (FRAMES, KORNIA)]
        lines.append(f"| {r['name']} | {r['frames_per_s']:.0f} | {vs[0]} | {vs[1]} | {1e3 * r['median_s']:.0f} | "
                     f"{len(r['seconds'])} | {r['other_cores']:.2f} |")
    lines += ["", f"- {result['note']}"]
    return "\n".join(lines) + "\n"


NOTE = ("Every row augments the same B * T frames of one synthetic video (clip b = frames bT .. bT + T - 1) with "
        "the original loader's chain and gpuaug's default config. gpuaug frames: FaceAugment, a draw per frame; clips: "
        "ClipAugment, one draw and one crop (the clip's mean box) per clip, one FaceAugment.apply_matrix step "
        "over all frames, every label. Rows are timed interleaved (one run of each per round, kornia's fewer "
        "runs spread over the rounds), median per row; other load: cores other processes kept busy during its "
        "runs. kornia: VideoSequential(ColorJitter, RandomGrayscale) on the full frames, crop_and_resize to the "
        "clip's mean box, AugmentationSequential(VideoSequential(flip, affine)) with landmarks as keypoints (no "
        "3D landmarks, pose or gaze), same_on_frame=True.")


def run(args: argparse.Namespace, devices: Sequence[torch.device], device_name: Callable[[torch.device], str]
        ) -> list[Path]:
    """The clip benchmark on each device; writes ``clips_<device>.{json,md}`` under ``args.out``."""
    def measure(device: torch.device) -> tuple[list[dict], dict]:
        work = make_workload(args.clip_count * args.clip_length, args.height, args.width, args.out_size,
                             grayscale_p=args.grayscale_p)
        rows = clip_rates(work, args.clip_length, device, args.repeats, args.slow_repeats, args.warmup)
        return rows, {"clips": args.clip_count, "length": args.clip_length, "frames": len(work),
                      "grayscale_p": args.grayscale_p, "slow_repeats": args.slow_repeats}

    return run_per_device(args, devices, device_name, "clips", measure, markdown, NOTE)


def add_args(p: argparse.ArgumentParser) -> None:
    """The clip benchmark's own options (shared with ``gpuaug bench --clips``)."""
    p.add_argument("--clip-count", type=int, default=32, help="clips per batch B (default 32)")
    p.add_argument("--clip-length", type=int, default=8, help="frames per clip T (default 8): B * T = 256 frames")


def main(argv: Sequence[str] | None = None) -> None:
    """The clip benchmark alone; takes ``gpuaug bench``'s options (sizes, repeats, devices, --out)."""
    run_alone(run, argv)


if __name__ == "__main__":
    main()
