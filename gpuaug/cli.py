"""``gpuaug`` / ``python -m gpuaug``: synth, preview, demo (and the bench/pack tools)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from gpuaug.augment import FaceAugment
from gpuaug.batch import collate
from gpuaug.config import AugmentConfig
from gpuaug.info import main as info_main
from gpuaug.labels.flip_tables import FLIP_TABLES, builtin_table
from gpuaug.load.frames import FaceFrames
from gpuaug.preview import preview_augmented, preview_clips, preview_frames
from gpuaug.recipes import RECIPES


def _synth(args: argparse.Namespace) -> None:
    from gpuaug.synth import write_dataset

    paths = write_dataset(args.out, videos=args.videos, frames=args.frames, seed=args.seed,
                          compressed=not args.uncompressed, progress=True)
    print(f"wrote {len(paths)} videos x {args.frames} frames to {args.out}")


def _spread(n: int, count: int) -> list[int]:
    """``count`` of range(n) spread evenly (every video gets a say)."""
    return sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(min(count, n))})


def _config(frames: FaceFrames, recipe: str, flip_table: str | None) -> AugmentConfig:
    """A :mod:`gpuaug.recipes` config with the flip table of the data set's layout: ``flip_table`` if given,
    else the built-in table of its landmark count (the recipe's own without landmarks)."""
    config = RECIPES[recipe]()
    if flip_table is None and frames.landmarks:
        flip_table = builtin_table(frames.landmarks)
        if flip_table is None:
            raise SystemExit(f"{frames.landmarks} landmarks per frame: no built-in flip table has that many points "
                             f"(known: {', '.join(FLIP_TABLES)}); give --flip-table")
    return config if flip_table is None else replace(config, flip_table=flip_table)


def _augment_spread(frames: FaceFrames, count: int, seed: int, device: str, backend: str,
                    recipe: str = "head_multitask", flip_table: str | None = None):
    """Augment ``count`` frames spread evenly over the data set with a :mod:`gpuaug.recipes` config."""
    batch = collate([frames[i] for i in _spread(len(frames), count)])
    aug = FaceAugment(_config(frames, recipe, flip_table), backend=backend)
    return batch, aug(batch.to(device), torch.Generator().manual_seed(seed))


def _augment_clips(frames: FaceFrames, args: argparse.Namespace):
    """Augment ``args.count`` clips (``--clips`` T frames at ``--step``) spread evenly over the data set."""
    from gpuaug.clips import ClipAugment
    from gpuaug.load.clips import FaceClips

    clips = FaceClips(frames, args.clips, args.step)
    print(clips.skip_report())
    batch = clips.batch(_spread(len(clips), args.count))
    aug = ClipAugment(FaceAugment(_config(frames, args.recipe, args.flip_table), backend=args.backend), args.clips,
                      drift=args.drift)
    return batch, aug(batch, torch.Generator().manual_seed(args.seed))


def _preview(args: argparse.Namespace) -> None:
    frames = FaceFrames(args.path)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.clips:
        args.count = args.count or 4
        batch, augmented = _augment_clips(frames, args)
        preview_clips(augmented, out, limit=args.count)
    else:
        batch, augmented = _augment_spread(frames, args.count or 16, args.seed, "cpu", args.backend, args.recipe,
                                           args.flip_table)
        preview_augmented(augmented, out)
    images = [batch.frame(i).numpy() for i in range(len(batch))]
    labels = [None if getattr(batch, k) is None else getattr(batch, k).numpy()
              for k in ("landmarks2d", "head_pose", "gaze", "bbox")]
    table = (augmented.frames if args.clips else augmented).flip_table.tolist()
    preview_frames(images, *labels, out.with_name(out.stem + "_source.png"), columns=args.clips or 4, table=table)
    print(f"wrote {out} and {out.with_name(out.stem + '_source.png')}")


def _demo(args: argparse.Namespace) -> None:
    from gpuaug.synth import write_dataset

    out = Path(args.out)
    data = out / "data"
    if not any(data.glob("*.npz")):
        write_dataset(data, videos=args.videos, frames=args.frames, seed=args.seed, progress=True)
    # Shuffled reads from compressed npz decode a whole video per sample: train from the packed form.
    from gpuaug.load.packed import pack

    pack(data, out / "packed")
    frames = FaceFrames(out / "packed")
    print(frames.skip_report())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.path, args.out, args.count = str(out / "packed"), str(out / "preview.png"), None
    _preview(args)
    # The camera ops (occluders, blur, noise, low resolution, JPEG) on the same frames; occluded landmarks hollow.
    _preview(argparse.Namespace(**{**vars(args), "out": str(out / "preview_webcam.png"), "recipe": "webcam"}))

    loader = torch.utils.data.DataLoader(frames, batch_size=args.batch, shuffle=True, collate_fn=collate,
                                         num_workers=args.workers, pin_memory=device == "cuda")
    aug = FaceAugment(AugmentConfig(), backend=args.backend).to(device)
    gen = torch.Generator().manual_seed(args.seed)
    aug(next(iter(loader)).to(device), gen)  # warm-up: the first call compiles the render kernel (or loads it)
    seen, load_s, aug_s = 0, 0.0, 0.0
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        for batch in loader:
            t1 = time.perf_counter()
            result = aug(batch.to(device, non_blocking=True), gen)
            result.images.sum().item()  # wait for the device before reading the clock
            t2 = time.perf_counter()
            load_s, aug_s, seen, t0 = load_s + t1 - t0, aug_s + t2 - t1, seen + len(batch), t2
    print(f"device {device}, backend {args.backend}: {seen} frames in {args.epochs} epochs after a warm-up batch; "
          f"loading {seen / load_s:.0f} frames/s ({args.workers} workers), "
          f"augmenting {seen / aug_s:.0f} img/s (batch {args.batch}, {AugmentConfig().out_size}px, labels included)")


def _add_preview_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="torch", choices=["torch", "dali"])
    p.add_argument("--clips", type=int, default=0, metavar="T",
                   help="preview clips of T consecutive frames as strips (one row per clip) instead of frames")
    p.add_argument("--step", type=int, default=1, help="frame step s within a clip (with --clips)")
    p.add_argument("--drift", type=float, default=0.0,
                   help="with --clips: camera params move this far (0-1) toward a second draw across each clip")
    p.add_argument("--recipe", default="head_multitask", choices=sorted(RECIPES),
                   help="the config, from gpuaug.recipes (default: seed, today's default chain)")
    p.add_argument("--flip-table", default=None, choices=sorted(FLIP_TABLES),
                   help="the landmark layout's flip table (default: the built-in one with the data's landmark count)")


