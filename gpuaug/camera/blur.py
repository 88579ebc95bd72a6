"""Optics: Gaussian blur and motion blur, a kernel per sample, as one depthwise convolution over the batch.

Filters are correlations over the image with its border reflected without repeating the edge pixel (OpenCV's
``BORDER_REFLECT_101``, torch's ``"reflect"``). The batch's B x C planes are the groups of one grouped
``conv2d`` (each plane with its sample's kernel): one library call, cheap to trace. The window is fixed by the
config (the largest kernel it can draw), so shapes never depend on the params. (A float32 depthwise convolution
runs PyTorch's own kernel on CUDA, not cuDNN's TF32 path.)

The CPU chain (:mod:`gpuaug.camera.staged`) draws the kernels and reflects the rows (:func:`reflect_pad`) into
memory it keeps, then filters with :func:`correlate_taps` / :func:`separable_taps`: the same correlation as a
sum of shifted taps, which Inductor compiles into one vectorised loop. (Its lowering of the grouped
convolution, padding inside a compiled graph, and kernel weights computed inside the loop, which it would
inline into every tap of every pixel, each cost several times more there.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_radius(sigma_max: float) -> int:
    """Half width of the Gaussian window: 3 sigma, as OpenCV picks for 8-bit images."""
    return max(1, math.ceil(3 * sigma_max))


def motion_radius(length_max: float) -> int:
    """Half width of the motion window for lines up to ``length_max`` pixels (a length-L window for odd L)."""
    return max(1, math.ceil((length_max - 1) / 2))


def _delta(taps: torch.Tensor) -> torch.Tensor:
    """The identity kernel on the grid ``taps`` (float offsets): 1 at offset 0."""
    return (taps == 0).float()


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(B,) sigma (output pixels; 0 = no blur) -> (B, 2 * radius + 1) normalised 1D kernels (identity at 0)."""
    t = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    s = sigma.clamp(min=1e-6)[:, None]
    k = torch.exp(-0.5 * (t / s) ** 2)
    return torch.where(sigma[:, None] > 0, k / k.sum(1, keepdim=True), _delta(t))


def motion_kernels(length: torch.Tensor, angle: torch.Tensor, radius: int) -> torch.Tensor:
    """(B,) length (output pixels; 0 = none), angle (degrees from +x toward +y) -> (B, K, K) kernels, K = 2 *
    radius + 1, indexed [dy, dx].

    The kernel is a line of ones ``length`` pixels long through the centre, drawn along the direction and
    sampled bilinearly: at offset (dx, dy), with u along the line and v across it, ``max(0, 1 - |v|) *
    clamp(length / 2 + 0.5 - |u|, 0, 1)``, normalised to sum 1 (for odd lengths the same kernel as kornia's
    ``get_motion_kernel2d``, a rotated horizontal line).
    """
    t = torch.arange(-radius, radius + 1, device=length.device, dtype=torch.float32)
    dy, dx = t[:, None], t[None, :]
    a = torch.deg2rad(angle)[:, None, None]
    u = dx * torch.cos(a) + dy * torch.sin(a)
    v = dy * torch.cos(a) - dx * torch.sin(a)
    k = (1 - v.abs()).clamp(min=0) * (length[:, None, None] / 2 + 0.5 - u.abs()).clamp(0, 1)
    k = k / k.sum((1, 2), keepdim=True).clamp(min=1e-12)
    return torch.where(length[:, None, None] > 0, k, _delta(dy) * _delta(dx))


def correlate(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images, (B, kh, kw) per-sample kernels (odd sides, [dy, dx]) -> the correlation, borders
    reflected (``BORDER_REFLECT_101``); a kernel of one row or one column filters along one axis only."""
    b, c, h, w = images.shape
    if b * c == 0:  # nothing to filter (a convolution needs at least one group)
        return images
    kh, kw = kernels.shape[1:]
    padded = F.pad(images, (kw // 2, kw // 2, kh // 2, kh // 2), mode="reflect")
    weight = kernels.repeat_interleave(c, 0)[:, None]  # (B * C, 1, kh, kw): plane k of sample b gets kernel b
    out = F.conv2d(padded.reshape(1, b * c, h + kh - 1, w + kw - 1), weight, groups=b * c)
    return out.view(b, c, h, w)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, C, H, W) -> separable Gaussian blur with per-sample ``sigma`` (B,) output pixels (0: unchanged)."""
    k = gaussian_kernels(sigma, radius)
    blurred = correlate(correlate(images, k[:, None, :]), k[:, :, None])
    return torch.where(sigma[:, None, None, None] > 0, blurred, images)


def motion_blur(images: torch.Tensor, length: torch.Tensor, angle: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, C, H, W) -> blurred along a line of ``length`` (B,) output pixels at ``angle`` (B,) degrees
    (0: unchanged)."""
    blurred = correlate(images, motion_kernels(length, angle, radius))
    return torch.where(length[:, None, None, None] > 0, blurred, images)


def reflect_pad(images: torch.Tensor, ry: int, rx: int, out: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> ``out`` (B, C, H + 2 ry, W + 2 rx): ``images`` with borders reflected as
    ``F.pad(mode="reflect")`` (``BORDER_REFLECT_101``; ``ry < H``, ``rx < W``), written by copies."""
    h, w = images.shape[-2:]
    out[..., ry:ry + h, rx:rx + w].copy_(images)
    for i in range(1, rx + 1):
        out[..., ry:ry + h, rx - i].copy_(images[..., i])
        out[..., ry:ry + h, rx + w - 1 + i].copy_(images[..., w - 1 - i])
    for i in range(1, ry + 1):  # whole padded rows, corners included
        out[..., ry - i, :].copy_(out[..., ry + i, :])
        out[..., ry + h - 1 + i, :].copy_(out[..., ry + h - 1 - i, :])
    return out


def correlate_taps(padded: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """(B, C, H + kh - 1, W + kw - 1) reflected images, (B, kh, kw) kernels -> (B, C, H, W): the correlation of
    :func:`correlate`, as a sum of kh x kw shifted slices."""
    kh, kw = kernels.shape[1:]
    h, w = padded.shape[-2] - kh + 1, padded.shape[-1] - kw + 1
    out = padded[..., :h, :w] * kernels[:, 0, 0, None, None, None]
    for dy in range(kh):
        for dx in range(kw):
            if dy or dx:
                out = out + padded[..., dy:dy + h, dx:dx + w] * kernels[:, dy, dx, None, None, None]
    return out


def separable_taps(padded: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """(B, C, H + 2 r, W + 2 r) reflected images, (B, 2 r + 1) 1D kernels -> (B, C, H, W): the kernel along
    rows, then along columns (:func:`gaussian_blur`'s two passes)."""
    return correlate_taps(correlate_taps(padded, kernels[:, None, :]), kernels[:, :, None])
