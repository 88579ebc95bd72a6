"""Counter-based random numbers computed in torch: a hash of (per-sample seed, stream, element index).

The noise of a sample is a pure function of its seed (drawn on the CPU into the params), so replaying the params
replays the noise bit for bit, on any device, with no generator state on the device and no ``torch.randn`` there.
The hash is Chris Wellons' ``lowbias32`` integer finaliser, applied twice, in int32 arithmetic: products wrap
modulo 2^32 (two's complement, as torch's integer kernels do on every device) and right shifts are made logical
with a mask.
"""

from __future__ import annotations

import math

import torch


def _signed(c: int) -> int:
    """A 32-bit constant as the int32 with the same bits."""
    return c - 2**32 if c >= 2**31 else c


def _shift_right(x: torch.Tensor, n: int) -> torch.Tensor:
    """Logical right shift of int32 bits."""
    return (x >> n) & ((1 << (32 - n)) - 1)


def mix32(x: torch.Tensor) -> torch.Tensor:
    """``lowbias32`` on int32 bits: a bijection of the 32-bit words with full avalanche."""
    x = x ^ _shift_right(x, 16)
    x = x * _signed(0x7FEB352D)
    x = x ^ _shift_right(x, 15)
    x = x * _signed(0x846CA68B)
    return x ^ _shift_right(x, 16)


def hash_bits(seed: torch.Tensor, index: torch.Tensor, stream: int) -> torch.Tensor:
    """32 random bits (int32) for every ``index`` (int32, broadcast against ``seed``) of each sample.

    ``seed``: whole numbers below 2^24 (float or int), shaped to broadcast against ``index`` (e.g. (B, 1, 1, 1));
    ``stream`` in [0, 128): independent sequences for the same seed.
    """
    base = stream_base(seed, stream)
    return mix32(mix32(index + base) ^ base)


def stream_base(seed: torch.Tensor, stream: int) -> torch.Tensor:
    """The per-sample half of :func:`hash_bits`: int32 bits of ``seed`` (whole numbers below 2^24, any shape) in
    ``stream``, hashed. A kernel that hashes pixels gets it precomputed, one word per sample."""
    return mix32(seed.int() + (stream << 24))


def hash_uniform(seed: torch.Tensor, index: torch.Tensor, stream: int) -> torch.Tensor:
    """Uniform in (0, 1) float32 per ``index`` (:func:`hash_bits`' arguments): 24 bits, centred in their bin."""
    return (_shift_right(hash_bits(seed, index, stream), 8).float() + 0.5) * (1.0 / 2**24)


def hash_normals(seed: torch.Tensor, index: torch.Tensor, stream: int) -> torch.Tensor:
    """Two independent standard normals float32 per ``index`` (:func:`hash_bits`' arguments), as ``(..., 2)``:
    both outputs of Box-Muller on the two 16-bit halves of one :func:`hash_bits` word (16 bits each: the tails
    end near 4.9 sigma, plenty for image noise). A caller gives each index two pixels (:func:`normal_field`):
    one hash, one log and one square root for two pixels, a third less work per pixel than one normal each."""
    bits = hash_bits(seed, index, stream)
    u1 = (_shift_right(bits, 16).float() + 0.5) * (1.0 / 2**16)
    u2 = ((bits & 0xFFFF).float() + 0.5) * (1.0 / 2**16)
    radius, turn = torch.sqrt(-2.0 * torch.log(u1)), (2 * math.pi) * u2
    return torch.stack([radius * torch.cos(turn), radius * torch.sin(turn)], -1)


def normal_field(seed: torch.Tensor, shape: tuple[int, int, int, int], shared: torch.Tensor,
                 stream: int) -> torch.Tensor:
    """(B, C, H, W) float32 standard normal per element of a ``shape`` image batch from each sample's ``seed``
    (B, 1, 1, 1): pixels 2k and 2k + 1 of a row are the two normals of counter :func:`pixel_index` of column k
    (:func:`hash_normals`); ``shared`` (B,) bool: one field for all channels of those samples."""
    b, c, h, w = shape
    pairs = (w + 1) // 2
    index = pixel_index((b, c, h, pairs), shared, seed.device)
    return hash_normals(seed, index, stream).reshape(b, c, h, 2 * pairs)[..., :w]


def pixel_index(shape: tuple[int, int, int, int], shared: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, C, H, W) int32 counter of each element of a ``shape`` image batch: ``(c * H + y) * W + x``, with
    c = 0 for the samples where ``shared`` (B,) bool is set (one noise field for all channels: grey samples stay
    grey). Built from one index per axis (no modulo: a compiled loop computes it in a few integer ops)."""
    _, c, h, w = shape
    channel = torch.arange(c, device=device, dtype=torch.int32).view(1, c, 1, 1)
    channel = torch.where(shared[:, None, None, None], 0, channel)
    row = torch.arange(h, device=device, dtype=torch.int32).view(1, 1, h, 1)
    column = torch.arange(w, device=device, dtype=torch.int32).view(1, 1, 1, w)
    return (channel * h + row) * w + column
