"""The heatmap modulation of DarkPose and UDP decoding: OpenCV's Gaussian blur, the map's maximum kept.

mmpose's ``gaussian_blur`` (``mmpose/codecs/utils/post_processing.py``) pads each map with (k - 1) / 2 zeros,
runs ``cv2.GaussianBlur(map, (k, k), 0)`` and rescales the result to the map's original maximum. The padding
makes OpenCV's border rule irrelevant, so the blur is a zero-padded separable convolution with
``cv2.getGaussianKernel(k, 0)``, written here in torch so it runs batched on any device.
"""

from __future__ import annotations

import math

import torch

from gpuaug.device_constants import constant

# OpenCV's fixed kernels for sigma <= 0 and k <= 7 (imgproc/src/smooth.dispatch.cpp, small_gaussian_tab).
_SMALL = {1: (1.0,), 3: (0.25, 0.5, 0.25), 5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
          7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125)}


def opencv_gaussian_kernel(size: int) -> tuple[float, ...]:
    """``cv2.getGaussianKernel(size, 0)`` (odd ``size``): sigma = 0.3 ((size - 1) / 2 - 1) + 0.8, sums to 1."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"blur kernel size must be a positive odd integer, got {size}")
    if size in _SMALL:
        return _SMALL[size]
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    taps = [math.exp(-((i - (size - 1) / 2) ** 2) / (2 * sigma**2)) for i in range(size)]
    return tuple(t / sum(taps) for t in taps)


def blur_like_opencv(maps: torch.Tensor, size: int) -> torch.Tensor:
    """(..., h, w) float32 -> the same maps blurred by mmpose's ``gaussian_blur`` (zero padding, OpenCV's
    kernel of ``size``), each rescaled by its maximum over the blurred map's maximum. A map whose blurred maximum
    is 0 stays as blurred (mmpose divides by 0 there)."""
    kernel = constant(opencv_gaussian_kernel(size), maps.device)
    h, w = maps.shape[-2:]
    flat = maps.reshape(-1, 1, h, w)
    pad = (size - 1) // 2
    # Separable: rows then columns, each an elementwise-weighted sum of shifted copies (no conv setting applies).
    rows = torch.nn.functional.pad(flat, (pad, pad, 0, 0))
    flat = sum(kernel[i] * rows[..., i:i + w] for i in range(size))
    cols = torch.nn.functional.pad(flat, (0, 0, pad, pad))
    flat = sum(kernel[i] * cols[..., i:i + h, :] for i in range(size))
    blurred = flat.reshape(maps.shape)
    before, after = maps.amax((-2, -1), keepdim=True), blurred.amax((-2, -1), keepdim=True)
    # mmpose multiplies by before / after whatever their signs (a network's signed output); 0 / 0 stays 0.
    return blurred * torch.where(after != 0, before / torch.where(after != 0, after, 1.0), 0.0)
