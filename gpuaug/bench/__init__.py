"""Side-by-side benchmark of face augmentation pipelines (``gpuaug bench``); see :mod:`gpuaug.bench.cli`."""

from gpuaug.bench.cli import main

__all__ = ["main"]
