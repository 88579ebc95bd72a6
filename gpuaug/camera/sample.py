"""Drawing the camera ops' params on the CPU from the caller's generator (see :class:`~gpuaug.params.AugmentParams`).

Only the ops a config turns on draw anything, in a fixed order after the geometry and colour draws, so a config
with every op off draws exactly what it drew before the ops existed.
"""

from __future__ import annotations

import math

import torch

from gpuaug.config import OCCLUDER_FILLS, AugmentConfig
from gpuaug.errors import BatchError

#: Columns of one occluder in ``AugmentParams.occluders`` (B, slots, len(OCCLUDER_COLUMNS)) float32: active
#: (0/1), ellipse (0/1, else rectangle), centre x and y (output pixels), half width and half height (output
#: pixels, before rotation), angle (radians, from +x toward +y: clockwise on screen), fill (index into
#: :data:`~gpuaug.config.OCCLUDER_FILLS`), flat colour r, g, b in [0, 1], source (the batch row whose pixels a
#: "texture" fill shows).
OCCLUDER_COLUMNS = ("active", "ellipse", "cx", "cy", "half_w", "half_h", "angle", "fill", "r", "g", "b", "source")
OCC = {name: i for i, name in enumerate(OCCLUDER_COLUMNS)}
#: Per-sample camera fields (B,) float32 with the value that leaves the image as it is.
CAMERA_IDENTITY = {"gamma": 1.0, "blur_sigma": 0.0, "motion_length": 0.0, "motion_angle": 0.0, "low_res": 1.0,
                   "noise_std": 0.0, "shot_noise": 0.0, "jpeg_quality": 0.0, "noise_seed": 0.0}
#: Noise seeds are whole numbers below 2^24, exact in the float32 packed params.
SEED_LIMIT = 2**24


