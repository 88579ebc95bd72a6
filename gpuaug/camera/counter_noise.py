"""Counter-based random numbers computed in torch: a hash of (per-sample seed, stream, element index).

The noise of a sample is a pure function of its seed (drawn on the CPU into the params), so replaying the params
replays the noise bit for bit, on any device, with no generator state on the device and no ``torch.randn`` there.
The hash is Chris Wellons' ``lowbias32`` integer finaliser, applied twice; 32-bit products are taken from 16-bit
halves in int64, so no intermediate overflows.
"""

from __future__ import annotations

import math

import torch

_MASK = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2^32`` for int64 ``x`` in [0, 2^32) and a 32-bit constant ``c``, without int64 overflow."""
    low, high = x & 0xFFFF, x >> 16
    return (low * c + ((high * (c & 0xFFFF)) << 16)) & _MASK


def mix32(x: torch.Tensor) -> torch.Tensor:
    """``lowbias32``: int64 in [0, 2^32) -> int64 in [0, 2^32), a bijection with full avalanche."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def hash_uniform(seed: torch.Tensor, index: torch.Tensor, stream: int) -> torch.Tensor:
    """Uniform in (0, 1) float32 for every ``index`` (int64, broadcast against ``seed``) of each sample.

    ``seed``: whole numbers below 2^24 (float or int), shaped to broadcast against ``index`` (e.g. (B, 1, 1, 1));
    ``stream`` in [0, 256): independent sequences for the same seed. 24 bits per value, centred in their bin.
    """
    base = mix32(seed.long() + (stream << 24))
    bits = mix32(mix32((index + base) & _MASK) ^ base)
    return ((bits >> 8).float() + 0.5) * (1.0 / 2**24)


def hash_normal(seed: torch.Tensor, index: torch.Tensor, stream: int) -> torch.Tensor:
    """Standard normal float32 per ``index`` (Box-Muller on streams ``stream`` and ``stream + 1``)."""
    u1, u2 = hash_uniform(seed, index, stream), hash_uniform(seed, index, stream + 1)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2 * math.pi) * u2)


def pixel_index(shape: tuple[int, int, int, int], shared: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, C, H, W) int64 counter of each element of a ``shape`` image batch: ``(c * H + y) * W + x``, with
    c = 0 for the samples where ``shared`` (B,) bool is set (one noise field for all channels: grey samples stay
    grey)."""
    _, c, h, w = shape
    index = torch.arange(c * h * w, device=device).view(1, c, h, w)
    return torch.where(shared[:, None, None, None], index % (h * w), index)
