"""Render test cases shared by the warp parity tests: smooth frames of mixed sizes and sampled params."""

from __future__ import annotations

import torch

from gpuaug import AugmentConfig, FaceAugment, FaceBatch

SIZES = ((48, 64), (40, 64), (48, 37), (23, 30))  # true (H, W) of each frame; padded to (48, 64)
OUT = 32


def smooth_batch(seed: int, padding_value: int = 0) -> FaceBatch:
    """Frames of mixed sizes with smooth content (so bilinear rounding is small), padded with a value."""
    g = torch.Generator().manual_seed(seed)
    n, (hmax, wmax) = len(SIZES), (max(s[0] for s in SIZES), max(s[1] for s in SIZES))
    coarse = torch.rand(n, 3, hmax // 4, wmax // 4, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(hmax, wmax), mode="bilinear")
    images = (smooth * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    boxes = []
    for i, (h, w) in enumerate(SIZES):
        images[i, h:], images[i, :, w:] = padding_value, padding_value
        boxes.append([w * 0.25, h * 0.2, w * 0.75, h * 0.8])
    bbox = torch.tensor(boxes)
    lm = bbox[:, None, :2] + torch.rand(n, 68, 2, generator=g) * (bbox[:, None, 2:] - bbox[:, None, :2])
    return FaceBatch.from_padded(
        images,
        sizes=torch.tensor(SIZES),
        bbox=bbox,
        landmarks2d=lm,
        landmarks3d=torch.cat([lm, torch.rand(n, 68, 1, generator=g)], -1),
        head_pose=torch.zeros(n, 3),
        gaze=torch.tensor([[0.0, 0.0, 1.0]]).repeat(n, 1),
        keys=torch.zeros(n, 2, dtype=torch.int64),
    )


def render_args(batch: FaceBatch, grayscale_p: float, seed: int, **output: object) -> tuple:
    """Render arguments for sampled params; a wide margin and shift push parts of the crop off-frame."""
    config = AugmentConfig(out_size=OUT, grayscale_p=grayscale_p, crop_margin=(0.3, 0.8), max_shift=0.4,
                           max_rotation=40, **output)
    aug = FaceAugment(config)
    params = aug.sample_params(batch, torch.Generator().manual_seed(seed))
    return batch, aug.matrix(batch, params), params, config
