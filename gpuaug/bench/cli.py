"""``gpuaug bench``: every contender on the same batch, on the CPU and (if present) CUDA; loader rates."""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gpuaug.bench import clips as clip_bench
from gpuaug.bench import kinds as kind_bench
from gpuaug.bench import stream as stream_bench
from gpuaug.bench import targets as target_bench
from gpuaug.bench.contenders import CONTENDERS, REFERENCE, Unavailable
from gpuaug.bench.end_to_end import end_to_end_rates, write_packed
from gpuaug.bench.feed import feed_rates
from gpuaug.bench.harness import cpu_seconds, other_cores, time_step
from gpuaug.bench.loader import h2d_rate, loader_rates, write_datasets
from gpuaug.bench.report import write_results
from gpuaug.bench.workload import make_workload

NOTES = (
    "img/s: batch size / median step time over the timed runs, after warm-up (gpuaug torch's warm-up "
    "includes its torch.compile on the CPU). other load: mean CPU cores other processes kept busy during "
    "a row's timed runs (the machine may be shared; the load average counts this benchmark's own threads).",
    "Peak memory: CPU, rise of the process RSS over the timed runs (sampled every 2 ms, heap trimmed with "
    "malloc_trim after warm-up); CUDA, max_memory_allocated rise. Pools a library keeps from warm-up are not counted.",
    "original loader per-sample: the face multitask data set's loader (jinac/head_multitask, data_util.py) "
    "re-created with plain torch ops (no torchvision): ColorJitter in random op order with HSV hue, "
    "Grayscale, bbox crop with buffer, flip + landmark swap, "
    "affine rotation + integer shift (grid_sample nearest), antialiased bilinear resize; jitter ranges set to "
    "gpuaug's defaults (its ColorJitter() is a no-op) and a fixed 128x128 resize (its random "
    "size + pad is not square).",
    "original loader per-sample (torchvision v2), CUDA only (torchvision is on GPU machines): the same chain "
    "as one would write it today, torchvision.transforms.v2 per frame (ColorJitter, RandomGrayscale, crop to the box, "
    "RandomHorizontalFlip, RandomAffine, Resize), landmarks as v2 KeyPoints where torchvision has them.",
    "albumentationsx per-sample: ColorJitter, ToGray(1 ch), RandomCropNearBBox, HorizontalFlip with keypoint "
    "label_mapping, Affine (nearest), Resize; the per-sample bbox margin is drawn once up front.",
    "kornia: AugmentationSequential(ColorJitter, RandomGrayscale) on the full frames, crop_and_resize to the "
    "bbox (crop and resize are one warp in batched kornia), AugmentationSequential(RandomHorizontalFlip, "
    "RandomAffine nearest) with keypoints; flipped landmarks re-indexed afterwards. RandomGrayscale keeps 3 "
    "channels, so kornia warps 3.",
    "DALI pipeline: the fastest DALI pipeline found for the job (gpuaug/bench/dali_pipeline.py): fn.transforms "
    "crop, flip, rotation, translation composed into one matrix; fn.slice of the frame window the warp reads; "
    "grey output: RGB->GRAY on the window, one 1-channel warp_affine to S x S, brightness_contrast on the "
    "output; colour output: color_twist on the window, a 3-channel warp. coord_transform for landmarks, flip "
    "re-index on the host. Frames are read in place; on CUDA they are fed from the device and the images stay "
    "there.",
    "Loader: frames through FaceFrames + DataLoader (batch = --loader-batch, collate = gpuaug.collate), one pass per "
    "repeat with a fresh dataset and workers, timed after the first batch (worker start-up excluded); npz "
    "compressed and uncompressed, and the packed form of the same videos; shuffled (training) and sequential.",
    "End to end: packed synthetic videos of 240x320, 360x480 and 480x640 frames, shuffled; per batch: read, "
    "batch, to the device (pinned on CUDA), FaceAugment with labels. padded: per-sample reads + padded collate "
    "(the path before ragged batches); ragged: DataLoader(frames, collate_fn=gpuaug.collate), whole batches "
    "gathered from the memory maps; resident: ResidentFrames on the device; stream: gpuaug.StreamLoader (threads, "
    "recycled buffers, each frame's window for the config), 'whole frames' without windows (workers column: "
    "0, no processes); augment only: the same ragged batches already on the device. Each pass timed from its "
    "first batch on.",
    "Feed: a ResNet-18-sized CNN (gpuaug/bench/feed.py; bfloat16 autocast on CUDA) trained one SGD step per "
    "batch from each data path; busy = frames/s / train-only frames/s (the model on one batch over and over); "
    "data wait = 1 - busy.",
    "gpuaug: FaceAugment(backend=...) on a FaceBatch already on the device: params, one matrix per sample, "
    "all labels, warp + colour. 'pixels only': the render alone (the step minus it is the labels' cost); "
    "'eager gather': the torch gather in eager ops instead of the Triton kernel; 'CUDA graph': "
    "gpuaug.graph.CapturedAugment.",
)


