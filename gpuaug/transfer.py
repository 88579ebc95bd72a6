"""Moving tensors between devices without handing back data still in flight."""

from __future__ import annotations

import torch


def move(t: torch.Tensor, device: torch.device | str, non_blocking: bool = False) -> torch.Tensor:
    """``t.to(device)``; ``non_blocking`` is honoured for copies to an accelerator only.

    A non-blocking device -> CPU copy returns before the data has arrived, and nothing tells the caller when it
    has: reading the result races the copy. Such a copy is made blocking, so a CPU tensor is always ready."""
    return t.to(device, non_blocking=non_blocking and torch.device(device).type != "cpu")
