"""``python -m gpuaug info``: what an install has and what runs where."""

from __future__ import annotations

import torch

from gpuaug.info import report


def test_info_says_what_runs_where() -> None:
    """``gpuaug info``: versions, the CUDA device or none, and per device the render that ran a real step."""
    text = report()
    assert "torch " in text and "CUDA device: " in text
    assert "cpu: render = compiled gather (torch.compile); 8 frames -> (8, 1, 64, 64)" in text
    if torch.cuda.is_available():
        assert "cuda: render = Triton kernel" in text