def _uniform(lo: float, hi: float, shape: tuple[int, ...], g: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def _gated(p: float, value: torch.Tensor, off: float, g: torch.Generator | None) -> torch.Tensor:
    """``value`` where a draw falls under ``p``, else ``off`` (the op's identity)."""
    return torch.where(torch.rand(value.shape, generator=g) < p, value, torch.full_like(value, off))


def identity_camera(n: int, slots: int = 0) -> dict[str, torch.Tensor]:
    """Every camera field for ``n`` samples at its identity; ``slots`` inactive occluders each."""
    out = {name: torch.full((n,), value) for name, value in CAMERA_IDENTITY.items()}
    return {**out, "occluders": torch.zeros(n, slots, len(OCCLUDER_COLUMNS))}


def sample_occluders(config: AugmentConfig, n: int, g: torch.Generator | None) -> torch.Tensor:
    """(n, occluder_max, 12) occluders (columns :data:`OCCLUDER_COLUMNS`): with ``occluder_p`` a sample gets
    1..occluder_max of them (uniform count), each centred anywhere in the output square."""
    m, side = config.occluder_max, config.out_size
    count = torch.where(torch.rand(n, generator=g) < config.occluder_p,
                        torch.randint(1, m + 1, (n,), generator=g), 0)
    occ = torch.zeros(n, m, len(OCCLUDER_COLUMNS))
    occ[..., OCC["active"]] = (torch.arange(m)[None] < count[:, None]).float()
    occ[..., OCC["ellipse"]] = (torch.rand(n, m, generator=g) < config.occluder_ellipse_p).float()
    occ[..., OCC["cx"]:OCC["cy"] + 1] = _uniform(-0.5, side - 0.5, (n, m, 2), g)
    occ[..., OCC["half_w"]:OCC["half_h"] + 1] = _uniform(*config.occluder_size, (n, m, 2), g) * (side / 2)
    occ[..., OCC["angle"]] = _uniform(0.0, math.pi, (n, m), g)
    codes = torch.tensor([OCCLUDER_FILLS.index(f) for f in config.occluder_fill], dtype=torch.float32)
    occ[..., OCC["fill"]] = codes[torch.randint(len(codes), (n, m), generator=g)]
    occ[..., OCC["r"]:OCC["b"] + 1] = torch.rand(n, m, 3, generator=g)
    # Another row of the batch (itself only in a batch of one).
    offset = torch.randint(1, n, (n, m), generator=g) if n > 1 else torch.zeros(n, m, dtype=torch.int64)
    occ[..., OCC["source"]] = ((torch.arange(n)[:, None] + offset) % max(n, 1)).float()
    return occ


def sources_of_rows(occluders: torch.Tensor, start: int, stop: int, length: int = 1) -> torch.Tensor:
    """(n, slots, 12) occluders drawn for n rows -> (stop - start, slots, 12): rows ``start .. stop - 1`` as the
    occluders of a batch of their own, each "texture" source re-numbered into that batch.

    Rows are items of ``length`` frames (clips: clip-major, ``start`` and ``stop`` on clip boundaries; frames:
    1). A source names item ``s`` at frame ``t`` of it; for the row of item ``i`` (of the n / length drawn) it
    is the item ``d = (s - i) mod N`` ahead (N items drawn, d in 1 .. N - 1). In a slice of ``m`` items the row
    at local item ``r`` then shows the item ``(r + 1 + (d - 1) mod (m - 1)) mod m`` ahead at the same frame t:
    still another item of its batch (itself only in a batch of one, as :func:`sample_occluders` draws there),
    and the whole range re-numbers to itself.
    """
    out = occluders[start:stop].clone()
    total, items = len(occluders) // length, (stop - start) // length
    source = out[..., OCC["source"]].long()
    item = torch.arange(start // length, stop // length).repeat_interleave(length)[:, None]
    ahead = (source // length - item) % max(total, 1)
    local = item - start // length
    moved = (local + 1 + (ahead - 1) % max(items - 1, 1)) % items if items > 1 else torch.zeros_like(local)
    out[..., OCC["source"]] = (moved * length + source % length).float()
    return out


def check_sources(occluders: torch.Tensor, batch_size: int) -> None:
    """BatchError unless every "texture" source of (B, slots, 12) CPU ``occluders`` is a row of a batch of
    ``batch_size``: out of range the gather would raise deep inside, or abort the process in compiled code. Params
    on a device are not read (that would wait for it), nor inside a caller's compiled graph (a data-dependent
    raise would break it)."""
    source = occluders[..., OCC["source"]]
    if source.device.type != "cpu" or not source.numel() or torch.compiler.is_compiling():
        return
    bad = (source < 0) | (source > batch_size - 1)
    if bad.any():
        row = int(bad.any(1).nonzero()[0, 0])
        raise BatchError("params.occluders", f"row {row} has a texture source {int(source[bad][0])} outside the "
                                             f"batch's rows 0..{batch_size - 1}: slice params with params.rows(start, "
                                             "stop), which re-numbers the sources")


def sample_camera(config: AugmentConfig, n: int, g: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Every camera field for ``n`` samples, drawn from ``g`` for the ops ``config`` turns on (the others at
    their identity, with no draw)."""
    c, out = config, identity_camera(n, config.occluder_slots)
    if c.gamma_p > 0:
        lo, hi = math.log(c.gamma[0]), math.log(c.gamma[1])
        out["gamma"] = _gated(c.gamma_p, _uniform(lo, hi, (n,), g).exp(), 1.0, g)
    if c.occluder_p > 0:
        out["occluders"] = sample_occluders(c, n, g)
    if c.blur_p > 0:
        out["blur_sigma"] = _gated(c.blur_p, _uniform(*c.blur_sigma, (n,), g), 0.0, g)
    if c.motion_blur_p > 0:
        out["motion_length"] = _gated(c.motion_blur_p, _uniform(*c.motion_blur_length, (n,), g), 0.0, g)
        out["motion_angle"] = _uniform(0.0, 180.0, (n,), g)
    if c.low_res_p > 0:
        out["low_res"] = _gated(c.low_res_p, _uniform(*c.low_res, (n,), g), 1.0, g)
    if c.noise_p > 0:
        out["noise_std"] = _gated(c.noise_p, _uniform(*c.noise_std, (n,), g), 0.0, g)
    if c.shot_noise_p > 0:
        out["shot_noise"] = _gated(c.shot_noise_p, _uniform(*c.shot_noise, (n,), g), 0.0, g)
    if c.jpeg_p > 0:
        lo, hi = (int(q) for q in c.jpeg_quality)
        out["jpeg_quality"] = _gated(c.jpeg_p, torch.randint(lo, hi + 1, (n,), generator=g).float(), 0.0, g)
    if uses_noise(c):
        out["noise_seed"] = draw_seeds(n, g)
    return out


def uses_noise(config: AugmentConfig) -> bool:
    """Whether ``config`` needs per-sample noise seeds (sensor noise or noise-filled occluders)."""
    return config.noise_p > 0 or config.shot_noise_p > 0 or (config.occluder_p > 0 and "noise" in config.occluder_fill)


def draw_seeds(n: int, g: torch.Generator | None) -> torch.Tensor:
    """(n,) float32 whole-number noise seeds in [0, 2^24)."""
    return torch.randint(0, SEED_LIMIT, (n,), generator=g).float()
