"""What drives a clip's matrices: per-frame params drawn once per clip (optionally drifting), and the crop box
the whole clip shares.

Frames are clip-major throughout: B clips of T frames are B * T rows, clip 0's T frames first.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Literal, get_args

import torch

from gpuaug.camera.sample import OCC, draw_seeds, uses_noise
from gpuaug.config import AugmentConfig
from gpuaug.params import AugmentParams, sample_params

#: How a clip is framed: "mean" one square around the clip's mean box centre and mean box size; "union" one
#: square around the union of its boxes; "frame" each frame around its own box (the frame path's crop).
CropMode = Literal["mean", "union", "frame"]
CROP_MODES: tuple[str, ...] = get_args(CropMode)
#: The params that move in drift mode (the virtual camera); flip, colour and grey stay per clip.
DRIFTING = ("margin", "shift", "angle", "scale")


def check_drift(drift: float) -> None:
    """ValueError unless ``drift`` is in [0, 1]."""
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be in [0, 1], got {drift}")


def check_crop(crop: str) -> None:
    """ValueError unless ``crop`` is a :data:`CropMode`."""
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")


def sample_clip_params(
    config: AugmentConfig,
    clips: int,
    length: int,
    generator: torch.Generator | None = None,
    train: bool = True,
    drift: float = 0.0,
) -> AugmentParams:
    """(clips * length) per-frame params, clip-major, on the CPU from ``generator``.

    One :func:`~gpuaug.params.sample_params` draw per clip, repeated over its T frames. With ``drift`` in
    (0, 1] a second draw follows and margin, shift, angle and scale move linearly across the clip: frame t of
    T gets ``a + drift * t / (T - 1) * (b - a)`` (a the first draw, b the second), a slow pan / zoom / roll of
    the virtual camera that stays inside the config's ranges. The config's ``rotation_p`` and ``shift_p`` gate
    each of the two draws, so a drifting clip may roll from 0 to a drawn angle: more frames than ``rotation_p``
    of them turn at all. ``train=False``: the deterministic eval framing
    (both draws equal, so nothing drifts).

    Camera ops are drawn once per clip too: occluders held in place in the output (with drift, their centres
    move like the camera params), the same blur, motion direction, resolution and JPEG quality on every frame; a
    "texture" occluder shows the same frame of another clip. Only the noise seed is drawn anew for every frame
    (after the clip draws), so noise changes each frame.
    """
    check_drift(drift)
    first = sample_params(config, clips, generator, train)
    frames = replace(first, **{f.name: getattr(first, f.name).repeat_interleave(length, 0) for f in fields(first)})
    frames = _per_frame_camera(frames, config, length, generator, train)
    if not drift:
        return frames
    second = sample_params(config, clips, generator, train)
    t = (torch.arange(length, dtype=torch.float32) / max(length - 1, 1)).repeat(clips) * drift
    moved = {}
    for name in DRIFTING:
        a, b = getattr(frames, name), getattr(second, name).repeat_interleave(length, 0)
        moved[name] = a + (b - a) * t.view(-1, *[1] * (a.dim() - 1))
    # Occluders move too: each centre toward the second draw's centre of the same slot (shape, size, fill kept).
    occluders = frames.occluders.clone()
    centre = slice(OCC["cx"], OCC["cy"] + 1)
    a, b = occluders[..., centre], second.occluders[..., centre].repeat_interleave(length, 0)
    occluders[..., centre] = a + (b - a) * t[:, None, None]
    return replace(frames, occluders=occluders, **moved)


def _per_frame_camera(frames: AugmentParams, config: AugmentConfig, length: int, generator: torch.Generator | None,
                      train: bool) -> AugmentParams:
    """Clip-repeated params -> texture sources pointing at frame rows (the same frame t of the source clip),
    and one noise seed per frame (drawn only where the config uses noise)."""
    occluders = frames.occluders.clone()
    t = (torch.arange(frames.occluders.shape[0]) % length).float()[:, None]
    occluders[..., OCC["source"]] = occluders[..., OCC["source"]] * length + t
    seeds = draw_seeds(len(frames), generator) if train and uses_noise(config) else frames.noise_seed
    return replace(frames, occluders=occluders, noise_seed=seeds)


def clip_boxes(bbox: torch.Tensor, length: int, crop: CropMode = "mean") -> torch.Tensor:
    """(B * T, 4) [x0, y0, x1, y1] frame crop boxes (:func:`~gpuaug.crop.crop_boxes`) -> (B * T, 4) the box each
    frame is cropped around (``crop``: see
    :data:`CropMode`); "mean" and "union" give every frame of a clip the same box, so the face's own motion
    inside the clip survives the crop. A clip with a non-finite box gets a non-finite clip box (its frames come
    out invalid)."""
    check_crop(crop)
    if crop == "frame":
        return bbox
    boxes = bbox.view(-1, length, 4)
    if crop == "union":
        clip = torch.cat([boxes[..., :2].amin(1), boxes[..., 2:].amax(1)], -1)
    else:
        centre, size = (boxes[..., :2] + boxes[..., 2:]).mean(1) / 2, (boxes[..., 2:] - boxes[..., :2]).mean(1)
        clip = torch.cat([centre - size / 2, centre + size / 2], -1)
    return clip.repeat_interleave(length, 0)
