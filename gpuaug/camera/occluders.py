"""Occluders: rotated rectangles and ellipses drawn over the output, and the landmarks they hide.

An occluder (one row of ``AugmentParams.occluders``, columns :data:`~gpuaug.camera.sample.OCCLUDER_COLUMNS`)
covers the output pixel whose centre (u, v) (integers, pixel centres at integers) satisfies, in the occluder's
own frame ``(lx, ly) = R(-angle) (u - cx, v - cy)``: ``|lx| <= half_w and |ly| <= half_h`` (rectangle) or
``(lx / half_w)^2 + (ly / half_h)^2 <= 1`` (ellipse). Slots are painted in order, a later one over an earlier one.

A landmark is occluded when the output pixel it falls in (``floor(x + 0.5), floor(y + 0.5)``) lies inside the
image and is covered: exactly the landmarks whose pixel shows occluder fill. Landmarks keep their positions.
"""

from __future__ import annotations

import torch

from gpuaug.camera.counter_noise import hash_uniform, pixel_index
from gpuaug.camera.sample import OCC
from gpuaug.colour import GRAY_WEIGHTS
from gpuaug.config import OCCLUDER_FILLS
from gpuaug.device_constants import constant

#: Counter-noise stream of the "noise" fill (sensor noise uses others).
FILL_STREAM = 0


#: Columns of an occluder table (:func:`occluder_table`): what drawing an occluder reads, with the angle as its
#: cosine and sine and the fill colour as drawn.
TABLE_COLUMNS = ("active", "ellipse", "cx", "cy", "half_w", "half_h", "cos", "sin", "fill", "r", "g", "b")
TAB = {name: i for i, name in enumerate(TABLE_COLUMNS)}


def occluder_table(occluders: torch.Tensor, shared: torch.Tensor | None = None) -> torch.Tensor:
    """(B, M, 12) occluders (columns :data:`~gpuaug.camera.sample.OCCLUDER_COLUMNS`) -> (B, M, 12) float32 table
    (columns :data:`TABLE_COLUMNS`); the colour a grey sample shows (its luma, where ``shared`` (B,) bool) unless
    ``shared`` is None.

    Every path that draws or tests occluders (the torch ops, the landmarks' ``occluded``, the Triton render)
    reads this one table, so they decide coverage and colour from the same float32 numbers. The cosine and
    sine are taken in float64 and rounded: torch's float32 ``cos`` may differ by an ulp between its vector and
    scalar loops, i.e. with a sample's position in the batch, and the CPU chain runs an op on a subset of rows.
    """
    angle = occluders[..., OCC["angle"]].double()
    colour = occluders[..., OCC["r"]:OCC["b"] + 1]
    if shared is not None:
        colour = _as_grey(colour.transpose(1, 2), shared).transpose(1, 2)
    return torch.cat([occluders[..., :OCC["angle"]], angle.cos().float()[..., None], angle.sin().float()[..., None],
                      occluders[..., OCC["fill"], None], colour], -1)


