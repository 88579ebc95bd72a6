"""Shared fixtures: devices (CUDA when present), a small synthetic data set, batch builders."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from gpuaug.batch import FaceBatch, collate
from gpuaug.sample import FaceSample

# The CPU camera chain runs each op eagerly on its rows: compiling the ops for every config the tests build would
# cost CI minutes. tests/test_camera_step.py turns compiling on where it tests the compiled ops.
os.environ.setdefault("GPUAUG_COMPILE_CAMERA", "0")
from gpuaug.synth.face_model import project

#: Marks a test as needing CUDA: ``-m cuda`` selects it, and it skips cleanly without a device.
CUDA_ONLY = (pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_ONLY)]


def assert_same_output(a, b, skip: tuple[str, ...] = ()) -> None:
    """Every field of two AugmentedBatch results equal but params, targets and ``skip``: tensors exactly, ``has``
    kind by kind, None exactly where the other is None."""
    for f in fields(a):
        if f.name in ("params", "targets", *skip):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), f.name
        elif x is None or y is None:
            assert x is y, f.name
        else:
            assert torch.equal(x, y), f.name


def cuda_only(test):
    """Decorator form of :data:`CUDA_ONLY`."""
    for mark in CUDA_ONLY:
        test = mark(test)
    return test


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from gpuaug.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, videos=4, frames=3, seed=1)
    return out


def posed_samples(
    poses: torch.Tensor, sizes: list[tuple[int, int]], rng: np.random.Generator, images: np.ndarray | None = None
) -> list[FaceSample]:
    """Samples whose labels come from projecting the symmetric mean face with ``poses`` (B, 3) degrees;
    blank frames of the given (H, W) sizes (cycled) unless ``images`` are given."""
    b = poses.shape[0]
    hw = np.array([sizes[i % len(sizes)] for i in range(b)], dtype=np.float64)
    scale = torch.from_numpy(hw.min(1) * rng.uniform(0.002, 0.003, b))
    centre = torch.from_numpy(hw[:, ::-1] / 2 + rng.uniform(-10, 10, (b, 2)))
    lm3d = project(poses.double(), scale, centre).float().numpy()
    yaw, pitch = np.deg2rad(poses[:, 0].numpy()), np.deg2rad(poses[:, 1].numpy())
    gaze = np.stack([np.sin(yaw), -np.sin(pitch), np.cos(yaw)], 1).astype(np.float32) * rng.uniform(0.5, 2.0, (b, 1))
    out = []
    for i in range(b):
        h, w = (int(v) for v in hw[i])
        img = np.zeros((h, w, 3), np.uint8) if images is None else images[i]
        lo, hi = lm3d[i, :, :2].min(0), lm3d[i, :, :2].max(0)
        out.append(FaceSample(img, np.concatenate([lo, hi]).astype(np.float32), lm3d[i, :, :2].copy(), lm3d[i],
                              poses[i].numpy().astype(np.float32), gaze[i], (0, i)))
    return out


def random_poses(n: int, g: torch.Generator, yaw: float = 40, pitch: float = 25, roll: float = 30) -> torch.Tensor:
    return (torch.rand(n, 3, generator=g) * 2 - 1) * torch.tensor([yaw, pitch, roll])


@pytest.fixture
def face_batch() -> FaceBatch:
    """8 posed faces on noise frames of mixed sizes."""
    g, rng = torch.Generator().manual_seed(3), np.random.default_rng(3)
    sizes = [(120, 160), (150, 110)]
    images = [rng.integers(0, 256, (*sizes[i % 2], 3), dtype=np.uint8) for i in range(8)]
    return collate(posed_samples(random_poses(8, g), sizes, rng, images=images))
