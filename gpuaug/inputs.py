"""Batches from what users hold: frames as a list of arrays or one dense tensor, either channel order, uint8 or
float images, boxes in the usual formats, checked for the mistakes people make (a channel order not named, float
images in 0-255, coordinates in [0, 1]).

:meth:`gpuaug.FaceBatch.from_images` is the entry point; the helpers here convert one thing each.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import torch

from gpuaug.errors import BatchError

Channels = Literal["hwc", "chw"]
BoxFormat = Literal["xyxy", "xywh", "cxcywh"]
#: A frame or frames as users hold them: a numpy array or a torch tensor.
ArrayLike = np.ndarray | torch.Tensor
#: Frames smaller than this on their shorter side are not checked for normalised coordinates (a 1 x 1 test frame
#: has every pixel in [0, 1]).
NORMALISED_MIN_SIDE = 8


#: The frame shapes each channel order takes, as said in errors: (order, dense batch) -> shapes.
_SHAPES = {("hwc", False): "(H, W, 3), (H, W, 1) or (H, W)", ("chw", False): "(3, H, W) or (1, H, W)",
           ("hwc", True): "(B, H, W, 3), (B, H, W, 1) or (B, H, W)", ("chw", True): "(B, 3, H, W) or (B, 1, H, W)"}


def _channel_axis(shape: tuple[int, ...], channels: Channels, dense: bool) -> int | None:
    """The channel axis of a frame (``dense``: a batch of frames) of ``shape`` in ``channels`` order, None for a
    grey frame without one; BatchError naming the shape seen and the order expected (and the other order when
    the shape fits it)."""
    lead = int(dense)
    rank, axis = len(shape) - lead, lead + (2 if channels == "hwc" else 0)
    if channels == "hwc" and rank == 2:
        return None
    if rank == 3 and shape[axis] in (1, 3):
        return axis
    other: Channels = "chw" if channels == "hwc" else "hwc"
    fits_other = rank == 3 and shape[lead + (2 if other == "hwc" else 0)] in (1, 3)
    hint = f"; it fits channels={other!r}: pass that" if fits_other else ""
    raise BatchError("images", f"{'images' if dense else 'an image'} of shape {tuple(shape)} does not fit "
                               f"channels={channels!r}, which takes {_SHAPES[channels, dense]}{hint}")


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as they are; float images in [0, 1] -> ``round(x * 255)`` as uint8 (the inverse of ``x / 255``;
    a value outside [0, 1] is a BatchError: 0-255 floats want ``.to(torch.uint8)`` instead). Reads the values (a
    host sync on a GPU)."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise BatchError("images", f"expected uint8, or float in [0, 1]; found {images.dtype}")
    if images.numel() and not bool(((images >= 0) & (images <= 1)).all()):
        lo, hi = float(images.min()), float(images.max())
        raise BatchError("images", f"float images must lie in [0, 1]; found values in [{lo:g}, {hi:g}] (0-255 floats: "
                                   "cast with .round().to(torch.uint8))")
    return (images.float() * 255).round().to(torch.uint8)


def frames_hwc(images: ArrayLike | Sequence[ArrayLike],
               channels: Channels = "hwc") -> list[torch.Tensor] | torch.Tensor:
    """Frames as users hold them -> (B, H, W, 3) uint8 (a dense tensor or array) or a list of (H, W, 3) uint8
    tensors (a list of frames, sizes may differ); grey frames get their one channel repeated; float frames in
    [0, 1] are converted by :func:`as_uint8`. ``channels`` names the order: "hwc" (H, W, 3) or "chw" (3, H, W)."""
    if channels not in get_args(Channels):
        raise ValueError(f"channels must be one of {get_args(Channels)}, got {channels!r}")
    dense = isinstance(images, (np.ndarray, torch.Tensor))
    if dense and images.ndim not in (3, 4):
        raise BatchError("images", f"expected a list of frames or a (B, H, W, 3) / (B, 3, H, W) tensor, found shape "
                                   f"{tuple(images.shape)}")
    if dense and images.ndim == 3 and channels == "chw":
        raise BatchError("images", f"images of shape {tuple(images.shape)} with channels='chw': give (B, 3, H, W) "
                                   "or (B, 1, H, W)")
    frames = [images] if dense else list(images)
    if not frames:
        raise ValueError("a batch needs at least one frame")
    out = []
    for frame in frames:
        t = torch.as_tensor(frame)
        axis = _channel_axis(tuple(t.shape), channels, dense)
        t = as_uint8(t)
        if axis is None:
            t = t.unsqueeze(-1)
        elif channels == "chw":
            t = t.movedim(axis, -1)
        out.append(t.expand(*t.shape[:-1], 3) if t.shape[-1] == 1 else t)
    return out[0] if dense else out


def boxes_xyxy(boxes: ArrayLike, box_format: BoxFormat = "xyxy") -> torch.Tensor:
    """(B, 4) boxes in ``box_format`` -> (B, 4) float32 [x0, y0, x1, y1]: "xywh" is [x0, y0, width, height] (COCO,
    WFLW's rectangles as corner and size), "cxcywh" [centre x, centre y, width, height]."""
    if box_format not in get_args(BoxFormat):
        raise ValueError(f"box_format must be one of {get_args(BoxFormat)}, got {box_format!r}")
    b = torch.as_tensor(boxes, dtype=torch.float32)
    if b.dim() != 2 or b.shape[1] != 4:
        raise BatchError("bbox", f"expected (B, 4) boxes as {box_format}, found shape {tuple(b.shape)}")
    if box_format == "xywh":
        return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    if box_format == "cxcywh":
        return torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
    return b


def warn_normalised(name: str, values: torch.Tensor, sizes: torch.Tensor) -> None:
    """A UserWarning when every finite coordinate of ``values`` (B, ..., 2k) lies in [0, 1] while the frames are
    larger than :data:`NORMALISED_MIN_SIDE` pixels: coordinates normalised to the frame, where pixels are wanted."""
    finite = values[torch.isfinite(values)]
    if finite.numel() and int(sizes.min()) > NORMALISED_MIN_SIDE and bool(((finite >= 0) & (finite <= 1)).all()):
        warnings.warn(f"{name}: every coordinate lies in [0, 1] on frames of {int(sizes.min())} pixels and more: "
                      "normalised coordinates? gpuaug takes pixels (multiply x by W and y by H)", UserWarning,
                      stacklevel=3)
