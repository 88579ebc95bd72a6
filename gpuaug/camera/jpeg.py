"""Encoder: the loss of a baseline JPEG round trip at a per-sample quality, computed on the tile's device.

As libjpeg (IJG) does it: 8-bit input; for colour, JFIF YCbCr as 8-bit samples with 4:2:0 chroma (libjpeg's
2 x 2 average down, the decoder's "fancy" triangle filter back up: bilinear with half-pixel centres, rounded); the
image padded to whole blocks by repeating its last row and column; per 8 x 8 block the orthonormal 2D DCT of
``value - 128``, each coefficient rounded to a multiple of its entry in the standard tables (ITU T.81 Annex K)
scaled by quality as ``jpeg_set_quality`` does (baseline: entries in [1, 255]); inverse DCT to 8-bit samples,
back to RGB, 8-bit output. Entropy coding is lossless and skipped. Floating-point DCT and colour conversion
instead of libjpeg's fixed-point ones: a few 1/255 apart at most.
The DCT of all blocks is one matrix product with the 64 basis images, its inverse the transposed one (pixels,
not labels: it follows the caller's float32 matmul precision; TF32 would move coefficients by about 1e-3 of
their size, far below the quantisation steps).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gpuaug.device_constants import constant

LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55), (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62), (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMA_TABLE = ((17, 18, 24, 47, 99, 99, 99, 99), (18, 21, 26, 66, 99, 99, 99, 99), (24, 26, 56, 99, 99, 99, 99, 99),
                (47, 66, 99, 99, 99, 99, 99, 99)) + ((99,) * 8,) * 4
#: JFIF RGB -> YCbCr rows (offsets 128 on Cb and Cr) and its inverse.
RGB_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
YCBCR_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))
_DCT = tuple(tuple((math.sqrt(0.5) if u == 0 else 1.0) / 2 * math.cos((2 * x + 1) * u * math.pi / 16)
                   for x in range(8)) for u in range(8))


def quant_tables(quality: torch.Tensor, table: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """(B,) quality 1..100 -> (B, 8, 8) float32 table, as IJG ``jpeg_set_quality(quality, force_baseline)``."""
    q = quality.clamp(1, 100)[:, None, None]
    scale = torch.where(q < 50, torch.floor(5000 / q), 200 - 2 * q)
    base = constant(table, quality.device)
    return torch.floor((base * scale + 50) / 100).clamp(1, 255)


def _mix(x: torch.Tensor, rows: tuple[tuple[float, ...], ...]) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, H, W): ``rows @ x`` per pixel, as sums of products (no matmul precision switch)."""
    return torch.stack([sum(r * x[:, k] for k, r in enumerate(row)) for row in rows], 1)


def dct_basis(device: torch.device) -> torch.Tensor:
    """(64, 64) float32 orthonormal: row 8 u + v is basis image (u, v), ``D[u, y] * D[v, x]`` at 8 y + x."""
    dct = constant(_DCT, device)
    return (dct[:, None, :, None] * dct[None, :, None, :]).reshape(64, 64)


def _dct_quantise(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, H, W) levels in [0, 255], H and W multiples of 8, (B, 8, 8) table -> the plane after DCT,
    quantisation and inverse DCT."""
    b, h, w = plane.shape
    basis = dct_basis(plane.device)
    count = (h // 8) * (w // 8)
    blocks = (plane - 128).view(b, h // 8, 8, w // 8, 8).transpose(2, 3).reshape(b, count, 64)  # (B, blocks, 64)
    coef = blocks @ basis.t()
    t = table.reshape(b, 1, 64)
    back = (torch.round(coef / t) * t) @ basis
    return back.view(b, h // 8, w // 8, 8, 8).transpose(2, 3).reshape(b, h, w) + 128


def _samples(plane: torch.Tensor) -> torch.Tensor:
    """The decoder's 8-bit samples: rounded and clamped to [0, 255]."""
    return torch.round(plane).clamp(0, 255)


def jpeg(images: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) float32 [0, 1], C = 1 (grey) or 3 (RGB) -> after a JPEG round trip at ``quality`` (B,)
    (0: unchanged), on 8-bit levels (multiples of 1/255)."""
    c, h, w = images.shape[1:]
    levels = torch.round(images.clamp(0, 1) * 255)
    mcu = 16 if c == 3 else 8
    # Whole MCUs, written with floor division (Inductor's symbolic ranges trip over a negative modulo here).
    h_pad, w_pad = (h + mcu - 1) // mcu * mcu, (w + mcu - 1) // mcu * mcu
    # Only when needed: a replicate pad in the graph makes Inductor's block gather clamp every index (scalar code).
    padded = F.pad(levels, (0, w_pad - w, 0, h_pad - h), mode="replicate") if (h_pad, w_pad) != (h, w) else levels
    luma_table, chroma_table = quant_tables(quality, LUMA_TABLE), quant_tables(quality, CHROMA_TABLE)
    if c == 1:
        out = _dct_quantise(padded[:, 0], luma_table)[:, None]
    else:
        ycc = torch.round(_mix(padded, RGB_TO_YCBCR))  # the encoder's 8-bit Y, Cb, Cr samples
        luma = _samples(_dct_quantise(ycc[:, 0], luma_table))
        # libjpeg's 2 x 2 average: (sum + bias) >> 2, the bias alternating 1, 2 along the row (unbiased rounding).
        bias = 1 + torch.arange(w_pad // 2, device=images.device) % 2
        chroma = torch.floor((F.avg_pool2d(ycc[:, 1:], 2) * 4 + bias) / 4)
        chroma = torch.stack([_samples(_dct_quantise(chroma[:, k] + 128, chroma_table)) - 128 for k in range(2)], 1)
        chroma = torch.round(F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False))
        out = _mix(torch.cat([luma[:, None], chroma], 1), YCBCR_TO_RGB)
    out = torch.round(out[:, :, :h, :w].clamp(0, 255)) * (1 / 255)
    return torch.where(quality[:, None, None, None] > 0, out, images)