TOOLS = {
    "pack": ("gpuaug.pack_cli:main", "pack npz videos or a public data set (300W, WFLW, 300W-LP) for streaming"),
    "bench": ("gpuaug.bench.cli:main", "side-by-side speed benchmark against the usual tools"),
    "audit": ("gpuaug.audit.cli:main", "check a data set's labels against each other; tables and contact sheets"),
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gpuaug", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a synthetic face data set in the seed npz layout")
    p.add_argument("out")
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--uncompressed", action="store_true", help="np.savez instead of np.savez_compressed")
    p.set_defaults(run=_synth)

    p = sub.add_parser("preview", help="draw frames of an npz file/directory with labels, and augmented")
    p.add_argument("path")
    p.add_argument("--out", default="preview.png")
    p.add_argument("--count", type=int, help="frames to draw (default 16), or clips with --clips (default 4)")
    _add_preview_args(p)
    p.set_defaults(run=_preview)

    p = sub.add_parser("demo", help="sample data -> pack -> loader -> augment -> preview PNGs + throughput")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    _add_preview_args(p)
    p.set_defaults(run=_demo)

    p = sub.add_parser("info", help="what this install has and what runs where (one short step per device)")
    p.set_defaults(run=lambda _: info_main())

    for name, (_, text) in TOOLS.items():
        sub.add_parser(name, help=text, add_help=False)  # listed here; run by _forward with their own options
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        _forward(TOOLS[argv[0]][0], argv[1:])
        return
    args = parser.parse_args(argv)
    args.run(args)


def _forward(target: str, argv: list[str]) -> None:
    module, func = target.split(":")
    getattr(importlib.import_module(module), func)(argv)
