"""Products of small matrices that always run in full precision.

``a @ b`` on float32 follows global switches: autocast runs it in bfloat16/float16, and
``torch.set_float32_matmul_precision("high")`` (or ``allow_tf32``) lets it use TF32 (10-bit mantissa) on a
GPU. Labels are exact or wrong, so the label and matrix maths multiplies and sums elementwise instead: no
setting applies to ``mul`` and ``sum``, and for 2x2 and 3x3 matrices it is as fast as a matmul launch.
"""

from __future__ import annotations

import torch


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., n, k) @ (..., k, m) -> (..., n, m) (batch dims broadcast), in the inputs' own precision."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)
