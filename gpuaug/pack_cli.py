"""``python -m gpuaug pack``: pack a data set into the packed format (resumable), or ``--verify`` a pack.

``--format npz`` (default): a directory of npz videos. ``--format 300w|300wlp``: a directory of images with their
``.pts`` / ``.mat`` files (:mod:`gpuaug.datasets`). ``--format wflw``: an annotation file, with ``--images`` the
``WFLW_images`` folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from gpuaug.datasets.formats import FORMATS, read_dataset
from gpuaug.load.images import image_items
from gpuaug.load.packed import pack, pack_items, verify_packed


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m gpuaug pack [--format F] SRC DST``: pack a data set (resumable), or ``--verify`` a packed DST."""
    parser = argparse.ArgumentParser(prog="gpuaug pack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", nargs="?", help="what to pack: a directory (npz, 300w, 300wlp) or a WFLW "
                                               "annotation file")
    parser.add_argument("dst", help="packed output directory (re-run to resume)")
    parser.add_argument("--format", default="npz", choices=FORMATS, help="the layout of SRC (default npz)")
    parser.add_argument("--images", type=Path, help="wflw: the folder the annotation's image paths start from")
    parser.add_argument("--verify", action="store_true", help="only re-check DST against its checksums")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--exclude", metavar="REPORT", help="a label audit's report: leave its flagged frames out")
    parser.add_argument("--labels", default="", metavar="NAME,...",
                        help="npz: fields holding labels of your own to pack too (e.g. blendshapes,expression)")
    args = parser.parse_args(argv)
    if args.verify:
        verify_packed(args.dst)
        print(f"{args.dst}: every video matches its checksums")
        return
    if args.src is None:
        parser.error("SRC is required unless --verify")
    if args.format == "wflw" and args.images is None:
        parser.error("--format wflw needs --images, the folder of the images (WFLW_images)")
    if args.labels and args.format != "npz":
        parser.error(f"--labels is for npz; {args.format} brings its own labels")
    progress = not args.quiet
    if args.format == "npz":
        index = pack(args.src, args.dst, progress=progress, labels=[n for n in args.labels.split(",") if n],
                     exclude=args.exclude)
        unit = "videos"
    else:
        root = Path(args.images if args.format == "wflw" else args.src)
        frames = read_dataset(args.format, args.src, args.images, progress)
        index = pack_items(image_items(frames.source, root), root, Path(args.dst), progress, args.exclude)
        unit = "images"
    skipped = sum(len(v["skipped"]) for v in index["videos"])
    print(f"{args.dst}: {len(index['videos'])} {unit}, {index['frames']} frames packed, {skipped} skipped "
          "(listed in index.json with their reasons)")
