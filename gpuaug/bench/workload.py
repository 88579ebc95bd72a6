"""The benchmark's input: one batch of synthetic face frames with labels, shared by every contender."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpuaug.batch import FaceBatch
from gpuaug.config import AugmentConfig
from gpuaug.synth.write import synth_video


@dataclass
class Workload:
    """One batch, frame-first numpy (per-sample contenders) and as a :class:`FaceBatch` (batched ones).

    frames (B, H, W, 3) uint8 RGB; bbox (B, 4) float32 [x0, y0, x1, y1]; landmarks2d (B, 68, 2) and
    landmarks3d (B, 68, 3) float32 pixels; head_pose (B, 3) degrees; gaze (B, 3). ``config`` holds the
    jitter ranges every contender draws from, so they all do the same work.
    """

    frames: np.ndarray
    bbox: np.ndarray
    landmarks2d: np.ndarray
    landmarks3d: np.ndarray
    head_pose: np.ndarray
    gaze: np.ndarray
    batch: FaceBatch
    config: AugmentConfig

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def make_workload(
    batch_size: int, height: int, width: int, out_size: int, seed: int = 0, grayscale_p: float = 1.0,
    out_dtype: str = "float32",
) -> Workload:
    """``batch_size`` frames of one synthetic video (a moving face on a textured background); the jitter
    ranges are gpuaug's defaults, grey output with probability ``grayscale_p``, gpuaug's output in
    ``out_dtype``."""
    arrays = {k: np.moveaxis(v, -1, 0) for k, v in synth_video(batch_size, (height, width),
                                                                 np.random.default_rng(seed)).items()}
    corners = arrays["boundingBox"]  # (B, 4, 2) TL, BL, TR, BR
    bbox = np.concatenate([corners[:, 0], corners[:, 3]], axis=1).astype(np.float32)
    frames = np.ascontiguousarray(arrays["colorImages"])
    labels = {k: np.ascontiguousarray(arrays[f], dtype=np.float32) for k, f in
              (("landmarks2d", "landmarks2D"), ("landmarks3d", "landmarks3D"), ("head_pose", "headPose"),
               ("gaze", "gazeVector"))}
    batch = FaceBatch.from_padded(
        torch.from_numpy(frames),
        sizes=torch.tensor([[height, width]] * batch_size),
        bbox=torch.from_numpy(bbox),
        keys=torch.stack([torch.zeros(batch_size, dtype=torch.int64), torch.arange(batch_size)], 1),
        **{k: torch.from_numpy(v) for k, v in labels.items()},
    )
    config = AugmentConfig(out_size=out_size, grayscale_p=grayscale_p, out_dtype=out_dtype)
    return Workload(frames=frames, bbox=bbox, batch=batch, config=config, **labels)
