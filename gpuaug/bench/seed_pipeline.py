"""The seed's per-sample augmentation (jinac/head_multitask ``data_util.py``), re-created without torchvision.

Same order and ops, one sample at a time: ToTensor -> ColorJitter (four ops in random order, the hue shift
through HSV) -> Grayscale -> bbox crop (with a buffer) -> flip with landmark swap -> affine rotation + integer
shift (nearest, fill 0) -> resize. torchvision's tensor ops are replaced by the plain torch ops they run
(``grid_sample`` for the affine, antialiased bilinear ``interpolate`` for the resize). Two deliberate
changes so every contender does the same work: the jitter ranges come from :class:`AugmentConfig` (the
seed's ``ColorJitter()`` has all ranges 0, a no-op), and the resize goes to a fixed S x S (the seed draws a
random size in [0.7, 1] * 128 and pads, so its output is not always 128 x 128).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from gpuaug.bench.workload import Workload
from gpuaug.colour import GRAY_WEIGHTS
from gpuaug.config import AugmentConfig
from gpuaug.labels.flip_tables import resolve_flip_table


def _gray(img: torch.Tensor) -> torch.Tensor:
    """(3, H, W) -> (1, H, W) ITU-R 601 luma."""
    w = torch.tensor(GRAY_WEIGHTS, device=img.device)
    return torch.einsum("c,chw->hw", w, img)[None]


def _rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB [0, 1] -> (3, H, W) HSV, hue in turns."""
    r, g, b = img
    maxc, minc = img.max(0).values, img.min(0).values
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(maxc == r, (g - b) / safe, torch.where(maxc == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    hue = torch.where(delta > 0, hue / 6 % 1, torch.zeros_like(hue))
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack([hue, sat, maxc])


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """(3, H, W) HSV (hue in turns) -> (3, H, W) RGB."""
    h, s, v = hsv
    sector = torch.floor(h * 6)
    f = h * 6 - sector
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # For each of the six hue sectors, which of (v, t, p, q) is R, G and B.
    choices = torch.stack([v, t, p, q])
    table = torch.tensor([[0, 3, 2, 2, 1, 0], [1, 0, 0, 3, 2, 2], [2, 2, 1, 0, 0, 3]], device=hsv.device)
    pick = table[:, sector.long() % 6]  # (3, H, W) index into choices
    return torch.gather(choices, 0, pick)


def colour_jitter(img: torch.Tensor, config: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """torchvision ColorJitter semantics: factors drawn per sample, ops in random order, clamped each op."""
    def factor(v: float) -> float:
        return float(torch.empty(1).uniform_(max(0.0, 1 - v), 1 + v, generator=g))

    def brightness(x: torch.Tensor) -> torch.Tensor:
        return (x * factor(config.brightness)).clamp(0, 1)

    def contrast(x: torch.Tensor) -> torch.Tensor:
        f = factor(config.contrast)
        return (f * x + (1 - f) * _gray(x).mean()).clamp(0, 1)

    def saturation(x: torch.Tensor) -> torch.Tensor:
        f = factor(config.saturation)
        return (f * x + (1 - f) * _gray(x)).clamp(0, 1)

    def hue(x: torch.Tensor) -> torch.Tensor:
        hsv = _rgb_to_hsv(x)
        shift = float(torch.empty(1).uniform_(-config.hue, config.hue, generator=g))
        return _hsv_to_rgb(torch.stack([(hsv[0] + shift) % 1, hsv[1], hsv[2]]))

    ops = (brightness, contrast, saturation, hue)
    for i in torch.randperm(4, generator=g).tolist():
        img = ops[i](img)
    return img


def _affine_nearest(img: torch.Tensor, inverse: np.ndarray) -> torch.Tensor:
    """(C, H, W), (2, 3) output -> input pixel map (centres at integers) -> warped (C, H, W), nearest, fill 0."""
    _, h, w = img.shape
    # grid_sample's normalised coords (align_corners=False): n = (2 * p + 1) / size - 1.
    to_norm = np.array([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]])
    from_norm = np.linalg.inv(to_norm)
    theta = (to_norm @ np.vstack([inverse, [0, 0, 1]]) @ from_norm)[:2]
    theta_t = torch.tensor(theta, dtype=torch.float32, device=img.device)[None]
    grid = F.affine_grid(theta_t, [1, *img.shape], align_corners=False)
    return F.grid_sample(img[None], grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]


def augment_sample(
    frame: np.ndarray, labels: dict[str, np.ndarray], config: AugmentConfig, table: np.ndarray,
    g: torch.Generator, device: torch.device,
) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """One frame (H, W, 3) uint8 and its labels -> (C, S, S) float [0, 1] (C = 1 when grey) and output-space
    labels."""
    lab = {k: v.copy() for k, v in labels.items()}
    img = torch.from_numpy(frame).to(device).permute(2, 0, 1).float().div(255)  # ToTensor
    img = colour_jitter(img, config, g)
    if float(torch.rand(1, generator=g)) < config.grayscale_p:
        img = _gray(img)
    # Bbox crop: the box grown by a buffer of up to crop_margin of the room left around it.
    x0, y0, x1, y1 = lab["bbox"].astype(int)
    h, w = img.shape[1:]
    room = min(x0, y0, w - 1 - x1, h - 1 - y1) // 2
    buf = int(float(torch.empty(1).uniform_(*config.crop_margin, generator=g)) * max(room, 0))
    x0, y0, x1, y1 = x0 - buf, y0 - buf, x1 + buf, y1 + buf
    img = img[:, y0:y1, x0:x1]
    shift = np.array([x0, y0], dtype=np.float32)
    lab["landmarks2d"] -= shift
    lab["landmarks3d"][:, :2] -= shift
    h, w = img.shape[1:]
    if float(torch.rand(1, generator=g)) < config.flip_p:  # flip, swapping left/right landmarks
        img = img.flip(-1)
        for k in ("landmarks2d", "landmarks3d"):
            lab[k][:, 0] = w - 1 - lab[k][:, 0]
            lab[k] = lab[k][table]
        lab["head_pose"][[0, 2]] *= -1
        lab["gaze"][0] *= -1
    # Affine: rotation about the centre and an integer shift of up to max_shift of the side.
    angle = float(torch.empty(1).uniform_(-config.max_rotation, config.max_rotation, generator=g))
    t = [round(float(torch.empty(1).uniform_(-config.max_shift * s, config.max_shift * s, generator=g)))
         for s in (w, h)]
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    forward = np.hstack([rot, (centre - rot @ centre + t)[:, None]])  # input -> output pixels
    inverse = np.hstack([rot.T, (-rot.T @ forward[:, 2])[:, None]])
    img = _affine_nearest(img, inverse)
    for k in ("landmarks2d", "landmarks3d"):
        lab[k][:, :2] = lab[k][:, :2] @ forward[:, :2].T + forward[:, 2]
    lab["head_pose"][2] += angle
    lab["gaze"][:2] = rot.T @ lab["gaze"][:2]  # gaze y points up: clockwise is rot.T there
    # Resize to S x S (antialiased bilinear, as torchvision's tensor resize).
    s = config.out_size
    img = F.interpolate(img[None], size=(s, s), mode="bilinear", antialias=True, align_corners=False)[0]
    scale = np.array([s / w, s / h], dtype=np.float32)
    for k in ("landmarks2d", "landmarks3d"):
        lab[k][:, :2] = (lab[k][:, :2] + 0.5) * scale - 0.5
    return img, lab


def seed_step(work: Workload, device: torch.device, seed: int = 0):
    """A callable augmenting the whole workload one sample at a time (the seed's per-sample loop)."""
    table = resolve_flip_table(work.config.flip_table).numpy()
    g = torch.Generator().manual_seed(seed)
    names = ("bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze")

    def step() -> list[torch.Tensor]:
        return [augment_sample(work.frames[i], {k: getattr(work, k)[i] for k in names}, work.config, table,
                               g, device)[0] for i in range(len(work))]

    return step
