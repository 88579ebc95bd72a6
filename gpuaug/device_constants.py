"""Small constant tensors kept on each device, so hot paths never copy them from the host.

A ``torch.tensor(values, device="cuda")`` is a blocking host -> device copy each time (and cannot be captured
in a CUDA graph); :func:`constant` makes it once per (values, device, dtype) and hands back the same tensor
afterwards. Callers must not modify the result.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=256)
def _cached(values: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype).to(device)


def constant(values: tuple, device: torch.device | str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``torch.tensor(values, dtype=dtype)`` on ``device`` (nested tuples for matrices), made once."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if torch.compiler.is_compiling():
        # In a compiled graph the values become the graph's own constant (made once with the graph); Dynamo
        # would ignore the cache anyway, with a UserWarning on every first compile.
        return torch.tensor(values, dtype=dtype, device=device)
    return _cached(values, device, dtype)
