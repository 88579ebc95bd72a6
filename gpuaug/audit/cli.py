"""``python -m gpuaug audit DATA --out REPORT``: score every frame's labels, write the table, the summary and the
contact sheets, print the summary."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from gpuaug.audit.report import summary, write_report
from gpuaug.audit.run import score_frames
from gpuaug.datasets.formats import FORMATS, read_dataset


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m gpuaug audit``: audit a data set's labels; ``argv`` as the command line's."""
    parser = argparse.ArgumentParser(prog="gpuaug audit", description=__doc__)
    parser.add_argument("data", help="npz videos or a packed directory (default), or a data set in --format")
    parser.add_argument("--out", default="audit_report", help="report folder (default audit_report)")
    parser.add_argument("--format", default="npz", choices=FORMATS, help="the layout of DATA (default npz)")
    parser.add_argument("--images", help="wflw: the folder of the images")
    parser.add_argument("--batch", type=int, default=256, help="frames per batch (default 256)")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (default: cuda when present)")
    parser.add_argument("--worst", type=int, default=16, help="frames per contact sheet (default 16)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    progress = False if args.quiet else None
    frames = read_dataset(args.format, args.data, args.images, progress)
    scores = score_frames(frames, args.batch, device, progress)
    paths = write_report(frames, scores, args.out, args.worst)
    print(summary(scores))
    print("wrote", *map(str, paths))
