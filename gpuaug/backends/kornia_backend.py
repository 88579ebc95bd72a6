"""The torch backend: one resample per sample, then the shared per-sample colour map.

Two warps, same convention (bilinear, zero fill, pixel centres at integers, ``align_corners=True``):

- ``"gather"`` (:mod:`gpuaug.backends.gather`): samples only the S x S output pixels straight from the
  uint8 batch, colour rows fused. On the CPU it runs through ``torch.compile`` (one fused C++ loop);
  ``tests/test_torch_backend_parity.py`` holds it to kornia's warp.
- ``"kornia"``: kornia's ``warp_affine`` on the float-converted padded batch; the reference.

``"auto"`` (the default) picks gather, except on a CPU where ``torch.compile`` is off or fails: there
eager gather is slower than kornia's single fused ``grid_sample``, so kornia is used.
Set ``GPUAUG_COMPILE=0`` to keep ``torch.compile`` out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Literal

import torch
from kornia.geometry.transform import warp_affine

from gpuaug.backends.gather import sample_colour
from gpuaug.colour import GRAY_WEIGHTS, colour_affine
from gpuaug.params import AugmentParams

Warp = Literal["auto", "gather", "kornia"]
_log = logging.getLogger(__name__)
_compiled: dict[str, Callable | None] = {}


def apply_colour(images: torch.Tensor, params: AugmentParams, channels: int) -> torch.Tensor:
    """(B, 3, S, S) float [0, 1] -> (B, channels, S, S): the shared per-sample colour map, clamped."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=images.dtype, device=images.device)
    mean_gray = torch.einsum("c,bchw->b", w, images) / images[0, 0].numel()
    a, b = colour_affine(params, mean_gray, channels)
    return (torch.einsum("bkc,bchw->bkhw", a, images) + b[:, :, None, None]).clamp_(0, 1)


def render_reference(
    images: torch.Tensor,
    sizes: torch.Tensor,
    matrix: torch.Tensor,
    params: AugmentParams,
    out_size: int,
    channels: int,
) -> torch.Tensor:
    """kornia ``warp_affine`` on the whole float-converted batch, then colour; see :mod:`gpuaug.backends`."""
    # FaceBatch frames are zero-padded beyond ``sizes``, and zero is the fill, so the padding is never
    # anything but fill to the bilinear taps.
    src = images.permute(0, 3, 1, 2).float().div_(255)
    warped = warp_affine(src, matrix[:, :2].float(), (out_size, out_size), align_corners=True)
    return apply_colour(warped, params, channels)


def compiled_sampler() -> Callable | None:
    """``torch.compile``'d :func:`sample_colour`, or None when it is switched off or cannot compile."""
    if "cpu" not in _compiled:
        enabled = os.environ.get("GPUAUG_COMPILE", "1") != "0" and hasattr(torch, "compile")
        # dynamic: frame size, batch size and channels change between batches; one kernel serves all.
        _compiled["cpu"] = torch.compile(sample_colour, dynamic=True) if enabled else None
    return _compiled["cpu"]


def _sampler(device: torch.device) -> Callable | None:
    """The gather sampler to use on ``device``: compiled on the CPU (None if unavailable), else eager."""
    return compiled_sampler() if device.type == "cpu" else sample_colour


def render_gather(
    images: torch.Tensor,
    sizes: torch.Tensor,
    matrix: torch.Tensor,
    params: AugmentParams,
    out_size: int,
    channels: int,
    sampler: Callable = sample_colour,
) -> torch.Tensor:
    """Sample only the output pixels from the uint8 batch, colour fused; see :mod:`gpuaug.backends`."""
    inverse = torch.linalg.inv(matrix.double())[:, :2].float()
    # The colour bias is linear in the warped image's mean grey (the contrast pivot), known only after the
    # warp: hand the sampler the bias per unit of mean grey.
    rows, bias_per_gray = colour_affine(params, torch.ones_like(params.contrast), channels)
    return sampler(images, sizes, inverse, rows.float().contiguous(), bias_per_gray.float(), out_size)


def render(
    images: torch.Tensor,
    sizes: torch.Tensor,
    matrix: torch.Tensor,
    params: AugmentParams,
    out_size: int,
    channels: int,
    warp: Warp = "auto",
) -> torch.Tensor:
    """Warp (bilinear, zero fill, pixel centres at integers) then colour; see :mod:`gpuaug.backends`.

    ``warp``: ``"auto"`` (module docstring), ``"gather"`` (eager gather on any device, never compiled) or
    ``"kornia"`` (the reference).
    """
    args = (images, sizes, matrix, params, out_size, channels)
    if warp == "kornia":
        return render_reference(*args)
    if warp == "gather":
        return render_gather(*args)
    if warp != "auto":
        raise ValueError(f"unknown warp {warp!r}; choose 'auto', 'gather' or 'kornia'")
    sampler = _sampler(images.device)
    if sampler is None:
        return render_reference(*args)
    try:
        return render_gather(*args, sampler=sampler)
    except Exception as exc:  # any compiler failure (no C++ toolchain, ...) means fall back
        if sampler is sample_colour:
            raise
        _log.warning("torch.compile of the gather warp failed (%s); using kornia's warp_affine", exc)
        _compiled["cpu"] = None
        return render_reference(*args)