def cpu_name() -> str:
    """CPU model and the cores this process may use."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu {model} ({len(os.sched_getaffinity(0))} cores)"


def device_name(device: torch.device) -> str:
    return f"cuda {torch.cuda.get_device_name(device)}" if device.type == "cuda" else cpu_name()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gpuaug bench", description=__doc__)
    p.add_argument("--batch", type=int, default=256, help="frames per batch (default 256)")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--out-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=7, help="timed runs of batched contenders (default 7)")
    p.add_argument("--slow-repeats", type=int, default=3, help="timed runs of per-sample ones (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--devices", "--device", nargs="+", choices=["cpu", "cuda"],
                   help="default: cpu, and cuda if present (e.g. --device cuda for the GPU alone)")
    p.add_argument("--grayscale-p", type=float, default=1.0,
                   help="probability of grey output: 1 (default, 1-channel output as the original loader) or 0 "
                        "for colour")
    p.add_argument("--out-dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="gpuaug's output dtype (the other contenders give float32)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="contenders whose name contains one of these")
    p.add_argument("--no-loader", action="store_true", help="skip the loader and H2D measurements")
    p.add_argument("--loader-videos", type=int, default=8)
    p.add_argument("--loader-frames", type=int, default=32, help="frames per video (default 32)")
    p.add_argument("--loader-repeats", type=int, default=2)
    p.add_argument("--loader-batch", type=int, default=32, help="DataLoader batch size (default 32)")
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end data path measurement")
    p.add_argument("--e2e-videos", type=int, default=48, help="videos of the end-to-end data set (default 48)")
    p.add_argument("--e2e-frames", type=int, default=32, help="frames per video (default 32)")
    p.add_argument("--e2e-batch", type=int, default=256, help="end-to-end batch size (default 256)")
    p.add_argument("--e2e-repeats", type=int, default=3, help="passes per end-to-end row (default 3)")
    p.add_argument("--e2e-workers", type=int, nargs="+",
                   help="DataLoader worker counts (default 0 1 2 on up to 4 cores, else 0 4 8 16)")
    p.add_argument("--feed", choices=["auto", "on", "off"], default="auto",
                   help="train a ResNet-18-sized CNN from each data path and report its data wait (auto: on CUDA)")
    p.add_argument("--feed-width", type=int, default=64, help="the CNN's base width (64: ResNet-18 size)")
    p.add_argument("--clips", action="store_true",
                   help="also run the clip benchmark (ClipAugment vs FaceAugment vs kornia VideoSequential, "
                        "gpuaug/bench/clips.py; alone: python -m gpuaug.bench.clips)")
    clip_bench.add_args(p)
    p.add_argument("--targets", action="store_true",
                   help="also run the target benchmark (gpuaug.targets vs mmpose's per-sample numpy codecs, "
                        "gpuaug/bench/targets.py; alone: python -m gpuaug.bench.targets)")
    target_bench.add_args(p)
    p.add_argument("--kinds", action="store_true",
                   help="also run the label kinds benchmark (the step by the labels a batch carries and its "
                        "landmark count, gpuaug/bench/kinds.py; alone: python -m gpuaug.bench.kinds)")
    p.add_argument("--stream", action="store_true",
                   help="also run the streaming benchmark (StreamLoader bytes, GB/s vs numpy.copyto, end to end; "
                        "gpuaug/bench/stream.py; alone: python -m gpuaug.bench.stream)")
    stream_bench.add_args(p)
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="results folder")
    return p.parse_args(argv)


def resolve_devices(args: argparse.Namespace) -> list[torch.device]:
    """``--devices``, or the CPU and CUDA when present; exits when CUDA is asked for but missing."""
    names = args.devices or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    if "cuda" in names and not torch.cuda.is_available():
        raise SystemExit("--devices cuda given but torch.cuda.is_available() is False")
    return [torch.device(n) for n in names]


def run_contenders(args: argparse.Namespace, devices: list[torch.device]) -> list[dict]:
    """Every selected contender on every device; ratios to gpuaug torch on the same device."""
    work = make_workload(args.batch, args.height, args.width, args.out_size, grayscale_p=args.grayscale_p,
                         out_dtype=args.out_dtype)
    chosen = [c for c in CONTENDERS if not args.only or any(s.lower() in c.name.lower() for s in args.only)]
    tasks = [(d, c) for d in devices for c in chosen if d.type in c.devices]
    rows = []
    bar = tqdm(total=sum(args.slow_repeats if c.per_sample else args.repeats for _, c in tasks), unit="run")
    for device, contender in tasks:
        repeats = args.slow_repeats if contender.per_sample else args.repeats
        bar.set_description(f"{contender.name} [{device.type}]")
        row = {"name": contender.name, "device": device_name(device), "device_type": device.type}
        try:
            step = contender.build(work, device)
            timing = time_step(step, len(work), device, repeats, args.warmup, on_repeat=lambda: bar.update(1))
        except Unavailable as exc:
            row["unavailable"] = str(exc)
            bar.update(repeats)
        except Exception as exc:  # a broken contender is reported, not allowed to sink the whole run
            row["unavailable"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            bar.update(repeats)
        else:
            row.update(asdict(timing), median_s=timing.median, img_per_s=timing.per_second)
        rows.append(row)
    bar.close()
    for row in rows:
        ref = next((r for r in rows if r["name"] == REFERENCE and r["device"] == row["device"]
                    and "img_per_s" in r), None)
        if ref is not None and "img_per_s" in row:
            row["ratio_to_gpuaug"] = row["img_per_s"] / ref["img_per_s"]
    return rows


def run_loader(args: argparse.Namespace, devices: list[torch.device]) -> list[dict]:
    """Read rates (npz compressed / uncompressed / packed; shuffled and sequential; 0/1/2 workers); pinned H2D
    copy on CUDA devices."""
    workers = (0, 1, 2)
    with tempfile.TemporaryDirectory(prefix="gpuaug-bench-") as tmp:
        folders = write_datasets(Path(tmp), args.loader_videos, args.loader_frames, (args.height, args.width),
                                 seed=0)
        with tqdm(total=len(folders) * 2 * len(workers) * args.loader_repeats, desc="loader", unit="pass") as bar:
            rates = loader_rates(folders, args.loader_batch, workers, args.loader_repeats,
                                 on_pass=lambda: bar.update(1))
    cuda = [d for d in devices if d.type == "cuda"]
    if cuda:
        work = make_workload(args.batch, args.height, args.width, args.out_size)
        rates += [h2d_rate(work.batch, d, args.repeats) for d in cuda]
    return [r.as_dict() for r in rates]


def run_end_to_end(args: argparse.Namespace, devices: list[torch.device]) -> tuple[list[dict], list[dict]]:
    """End-to-end frames/s of each data path (padded, ragged, resident, augment only) on each device, and
    the reference CNN's data wait when fed by each (``--feed``)."""
    workers = tuple(args.e2e_workers or ((0, 1, 2) if (os.cpu_count() or 1) <= 4 else (0, 4, 8, 16)))
    feed_on = [d for d in devices if args.feed == "on" or (args.feed == "auto" and d.type == "cuda")]
    rows, feed = [], []
    with tempfile.TemporaryDirectory(prefix="gpuaug-e2e-") as tmp:
        folder = write_packed(Path(tmp), args.e2e_videos, args.e2e_frames)
        total = (len(devices) * (2 * len(workers) + 4) + len(feed_on) * (len(workers) + 1)) * args.e2e_repeats
        with tqdm(total=total, desc="end to end", unit="pass") as bar:
            for device in devices:
                rates = end_to_end_rates(folder, device, args.e2e_batch, workers, args.e2e_repeats,
                                         on_pass=lambda: bar.update(1))
                rows += [{"device": device_name(device), **r.as_dict()} for r in rates]
            for device in feed_on:
                feed += [{"device": device_name(device), **r} for r in feed_rates(
                    folder, device, args.e2e_batch, workers, args.e2e_repeats, args.feed_width,
                    on_pass=lambda: bar.update(1))]
    return rows, feed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the markdown table, write JSON + md + png; returns the exit status."""
    args = parse_args(argv)
    devices = resolve_devices(args)
    load_before, cpu_start, wall_start = os.getloadavg(), cpu_seconds(), time.perf_counter()
    contenders = run_contenders(args, devices)
    loader = [] if args.no_loader else run_loader(args, devices)
    end_to_end, feed = ([], []) if args.no_e2e else run_end_to_end(args, devices)
    others = other_cores(cpu_start, time.perf_counter() - wall_start)
    result = {
        "environment": {
            "devices": [device_name(d) for d in devices],
            "batch": args.batch, "height": args.height, "width": args.width, "out_size": args.out_size,
            "grayscale_p": args.grayscale_p, "out_dtype": args.out_dtype,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_before": [round(x, 2) for x in load_before],
            "other_cores": others,
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "repeats": args.repeats, "slow_repeats": args.slow_repeats, "warmup": args.warmup,
        },
        "contenders": contenders,
        "loader": loader,
        "end_to_end": end_to_end,
        "feed": feed,
        "notes": list(NOTES),
    }
    paths = write_results(result, args.out)
    print(paths[1].read_text())
    if args.clips:
        paths += clip_bench.run(args, devices, device_name)
    if args.targets:
        paths += target_bench.run(args, devices, device_name)
    if args.kinds:
        paths += kind_bench.run(args, devices, device_name)
    if args.stream:
        paths += stream_bench.run(args, devices, device_name)
    print("wrote", *map(str, paths))
    return 0
