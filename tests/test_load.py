"""Reading seed-layout npz files, the lazy frame dataset and collate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import cuda_only

from gpuaug import FaceFrames, collate, read_video
from gpuaug.load.video import SEED_FIELDS


def _seed_arrays(n: int, h: int = 24, w: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x0, y0 = rng.uniform(2, 8, n), rng.uniform(2, 8, n)
    x1, y1 = x0 + rng.uniform(5, 15, n), y0 + rng.uniform(5, 12, n)
    corners = np.stack([np.stack([x0, y0]), np.stack([x0, y1]), np.stack([x1, y0]), np.stack([x1, y1])])  # (4,2,N)
    return {
        "colorImages": rng.integers(0, 256, (h, w, 3, n), dtype=np.uint8),
        "boundingBox": corners,  # float64, as numpy writes it by default
        "landmarks2D": rng.uniform(0, 20, (68, 2, n)),
        "landmarks3D": rng.uniform(0, 20, (68, 3, n)).astype(np.float32),
        "headPose": rng.uniform(-30, 30, (3, n)),
        "gazeVector": rng.normal(size=(3, n)),
    }


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_round_trip_in_seed_layout(tmp_path, save):
    arrays = _seed_arrays(5)
    save(tmp_path / "v.npz", **arrays)
    v = read_video(tmp_path / "v.npz")
    assert set(SEED_FIELDS) == set(arrays)
    assert v.images.shape == (5, 24, 32, 3) and v.images.dtype == np.uint8
    for i in range(5):
        assert np.array_equal(v.images[i], arrays["colorImages"][..., i])
        c = arrays["boundingBox"][..., i]  # TL, BL, TR, BR
        np.testing.assert_allclose(v.bbox[i], [c[0, 0], c[0, 1], c[3, 0], c[3, 1]], rtol=1e-6)
        np.testing.assert_allclose(v.landmarks2d[i], arrays["landmarks2D"][..., i], rtol=1e-6)
        np.testing.assert_allclose(v.landmarks3d[i], arrays["landmarks3D"][..., i], rtol=1e-6)
        np.testing.assert_allclose(v.head_pose[i], arrays["headPose"][:, i], rtol=1e-6)
        np.testing.assert_allclose(v.gaze[i], arrays["gazeVector"][:, i], rtol=1e-6)
    assert all(a.dtype == np.float32 for a in (v.bbox, v.landmarks2d, v.landmarks3d, v.head_pose, v.gaze))


def test_frames_index_lazily_and_count_skips(tmp_path, monkeypatch, caplog):
    a = _seed_arrays(4, seed=1)
    a["headPose"][1, 2] = np.inf  # (a NaN is a missing pose: kept)
    a["boundingBox"][:, 0, 3] = 5.0  # zero-width box
    np.savez(tmp_path / "a.npz", **a)
    np.savez_compressed(tmp_path / "b.npz", **_seed_arrays(3, h=30, w=20, seed=2))
    (tmp_path / "notes.txt").write_text("not a video")
    read = []
    original = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda self, key: read.append(key) or original(self, key))
    frames = FaceFrames(tmp_path)
    assert read and "colorImages" not in read  # indexing decoded labels only, no pixels
    assert len(frames) == 5 and len(frames.skipped) == 2
    assert {(p.frame, p.kind) for p in frames.skipped} == {(2, "non-finite"), (3, "degenerate-bbox")}
    assert "5 of 7 frames usable" in frames.skip_report()
    assert "5 of 7 frames usable" in caplog.text  # said out loud, not only kept in an attribute
    assert [frames.locate(i) for i in range(5)] == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    sample = frames[3]
    assert sample.key == (1, 1) and sample.image.shape == (30, 20, 3)
    with pytest.raises(IndexError):
        frames[5]


def test_dataloader_with_workers_sees_every_frame_once(synth_dir):
    frames = FaceFrames(synth_dir)
    loader = torch.utils.data.DataLoader(frames, batch_size=5, shuffle=True, collate_fn=collate, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))
    keys = torch.cat([b.keys for b in loader])
    assert len(keys) == len(frames) == 12
    assert sorted(map(tuple, keys.tolist())) == [frames.locate(i) for i in range(12)]


def test_collate_pads_mixed_sizes_with_zeros(synth_dir):
    frames = FaceFrames(synth_dir)
    samples = [frames[i] for i in (0, 3, 6, 9)]
    batch = collate(samples)
    sizes = [s.image.shape[:2] for s in samples]
    assert batch.sizes.tolist() == [list(s) for s in sizes]
    assert batch.images.shape == (4, max(h for h, _ in sizes), max(w for _, w in sizes), 3)
    for i, (h, w) in enumerate(sizes):
        assert torch.equal(batch.images[i, :h, :w], torch.from_numpy(samples[i].image))
        assert batch.images[i, h:].sum() == 0 and batch.images[i, :, w:].sum() == 0
    assert batch.landmarks2d.dtype == torch.float32 and batch.landmarks2d.shape == (4, 68, 2)


@cuda_only
def test_pin_memory_and_non_blocking_copy(synth_dir):
    frames = FaceFrames(synth_dir)
    loader = torch.utils.data.DataLoader(frames, batch_size=4, collate_fn=collate, pin_memory=True)
    batch = next(iter(loader))
    assert batch.pixels.is_pinned() and batch.head_pose.is_pinned()
    on_gpu = batch.to("cuda", non_blocking=True)
    assert on_gpu.device.type == "cuda" and torch.equal(on_gpu.images.cpu(), batch.images)
