"""Sensor resolution: the image seen at s x s pixels (area averaging, as OpenCV's ``INTER_AREA``) and brought back
to S x S (bilinear with half-pixel centres and clamped edges, as OpenCV's ``INTER_LINEAR``).

s = round(low_res * S) per sample. Both resizes are linear, so down-then-up along an axis is one S x S matrix
per sample; row i of it blends the area rows of the two small pixels output pixel i is read from, so its
nonzero entries lie in a band of at most ``2 S / s + 2`` source pixels. The op stores that band only
(:func:`band_weights`: where it starts, and its weights) and applies it to rows, then to columns, as a sum of
``band`` gathered taps (:func:`band_product`): the work of a resize (a handful of taps per pixel), not of two
S x S matrix products, and shapes depend on the config (its least s), never on the params. A config that draws
sizes so small that the band grows past :func:`most_taps` gets the operator rebuilt from its band and two
matrix products instead.
"""

from __future__ import annotations

import math

import torch


def small_size(low_res: torch.Tensor, out_size: int) -> torch.Tensor:
    """(B,) fraction -> (B,) float32 whole number of pixels s in [1, S]."""
    return torch.round(low_res * out_size).clamp(1, out_size)


def least_small_size(low_res_min: float, out_size: int) -> int:
    """The least s a config drawing ``low_res >= low_res_min`` can give (rounded down, so float32 rounding of
    ``low_res * S`` near a half cannot go below it)."""
    return min(out_size, max(1, math.floor(low_res_min * out_size)))


def band_width(least: int, out_size: int) -> int:
    """Source pixels one output pixel reads along an axis, at most, for s >= ``least``: two adjacent small pixels
    span ``2 S / s`` source pixels, which touch at most ``ceil(2 S / s) + 1`` whole pixels (partly covered ones
    at the ends), plus one against float32 rounding of where the span starts."""
    return min(out_size, math.ceil(2 * out_size / least) + 2)


def band_weights(small: torch.Tensor, size: int, band: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) small sizes s -> the down-then-up operator of each sample as a band: ``first`` (B, S) int64 and
    ``weights`` (B, S, band) float32, row i of the S x S operator being ``weights[i, t]`` at column ``first[i] +
    t`` (zero elsewhere). ``band``: :func:`band_width` for the least s in ``small``."""
    k = torch.arange(size, device=small.device, dtype=torch.float32)
    scale = (size / small)[:, None]  # (B, 1) source pixels per small pixel
    last = small[:, None] - 1
    src = torch.minimum(((k + 0.5) / scale - 0.5).clamp(min=0), last)  # (B, S) small pixel read by output i
    lo = torch.floor(src)
    frac = src - lo
    hi = torch.minimum(lo + 1, last)
    # Small pixel lo covers source [lo * scale, (lo + 1) * scale), hi the next one: the band starts at the
    # first source pixel lo touches, moved left where it would run past the last source pixel.
    first = torch.floor(lo * scale).clamp(max=size - band)
    j = first[..., None] + torch.arange(band, device=small.device, dtype=torch.float32)  # (B, S, band)
    scale3 = scale[..., None]

    def area(row: torch.Tensor) -> torch.Tensor:
        """Weight of source pixel j (covering [j, j + 1)) in small pixel ``row`` (B, S): the overlap / scale."""
        start = row[..., None] * scale3
        return (torch.minimum(j + 1, start + scale3) - torch.maximum(j, start)).clamp(min=0) / scale3

    return first.long(), area(lo) * (1 - frac[..., None]) + area(hi) * frac[..., None]


def band_product(images: torch.Tensor, first: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, C, S, W) images, :func:`band_weights` -> (B, C, S, W): the operator applied along the rows (dim 2),
    ``out[..., i, :] = sum_t weights[i, t] * images[..., first[i] + t, :]``."""
    b, c, s, w = images.shape
    out = None
    for t in range(weights.shape[-1]):  # a few taps, fixed by the config: unrolled into one compiled loop
        term = torch.gather(images, 2, (first + t)[:, None, :, None].expand(b, c, s, w)) * weights[:, None, :, t, None]
        out = term if out is None else out + term
    return out


def most_taps(size: int) -> int:
    """The widest band applied as taps; a wider one (a config drawing tiny sizes) as the S x S operator built from
    it and two matrix products: past this many taps, a per-sample product costs less, and the compiled loop stays
    small."""
    return min(32, max(1, size // 4))


def low_resolution(images: torch.Tensor, low_res: torch.Tensor, least: int) -> torch.Tensor:
    """(B, C, S, S) -> seen at ``round(low_res * S)`` pixels a side (``low_res`` (B,), 1: unchanged) and
    brought back. ``least``: :func:`least_small_size` of the config (a smaller s is read as ``least``)."""
    b, size = images.shape[0], images.shape[-1]
    band = band_width(least, size)
    first, weights = band_weights(small_size(low_res, size).clamp(min=least), size, band)
    if band <= most_taps(size):
        out = band_product(band_product(images, first, weights).transpose(-1, -2), first, weights).transpose(-1, -2)
    else:  # pixels, not labels: the products follow the caller's float32 matmul precision
        columns = first[..., None] + torch.arange(band, device=first.device)
        op = torch.zeros(b, size, size, device=images.device).scatter(2, columns, weights)[:, None]
        out = op @ images @ op.transpose(-1, -2)
    return torch.where(low_res[:, None, None, None] < 1, out, images)
