"""examples/train_multitask.py: a short run on tiny data writes finite metrics and its loss falls; the seed-label
arm's rules agree with the exact labels where the seed is exact."""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import posed_samples, random_poses

import gpuaug
from gpuaug.load.packed import pack
from gpuaug.synth import write_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_multitask.py"


@pytest.fixture(scope="module")
def example():
    """The example script as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("train_multitask", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    """One CPU thread (and ``--threads 1`` for a run): a tiny model on a busy CPU is much faster so; restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # also for the render kernel: it is compiled for a thread count
    yield ["--threads", "1"]
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("path", "packed"), [("resident", False), ("loader", False), ("loader", True)])
def test_short_run_writes_finite_metrics_and_loss_falls(example, one_thread, tmp_path: Path, path: str,
                                                        packed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resident frames, and read per batch: npz through a DataLoader, packed through StreamLoader."""
    data, out = tmp_path / "data", tmp_path / "run"
    write_dataset(data, videos=6, frames=8, seed=3)  # 5 videos train (40 frames), 1 validates
    if packed:
        pack(data, tmp_path / "packed", progress=False)
        data = tmp_path / "packed"
    streams, stream_loader = [], gpuaug.StreamLoader
    monkeypatch.setattr(gpuaug, "StreamLoader", lambda *a, **k: streams.append(k) or stream_loader(*a, **k))
    metrics = example.main(["--data", str(data), "--out", str(out), "--device", "cpu", "--epochs", "6",
                            "--batch", "8", "--size", "32", "--path", path, *one_thread])
    assert metrics["path"] == path and metrics["steps"] == 30
    assert bool(streams) == (path == "loader" and packed)  # packed batches come from StreamLoader's threads
    written = json.loads((out / "metrics.json").read_text())
    assert (out / "checkpoint.pt").stat().st_size > 0 and (out / "learning_curve.png").stat().st_size > 0
    for result in (written, written["mean_face"]):
        values = [v for split in ("plain", "rotated") for v in result[split].values()]
        values += [v for by_angle in result["by_angle"].values() for v in by_angle.values()]
        assert len(values) == 2 * 6 + 5 * 6 and all(math.isfinite(v) for v in values)
    losses = written["train_loss_steps"]
    assert all(math.isfinite(v) for v in losses)
    # Augmented batches differ from step to step, so compare means over the first and last epochs.
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_seed_label_rules(example, one_thread) -> None:
    """The seed's flip and gaze rules are exact, its ``roll += angle`` is exact at yaw = pitch = 0 only, its z
    misses the crop's zoom."""
    g, rng = torch.Generator().manual_seed(5), np.random.default_rng(5)
    poses = random_poses(32, g)
    poses[:16, :2] = 0  # the first half: roll only
    batch = gpuaug.collate(posed_samples(poses, [(200, 240)], rng))
    aug = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=32, max_rotation=30))  # the run test's kernel
    params = aug.sample_params(batch, g)
    params = replace(params, flip=torch.arange(32) % 2 == 1)  # flipped and not, with both pose kinds
    out = aug.apply(batch, params)
    seed = example.seed_label_rules(batch, out)
    assert torch.equal(seed.landmarks2d, out.landmarks2d) and torch.equal(seed.images, out.images)
    torch.testing.assert_close(seed.gaze, out.gaze, atol=1e-5, rtol=0)
    torch.testing.assert_close(seed.head_pose[:16], out.head_pose[:16], atol=1e-3, rtol=0)
    assert (seed.head_pose[16:] - out.head_pose[16:]).abs().amax() > 1  # degrees: the approximation shows
    zoom = out.matrix[:, :2, :2].det().abs().sqrt()[:, None]
    torch.testing.assert_close(seed.landmarks3d[..., 2] * zoom, out.landmarks3d[..., 2], atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("head", ["heatmap", "simcc"])
def test_target_heads_train_from_gpuaug_targets(example, one_thread, tmp_path: Path, head: str) -> None:
    """The heatmap and SimCC heads train on the step's targets: finite metrics, falling loss, the head recorded."""
    data, out = tmp_path / "data", tmp_path / "run"
    write_dataset(data, videos=6, frames=8, seed=3)
    metrics = example.main(["--data", str(data), "--out", str(out), "--device", "cpu", "--epochs", "6",
                            "--batch", "8", "--size", "32", "--head", head, *one_thread])
    assert metrics["head"] == head and torch.load(out / "checkpoint.pt")["head"] == head
    assert all(math.isfinite(v) for v in metrics["plain"].values())
    losses = metrics["train_loss_steps"]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_heads_decode_their_own_targets(example) -> None:
    """Each head's decoder applied to its target (a perfect prediction) gives back the landmarks: heatmaps to
    UDP's round trip, SimCC to half a bin (0.125 px), for points whose 3-sigma window lies in the crop (heatmaps:
    3 x 2 heatmap px = 12 output px from the border)."""
    g, rng = torch.Generator().manual_seed(1), np.random.default_rng(1)
    batch = gpuaug.collate(posed_samples(random_poses(8, g), [(200, 240)], rng))
    for kind in ("heatmap", "simcc"):
        head = example.LandmarkHead(kind, 64)
        out = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=64), targets=head.target())(batch, g)
        target = out.targets[kind]
        pred = {"heatmaps": target.heatmaps} if kind == "heatmap" else {"simcc_x": target.x, "simcc_y": target.y}
        inner = (target.weights > 0) & (out.landmarks2d > 12).all(-1) & (out.landmarks2d < 51).all(-1)
        assert inner.sum() > 150
        error = (head.decode(pred) - out.landmarks2d)[inner].abs().max()
        assert error < (0.01 if kind == "heatmap" else 0.125 + 1e-5), kind