def covers(table: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(..., 12) occluder table (:func:`occluder_table`), points x, y float32 output pixels (broadcasting against
    ``table[..., 0]``) -> bool of the broadcast shape: the point is inside the occluder (and the occluder
    active). Elementwise, so a compiled caller computes it where it is used, one slot at a time (a (B, M, S, S)
    bool mask stored and read back costs Inductor's CPU loops more than the arithmetic). The Triton render
    (:mod:`gpuaug.backends.triton_render`) repeats these float32 operations in this order."""
    col = {name: table[..., i] for name, i in TAB.items()}
    dx, dy = x - col["cx"], y - col["cy"]
    lx, ly = (dx * col["cos"] + dy * col["sin"]).abs(), (dy * col["cos"] - dx * col["sin"]).abs()
    rect = (lx <= col["half_w"]) & (ly <= col["half_h"])
    ellipse = (lx / col["half_w"]) ** 2 + (ly / col["half_h"]) ** 2 <= 1
    return (col["active"] > 0.5) & torch.where(col["ellipse"] > 0.5, ellipse, rect)


def landmark_pixels(points: torch.Tensor) -> torch.Tensor:
    """(B, K, 2) output-pixel points -> the centre of the pixel each falls in (pixel i spans [i - 0.5, i + 0.5))."""
    return torch.floor(points + 0.5)


def occluded(occluders: torch.Tensor, landmarks: torch.Tensor, out_size: int) -> torch.Tensor:
    """(B, M, 12) occluders, (B, K, 2) output landmarks -> (B, K) bool: the landmark's pixel is inside the image
    and covered by an occluder. Non-finite landmarks (invalid samples) are never occluded; with no slots (M = 0)
    all False."""
    pixel = landmark_pixels(landmarks)
    inside = ((pixel >= 0) & (pixel <= out_size - 1)).all(-1)
    hit = covers(occluder_table(occluders)[:, :, None], pixel[:, None, :, 0], pixel[:, None, :, 1]).any(1)
    return hit & inside


def _as_grey(fill: torch.Tensor, grey: torch.Tensor) -> torch.Tensor:
    """(B, 3, ...) fill -> its luma repeated where ``grey`` (B,) bool, so grey samples stay grey."""
    w = constant(GRAY_WEIGHTS, fill.device, fill.dtype).view(1, 3, *[1] * (fill.dim() - 2))
    luma = (fill * w).sum(1, keepdim=True)
    return torch.where(grey.view(-1, *[1] * (fill.dim() - 1)), luma.expand_as(fill), fill)


def draw_occluders(images: torch.Tensor, occluders: torch.Tensor, gray: torch.Tensor, seed: torch.Tensor,
                   fills: tuple[str, ...] = OCCLUDER_FILLS, batch: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, S, S) float32 [0, 1] -> the same with each active occluder painted over it.

    Fill by the slot's code (:data:`~gpuaug.config.OCCLUDER_FILLS`): "colour" its flat r, g, b; "noise" uniform
    per pixel from the sample's ``seed`` (counter noise, stream :data:`FILL_STREAM`); "texture" the pixels of the
    row ``source`` of ``batch`` (default ``images``: a caller drawing on some rows of a batch passes the whole
    batch) at the same place, before any occluder. Grey output (C = 1) and grey samples (``gray``
    (B,) bool) get the luma of a colour fill. ``fills``: the fills the params can name (the others are not
    computed).
    """
    b, c, h, w = images.shape
    slots = occluders.shape[1]
    if slots == 0:
        return images
    u = torch.arange(w, device=images.device, dtype=torch.float32).view(1, 1, 1, w)
    v = torch.arange(h, device=images.device, dtype=torch.float32).view(1, 1, h, 1)
    shared = gray | (c == 1)
    noise = images  # stands in where the params cannot name this fill
    if "noise" in fills:
        noise = hash_uniform(seed[:, None, None, None], pixel_index((b, c, h, w), shared, images.device),
                             FILL_STREAM)
    table = occluder_table(occluders, shared)
    out = images
    for m in range(slots):  # a handful of slots, fixed by the config: painted in order
        occ = occluders[:, m]
        colour = table[:, m, TAB["r"]:TAB["r"] + c, None, None]
        texture = images
        if "texture" in fills:
            texture = (images if batch is None else batch)[occ[:, OCC["source"]].long()]
            if c == 3:  # a grey sample shows a colour source in grey
                texture = _as_grey(texture, gray)
        code = occ[:, OCC["fill"], None, None, None]
        fill = torch.where(code == OCCLUDER_FILLS.index("colour"), colour,
                           torch.where(code == OCCLUDER_FILLS.index("noise"), noise, texture))
        out = torch.where(covers(table[:, m, None, None, None], u, v), fill, out)
    return out
