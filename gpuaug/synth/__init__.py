"""Synthetic face videos as npz videos with exact labels (for demos, tests and benchmarks)."""

from gpuaug.synth.write import write_dataset

__all__ = ["write_dataset"]
