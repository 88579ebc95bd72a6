"""Encoder: the loss of a baseline JPEG round trip at a per-sample quality, computed on the tile's device.

As libjpeg (IJG; libjpeg-turbo, which Pillow uses, with its defaults) does it, step by step: 8-bit input; for
colour, libjpeg's fixed-point RGB -> YCbCr (``jccolor.c``) and 4:2:0 chroma; per 8 x 8 block the 2D DCT of
``value - 128``, each coefficient rounded to a multiple of its entry in the standard tables (ITU T.81 Annex K)
scaled by quality as ``jpeg_set_quality`` does (baseline: entries in [1, 255]); inverse DCT to 8-bit samples;
the decoder's "fancy" chroma upsampling and fixed-point YCbCr -> RGB (``jdsample.c``, ``jdcolor.c``), with
their rounding biases; 8-bit output. Entropy coding is lossless and skipped.
Partial MCUs (a side that is no multiple of 8, or of 16 for colour) are padded as libjpeg pads them: each row
repeats its last pixel out to whole MCUs *before* the 2 x 2 chroma average, but the rows below the image are
copies of the last image row for luma and of the last *averaged* row for chroma (``jcprepct.c``); the decoder
upsamples chroma from its real samples only, repeating the edge ones (``jdmainct.c``). Blocks wholly outside
the image do not reach a visible pixel and are not computed.
The one step that is not libjpeg's is the DCT: orthonormal floating point here, libjpeg's default ``JDCT_ISLOW``
(fixed point, both ways; Pillow keeps it) there, so a coefficient near a rounding boundary can land on the other
multiple; the quantiser is libjpeg's (whole 1/8 units of its DCT, ties away from zero). Measured against Pillow
on detailed crops (``docs/augmentations-ops.md``, ``tests/test_jpeg_libjpeg.py``), the same at every crop size
S = 8-128 whether or not a multiple of 16: at most 0.26 / 255 mean at quality 50-95, at most 1.8 % of the
codec's own loss for colour (2.7 % grey at 50-75, 9 % of grey's 1.5 / 255 at 95); a block with a coefficient
rounded the other way can be up to about 25 / 255 off at a pixel.
The DCT of all blocks is one matrix product with the 64 basis images, its inverse the transposed one (pixels,
not labels: it follows the caller's float32 matmul precision; TF32 would move coefficients by about 1e-3 of
their size, far below the quantisation steps). The colour conversions and resampling are exact integer
arithmetic in float32 (every intermediate below 2^24), so they are libjpeg's to the bit on any device.
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
#: libjpeg's fixed-point JFIF colour conversion, ``FIX(x) = round(x * 2^16)``: RGB -> Y, Cb, Cr rows
#: (``jccolor.c``), and Cr -> R, Cb -> G, Cr -> G, Cb -> B (``jdcolor.c``).
RGB_TO_YCC_FIXED = ((19595, 38470, 7471), (-11059, -21709, 32768), (32768, -27439, -5329))
YCC_TO_RGB_FIXED = (91881, -22554, -46802, 116130)
_ONE = 65536.0  # 1 << SCALEBITS
_DCT = tuple(tuple((math.sqrt(0.5) if u == 0 else 1.0) / 2 * math.cos((2 * x + 1) * u * math.pi / 16)
                   for x in range(8)) for u in range(8))


def quant_tables(quality: torch.Tensor, table: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """(B,) quality 1..100 -> (B, 8, 8) float32 table, as IJG ``jpeg_set_quality(quality, force_baseline)``."""
    q = quality.clamp(1, 100)[:, None, None]
    scale = torch.where(q < 50, torch.floor(5000 / q), 200 - 2 * q)
    base = constant(table, quality.device)
    return torch.floor((base * scale + 50) / 100).clamp(1, 255)


def _whole(size: int, unit: int) -> int:
    """``size`` rounded up to whole ``unit``s (floor division: Inductor's symbolic ranges trip over a negative
    modulo here)."""
    return (size + unit - 1) // unit * unit


def _pad_edge(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., H, W) -> (..., height, width), the last row and column repeated; only when needed: a replicate pad
    in the graph makes Inductor's block gather clamp every index (scalar code)."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, width - w, 0, height - h), mode="replicate") if (height, width) != (h, w) else x


def rgb_to_ycc(levels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) 8-bit RGB levels -> (B, 3, H, W) 8-bit Y, Cb, Cr samples, as ``rgb_ycc_convert``: Y rounds
    half up, Cb and Cr half down (``ONE_HALF - 1``, so that 255.5 stays 255)."""
    rows = [sum(k * levels[:, i] for i, k in enumerate(row)) for row in RGB_TO_YCC_FIXED]
    luma = torch.floor((rows[0] + _ONE / 2) / _ONE)
    chroma = [torch.floor((r + (_ONE / 2 - 1)) / _ONE) + 128 for r in rows[1:]]
    return torch.stack([luma, *chroma], 1)


