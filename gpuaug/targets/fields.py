"""The tensors of a training target, moved and reshaped together (the target results' shared base)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import TypeVar

import torch

from gpuaug.transfer import move

T = TypeVar("T", bound="TensorFields")


class TensorFields:
    """Mixin for a dataclass whose fields are tensors with a leading batch axis (B, ...)."""

    def to(self: T, device: torch.device | str, non_blocking: bool = False) -> T:
        """Every field on ``device`` (a copy to the CPU is blocking: :func:`gpuaug.transfer.move`)."""
        return replace(self, **{f.name: move(getattr(self, f.name), device, non_blocking) for f in fields(self)})

    def unflatten(self: T, length: int) -> T:
        """Views of B * T clip-major rows as (B, T, ...): the clip form of a frame target."""
        return replace(self, **{f.name: getattr(self, f.name).unflatten(0, (-1, length)) for f in fields(self)})
