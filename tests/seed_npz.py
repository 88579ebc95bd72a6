"""Small random seed-layout npz videos (frames last) for loader tests; labels valid unless spoiled."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def seed_arrays(frames: int = 4, size: tuple[int, int] = (24, 32), seed: int = 0,
                landmarks: int = 68) -> dict[str, np.ndarray]:
    """One video's seed fields: random pixels, a box inside the frame, ``landmarks`` points inside the box."""
    rng = np.random.default_rng(seed)
    h, w = size
    x0, y0 = rng.uniform(0, w / 4, frames), rng.uniform(0, h / 4, frames)
    x1, y1 = rng.uniform(w / 2, max(w / 2, w - 1), frames), rng.uniform(h / 2, max(h / 2, h - 1), frames)
    corners = np.stack([np.stack(c) for c in ((x0, y0), (x0, y1), (x1, y0), (x1, y1))])  # (4, 2, N)
    lm2d = np.stack([rng.uniform(x0, x1, (landmarks, frames)), rng.uniform(y0, y1, (landmarks, frames))], 1)
    gaze = rng.normal(size=(3, frames))
    return {
        "colorImages": rng.integers(0, 256, (h, w, 3, frames), dtype=np.uint8),
        "boundingBox": corners.astype(np.float32),
        "landmarks2D": lm2d.astype(np.float32),
        "landmarks3D": np.concatenate([lm2d, rng.uniform(-5, 5, (landmarks, 1, frames))], 1).astype(np.float32),
        "headPose": rng.uniform(-30, 30, (3, frames)).astype(np.float32),
        "gazeVector": (gaze / np.linalg.norm(gaze, axis=0)).astype(np.float32),
    }


def write_video(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Save ``arrays`` as an (uncompressed) npz at ``path``; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # a file object, so np.savez does not append ".npz" to odd names
        np.savez(f, **arrays)
    return path


def write_dataset(out: Path, sizes: list[tuple[int, int]], frames: int = 4, seed: int = 0) -> list[Path]:
    """One video per frame size; video ``i`` gets frame 1 an inf pose and frame 2 a degenerate box
    when ``i`` is odd, so every data set has counted skips."""
    paths = []
    for i, size in enumerate(sizes):
        arrays = seed_arrays(frames, size, seed + i)
        if i % 2 and frames > 2:
            arrays["headPose"][0, 1] = np.inf  # (a NaN is a missing pose, kept)
            arrays["boundingBox"][:, :, 2] = 5.0  # every corner the same point
        paths.append(write_video(out / f"v{i:03d}.npz", arrays))
    return paths
