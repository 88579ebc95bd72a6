"""Write synthetic face videos as npz files (frames last, the face multitask data set's layout), labels exact
by construction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gpuaug.synth.face_model import INTEROCULAR, mean_face, project
from gpuaug.synth.render import draw_face, textured_background

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((240, 320), (200, 200), (180, 240), (256, 192))


def gaze_from_pose(head_pose: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """(N, 3) head pose degrees, (N, 2) eye-in-head yaw/pitch degrees -> (N, 3) unit gaze
    [x right, y up, z toward camera]: the head's forward direction turned by the eyes' own angles."""
    yaw, pitch = np.deg2rad(head_pose[:, 0] + eyes[:, 0]), np.deg2rad(head_pose[:, 1] + eyes[:, 1])
    # Forward of Ry(-yaw) Rx(pitch) in camera coords is (sin yaw cos pitch, sin pitch, -cos yaw cos pitch).
    return np.stack([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)], 1)


def synth_video(frames: int, size: tuple[int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One video's arrays (npz layout, frames last): a face turning, looking around and drifting across the frame, all
    smoothly (sinusoids over the video, so consecutive frames make a clip), over a fixed textured background."""
    h, w = size
    t = np.linspace(0, 1, frames)[:, None]
    amp, phase = np.array([35.0, 15.0, 15.0]), rng.uniform(0, 2 * np.pi, 3)
    pose = (amp * np.sin(2 * np.pi * t * rng.uniform(0.3, 1.0) + phase)).astype(np.float64)
    eyes = 15 * np.sin(2 * np.pi * t * rng.uniform(0.5, 1.5, 2) + rng.uniform(0, 2 * np.pi, 2))
    gaze = gaze_from_pose(pose, eyes)
    iod = float(np.linalg.norm(np.subtract(*mean_face()[list(INTEROCULAR)])))
    scale = np.full(frames, rng.uniform(0.18, 0.26) * min(h, w) / iod)
    drift = 0.08 * np.sin(2 * np.pi * t * rng.uniform(0.3, 0.8, 2) + rng.uniform(0, 2 * np.pi, 2))
    centre = np.array([w, h]) / 2 + drift * np.array([w, h])
    lm3d = project(torch.from_numpy(pose), torch.from_numpy(scale), torch.from_numpy(centre)).numpy()
    # The face's forehead reaches past the brows, so the box takes a margin above them.
    lo, hi = lm3d[..., :2].min(1), lm3d[..., :2].max(1)
    lo[:, 1] -= 0.25 * (hi[:, 1] - lo[:, 1])
    corners = np.stack([lo, np.stack([lo[:, 0], hi[:, 1]], 1), np.stack([hi[:, 0], lo[:, 1]], 1), hi], 1)
    background = textured_background(h, w, rng)
    skin = tuple(int(c) for c in rng.integers([170, 120, 90], [240, 190, 160]))
    images = np.empty((frames, h, w, 3), dtype=np.uint8)
    for i in range(frames):
        img = background.copy()
        draw_face(img, lm3d[i, :, :2], gaze[i], skin)
        images[i] = np.asarray(img)
    return {
        "colorImages": np.moveaxis(images, 0, -1),
        "boundingBox": np.moveaxis(corners, 0, -1).astype(np.float32),
        "landmarks2D": np.moveaxis(lm3d[..., :2], 0, -1).astype(np.float32),
        "landmarks3D": np.moveaxis(lm3d, 0, -1).astype(np.float32),
        "headPose": pose.T.astype(np.float32),
        "gazeVector": gaze.T.astype(np.float32),
    }


def write_dataset(
    out_dir: str | Path,
    videos: int = 6,
    frames: int = 8,
    seed: int = 0,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    compressed: bool = True,
    progress: bool = False,
) -> list[Path]:
    """Write ``videos`` npz files of ``frames`` frames each, frame sizes cycling through ``sizes``.

    Returns the written paths (``video_000.npz``, ...). Same seed -> same bytes of array data. Any seed
    ``torch.Generator.manual_seed`` takes; a negative one counts as its two's complement, as there.

    Args:
        out_dir: the folder to write into (made if missing).
        videos: number of videos.
        frames: frames per video.
        seed: the data's seed.
        sizes: (H, W) frame sizes, one per video in turn.
        compressed: ``np.savez_compressed`` rather than ``np.savez``.
        progress: a progress bar.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed % 2**64)  # numpy takes no negative seed
    save = np.savez_compressed if compressed else np.savez
    steps = range(videos)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="writing videos", unit="video")
    paths = []
    for v in steps:
        path = out / f"video_{v:03d}.npz"
        save(path, **synth_video(frames, tuple(sizes[v % len(sizes)]), rng))
        paths.append(path)
    return paths


def to_png(image: np.ndarray, path: str | Path) -> None:
    """Save an (H, W, 3) uint8 frame."""
    Image.fromarray(image).save(path)
