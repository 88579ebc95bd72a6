"""A data set by the name of its layout: what ``gpuaug pack`` and ``gpuaug audit`` read."""

from __future__ import annotations

from pathlib import Path

from gpuaug.datasets.w300 import read_300w
from gpuaug.datasets.w300lp import read_300wlp
from gpuaug.datasets.wflw import read_wflw
from gpuaug.load.frames import FaceFrames

FORMATS = ("npz", "300w", "wflw", "300wlp")


def read_dataset(fmt: str, src: str | Path, images: str | Path | None = None, progress: bool | None = None,
                 **options) -> FaceFrames:
    """``src`` read as ``fmt``: "npz" (npz videos or a packed directory: :class:`~gpuaug.FaceFrames`, with
    ``options``), "300w", "300wlp" (a directory) or "wflw" (an annotation file, ``images`` its images' folder)."""
    if fmt == "npz":
        return FaceFrames(src, progress=progress, **options)
    if fmt == "wflw":
        if images is None:
            raise ValueError("the wflw format needs the images' folder (WFLW_images)")
        return read_wflw(src, images, progress)
    if fmt in ("300w", "300wlp"):
        return (read_300w if fmt == "300w" else read_300wlp)(src, progress)
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
