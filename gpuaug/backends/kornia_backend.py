"""The torch backend: one resample per sample, then the shared per-sample colour map and output format.

Two warps, same convention (bilinear, zero fill, pixel centres at integers, ``align_corners=True``):

- ``"gather"`` (:mod:`gpuaug.backends.gather`): samples only the S x S output pixels straight from the
  uint8 buffer, colour, normalisation, dtype and memory format fused. It runs through ``torch.compile``
  on every device (Inductor: one C++ loop on the CPU, Triton kernels on CUDA); compiled once per device
  type with dynamic shapes, so batch size and frame sizes do not recompile.
  ``tests/test_torch_backend_parity.py`` holds it to kornia's warp.
- ``"kornia"``: kornia's ``warp_affine`` on the float-converted zero-padded batch; the reference.

``"auto"`` (the default) picks the compiled gather; where ``torch.compile`` is off (``GPUAUG_COMPILE=0``)
or fails (logged once), the eager gather on CUDA (the same kernel as many small launches) and kornia on
the CPU (there one fused ``grid_sample`` beats the eager gather).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Literal

import torch
from kornia.geometry.transform import warp_affine

from gpuaug.backends.gather import sample_colour
from gpuaug.batch import FaceBatch
from gpuaug.colour import GRAY_WEIGHTS, colour_affine
from gpuaug.config import AugmentConfig
from gpuaug.device_constants import constant
from gpuaug.labels.matrix import affine_inverse
from gpuaug.output import finish, normalisation
from gpuaug.params import AugmentParams

Warp = Literal["auto", "gather", "kornia"]
_log = logging.getLogger(__name__)
_compiled: dict[str, Callable | None] = {}


def apply_colour(images: torch.Tensor, params: AugmentParams, channels: int) -> torch.Tensor:
    """(B, 3, S, S) float [0, 1] -> (B, channels, S, S): the shared per-sample colour map, clamped."""
    w = constant(GRAY_WEIGHTS, images.device, images.dtype)
    mean_gray = torch.einsum("c,bchw->b", w, images) / images[0, 0].numel()
    a, b = colour_affine(params, mean_gray, channels)
    return (torch.einsum("bkc,bchw->bkhw", a, images) + b[:, :, None, None]).clamp_(0, 1)


def render_reference(
    batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams, config: AugmentConfig
) -> torch.Tensor:
    """kornia ``warp_affine`` on the zero-padded float batch, then colour and output format (separate passes)."""
    # batch.images pads with zeros beyond each frame's size, and zero is the fill, so the padding is never
    # anything but fill to the bilinear taps.
    src = batch.images.permute(0, 3, 1, 2).float().div_(255)
    size = config.out_size
    warped = warp_affine(src, matrix[:, :2].float(), (size, size), align_corners=True)
    return finish(apply_colour(warped, params, config.channels), config)


def compiled_sampler(device_type: str) -> Callable | None:
    """``torch.compile``'d :func:`sample_colour` for a device type, or None when it is switched off."""
    if device_type not in _compiled:
        enabled = os.environ.get("GPUAUG_COMPILE", "1") != "0" and hasattr(torch, "compile")
        # dynamic: frame sizes, buffer length and batch size change between batches; one kernel serves all.
        _compiled[device_type] = torch.compile(sample_colour, dynamic=True) if enabled else None
    return _compiled[device_type]


def render_gather(
    batch: FaceBatch,
    matrix: torch.Tensor,
    params: AugmentParams,
    config: AugmentConfig,
    sampler: Callable = sample_colour,
) -> torch.Tensor:
    """Sample only the output pixels from the uint8 buffer, colour and output format fused."""
    inverse = affine_inverse(matrix.double())[:, :2].float()
    # The colour bias is linear in the warped image's mean grey (the contrast pivot), known only after the
    # warp: hand the sampler the bias per unit of mean grey.
    rows, bias_per_gray = colour_affine(params, torch.ones_like(params.contrast), config.channels)
    return sampler(batch.pixels, batch.offsets, batch.strides, batch.sizes, inverse, rows.float().contiguous(),
                   bias_per_gray.float(), normalisation(config, batch.device), config.out_size, config.dtype,
                   config.channels_last)


def render(
    batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams, config: AugmentConfig, warp: Warp = "auto"
) -> torch.Tensor:
    """Warp (bilinear, zero fill, pixel centres at integers), colour, output format; see :mod:`gpuaug.backends`.

    ``warp``: ``"auto"`` (module docstring), ``"gather"`` (eager gather on any device, never compiled) or
    ``"kornia"`` (the reference).
    """
    args = (batch, matrix, params, config)
    if warp == "kornia":
        return render_reference(*args)
    if warp == "gather":
        return render_gather(*args)
    if warp != "auto":
        raise ValueError(f"unknown warp {warp!r}; choose 'auto', 'gather' or 'kornia'")
    device_type = batch.device.type
    sampler = compiled_sampler(device_type)
    if sampler is None:
        return render_gather(*args) if device_type == "cuda" else render_reference(*args)
    try:
        return render_gather(*args, sampler=sampler)
    except Exception as exc:  # any compiler failure (no C++ toolchain, no Triton, ...) means fall back
        _log.warning("torch.compile of the gather warp failed on %s (%s); falling back", device_type, exc)
        _compiled[device_type] = None
        return render(*args)
