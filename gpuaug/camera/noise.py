"""Sensor noise: additive Gaussian (read noise) and signal-dependent shot noise, from counter-based noise."""

from __future__ import annotations

import torch

from gpuaug.camera.counter_noise import normal_field

#: Counter-noise stream of the sensor noise.
NOISE_STREAM = 1


def sensor_noise(images: torch.Tensor, std: torch.Tensor, shot: torch.Tensor, seed: torch.Tensor,
                 gray: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) float32 [0, 1] -> ``clamp(x + sqrt(std^2 + shot^2 * x) * n, 0, 1)``, n standard normal per
    pixel and channel (one field for all channels of a grey sample, ``gray`` (B,) bool), drawn from the
    sample's ``seed`` (B,): the Gaussian approximation of a Poisson count whose std at white (x = 1) is
    ``shot``, plus read noise of std ``std`` ([0, 1] units). Samples with both 0 are unchanged."""
    b, c, h, w = images.shape
    n = normal_field(seed[:, None, None, None], (b, c, h, w), gray | (c == 1), NOISE_STREAM)
    s, k = std[:, None, None, None], shot[:, None, None, None]
    noisy = (images + torch.sqrt(s * s + k * k * images.clamp(min=0)) * n).clamp(0, 1)
    return torch.where((s > 0) | (k > 0), noisy, images)