def ycc_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) 8-bit Y, Cb, Cr samples -> (B, 3, H, W) RGB levels, as ``ycc_rgb_convert``: each chroma
    term rounded on its own (half up), added to Y, clamped to [0, 255]."""
    y, cb, cr = ycc[:, 0], ycc[:, 1] - 128, ycc[:, 2] - 128
    cr_r, cb_g, cr_g, cb_b = YCC_TO_RGB_FIXED
    r = y + torch.floor((cr_r * cr + _ONE / 2) / _ONE)
    g = y + torch.floor((cb_g * cb + cr_g * cr + _ONE / 2) / _ONE)
    b = y + torch.floor((cb_b * cb + _ONE / 2) / _ONE)
    return torch.stack([r, g, b], 1).clamp(0, 255)


def dct_basis(device: torch.device) -> torch.Tensor:
    """(64, 64) float32 orthonormal: row 8 u + v is basis image (u, v), ``D[u, y] * D[v, x]`` at 8 y + x."""
    dct = constant(_DCT, device)
    return (dct[:, None, :, None] * dct[None, :, None, :]).reshape(64, 64)


def _dct_quantise(planes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) 8-bit samples, H and W multiples of 8, (B, 8, 8) table -> (B, K, H, W) the decoder's 8-bit
    samples after DCT, quantisation and inverse DCT (all K planes of a sample in one product)."""
    b, k, h, w = planes.shape
    basis = dct_basis(planes.device)
    count = k * (h // 8) * (w // 8)
    blocks = (planes - 128).view(b, k, h // 8, 8, w // 8, 8).transpose(3, 4).reshape(b, count, 64)
    # libjpeg's quantiser: its DCT leaves whole 1/8 units, and |c| + q / 2 is floor-divided by q, so a coefficient
    # exactly half a step between two multiples rounds away from zero; at the small steps of high quality one
    # coefficient in 8 q sits there (rounding our unrounded coefficient instead measured 3-4 x the gap to Pillow).
    coef8 = torch.round(blocks @ (basis.t() * 8))
    t = table.reshape(b, 1, 64)
    # Ties away from zero in two ops: the step shrunk by 1e-5 moves a tie (|c8| / 8q = k + 1/2, at most 1024 / q)
    # past the half by 1e-5 |c8| / 8q, above float32's rounding of the product (1e-7 of it), while every other
    # quotient is at least 1 / 8q from the half, more than the shift (0.01 / q).
    kept = torch.round(coef8 * ((1 + 1e-5) / (8 * t))) * t
    back = kept @ basis
    return torch.round(back.view(b, k, h // 8, w // 8, 8, 8).transpose(3, 4).reshape(b, k, h, w) + 128).clamp(0, 255)


def _luma_round_trip(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) samples -> (B, 1, H, W) decoded. Padded to whole blocks with the last row and column: for
    colour libjpeg pads luma to 16 x 16 MCUs, but the blocks past the image's last are dummies nobody sees."""
    h, w = plane.shape[-2:]
    return _dct_quantise(_pad_edge(plane, _whole(h, 8), _whole(w, 8)), table)[..., :h, :w]


def _downsample(chroma: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W), H and W even -> (B, 2, H/2, W/2): ``h2v2_downsample``, ``(sum + bias) >> 2`` with the bias
    alternating 1, 2 along the row (unbiased rounding)."""
    bias = 1 + torch.arange(chroma.shape[-1] // 2, device=chroma.device) % 2
    return torch.floor((F.avg_pool2d(chroma, 2) * 4 + bias) / 4)


def _upsample(chroma: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 2, ceil(H/2), ceil(W/2)) decoded samples -> (B, 2, H, W): ``h2v2_fancy_upsample``, the triangle
    filter (9 a + 3 b + 3 c + d + bias) >> 4, the bias 8 on even output columns and 7 on odd ones, the edge
    samples repeated past the edge (which bilinear with half-pixel centres does: its sums are exact here). A
    plane 2 samples wide or less gets libjpeg's box filter."""
    if chroma.shape[-1] <= 2:
        return chroma.repeat_interleave(2, -2).repeat_interleave(2, -1)[..., :height, :width]
    smooth = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    bias = (8 - torch.arange(smooth.shape[-1], device=chroma.device) % 2) / 16
    return torch.floor(smooth + bias)[..., :height, :width]


def _chroma_round_trip(chroma: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) full-resolution Cb, Cr samples -> (B, 2, H, W) after 4:2:0 down, the codec, and up."""
    h, w = chroma.shape[-2:]
    small_h, small_w = (h + 1) // 2, (w + 1) // 2
    # libjpeg repeats each row's last pixel out to whole 16-pixel MCUs before averaging (so the padded columns
    # keep the 1, 2 bias), but pads the height only to even there: the MCU rows below the image are copies of
    # the last averaged row (jcprepct.c), not averages of copies of the last image row.
    small = _downsample(_pad_edge(chroma, 2 * small_h, _whole(w, 16)))
    decoded = _dct_quantise(_pad_edge(small, _whole(small_h, 8), small.shape[-1]), table)
    # The decoder upsamples from the real samples only; the padding's own decoded values never show.
    return _upsample(decoded[..., :small_h, :small_w], h, w)


def jpeg(images: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) float32 [0, 1], C = 1 (grey) or 3 (RGB) -> after a JPEG round trip at ``quality`` (B,)
    (0: unchanged), on 8-bit levels (multiples of 1/255)."""
    levels = torch.round(images.clamp(0, 1) * 255)
    luma_table = quant_tables(quality, LUMA_TABLE)
    if images.shape[1] == 1:
        out = _luma_round_trip(levels, luma_table)
    else:
        ycc = rgb_to_ycc(levels)
        luma = _luma_round_trip(ycc[:, :1], luma_table)
        chroma = _chroma_round_trip(ycc[:, 1:], quant_tables(quality, CHROMA_TABLE))
        out = ycc_to_rgb(torch.cat([luma, chroma], 1))
    return torch.where(quality[:, None, None, None] > 0, out * (1 / 255), images)
