"""Video clips: windows never cross a gap or a video, clip params and crops, exact labels on every frame."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import posed_samples, random_poses
from seed_npz import seed_arrays, write_video
from test_labels import NO_COLOUR, TABLE, _dot_frames, _reprojection_error
from test_ragged import assert_same_batch
from torch.utils.data import DataLoader, DistributedSampler

from gpuaug import AugmentConfig, ClipAugment, FaceAugment, FaceClips, FaceFrames, ResidentClips, collate
from gpuaug.clip_params import sample_clip_params
from gpuaug.labels.matrix import apply_points, decompose
from gpuaug.load.packed import pack
from gpuaug.params import AugmentParams, sample_params

WORLD = 3


def _gap_videos(root: Path) -> None:
    """Video 0: 10 frames, frame 4 skipped (an inf pose); video 1: 6 frames; video 2: 2 frames."""
    spoiled = seed_arrays(10, seed=0)
    spoiled["headPose"][0, 4] = np.inf  # (a NaN pose is a missing pose: the frame is kept)
    write_video(root / "v0.npz", spoiled)
    write_video(root / "v1.npz", seed_arrays(6, size=(20, 24), seed=1))
    write_video(root / "v2.npz", seed_arrays(2, seed=2))


@pytest.fixture(scope="module")
def gap_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[FaceFrames, FaceFrames]:
    """The gap videos as (npz, packed) data sets."""
    root = tmp_path_factory.mktemp("clips")
    _gap_videos(root / "npz")
    pack(root / "npz", root / "packed", progress=False)
    return FaceFrames(root / "npz"), FaceFrames(root / "packed")


def _clip_keys(clips: FaceClips) -> list[list[tuple[int, int]]]:
    return [[clips.frames.locate(int(i)) for i in window] for window in clips.windows.indices]


# Hand-listed windows of the gap videos: (video, first frame) and step; video 2 is shorter than every span.
EXPECTED = {
    (3, 1): [(0, 0), (0, 1), (0, 5), (0, 6), (0, 7), (1, 0), (1, 1), (1, 2), (1, 3)],  # frame 4 cuts 0-2 | 5-9
    (3, 2): [(0, 1), (0, 3), (0, 5), (1, 0), (1, 1)],  # 0, 2, 4 and 2, 4, 6 and 4, 6, 8 need frame 4
}


@pytest.mark.parametrize("kind", [0, 1], ids=["npz", "packed"])
@pytest.mark.parametrize(("length", "step"), list(EXPECTED))
def test_windows_never_cross_a_gap_or_a_video(gap_sets, kind: int, length: int, step: int) -> None:
    clips = FaceClips(gap_sets[kind], length, step)
    expected = [[(v, f + step * t) for t in range(length)] for v, f in EXPECTED[length, step]]
    assert _clip_keys(clips) == expected
    possible = {1: 8 + 4, 2: 6 + 2}[step]  # windows with no frame skipped: 10 - span + 1, 6 - span + 1, 0
    assert (clips.windows.possible, clips.windows.lost) == (possible, possible - len(expected))
    assert f"{len(expected)} clips of T=3 frames at step s={step}" in clips.skip_report()
    assert f"{possible - len(expected)} of {possible} windows lost to skipped frames" in clips.skip_report()
    batch = clips.batch([len(clips) - 1, 0])  # clip-major: the last clip's frames, then the first's
    assert batch.keys.tolist() == [list(k) for k in expected[-1] + expected[0]]


def test_bad_clip_arguments_raise_naming_them(gap_sets) -> None:
    frames = gap_sets[0]
    for length, step, words in [(0, 1, "T=0"), (3, 0, "s=0"), (4, 4, "spans 13 source frames, longer than every"),
                                (10, 1, "skipped frames break all 1 windows")]:
        with pytest.raises(ValueError, match=words):
            FaceClips(frames, length, step)
    aug = FaceAugment()
    for kwargs, words in [({"length": 0}, "T=0"), ({"length": 2, "drift": 1.5}, "drift"),
                          ({"length": 2, "crop": "box"}, "crop")]:
        with pytest.raises(ValueError, match=words):
            ClipAugment(aug, **kwargs)
    with pytest.raises(ValueError, match="got 9 frames for clips of T=2"):
        ClipAugment(aug, 2)(FaceClips(frames, 3).batch([0, 1, 2]))


def test_dataloader_with_workers_gives_clip_major_batches(gap_sets) -> None:
    clips = FaceClips(gap_sets[1], 3, 2)
    loader = DataLoader(clips, batch_size=2, shuffle=True, collate_fn=collate, num_workers=2,
                        generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert [len(b) for b in batches] == [6, 6, 3]  # B * T frames, the last batch short
    seen = torch.cat([b.keys for b in batches]).view(-1, 3, 2)
    assert sorted(tuple(c[0].tolist()) for c in seen) == EXPECTED[3, 2]  # every clip once
    assert (seen[:, :, 0] == seen[:, :1, 0]).all() and (seen[:, 1:, 1] - seen[:, :-1, 1] == 2).all()


def test_clips_partition_across_ddp_ranks_and_resident_shards(gap_sets) -> None:
    npz, packed = gap_sets
    clips = FaceClips(packed, 3, 1)
    assert len(clips) % WORLD == 0  # else DistributedSampler repeats clips to even the shards out
    for epoch in range(2):
        shards = []
        for rank in range(WORLD):
            sampler = DistributedSampler(clips, num_replicas=WORLD, rank=rank, shuffle=True, seed=4)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        assert sorted(i for s in shards for i in s) == list(range(len(clips)))

    residents = [ResidentClips(clips, "cpu", rank=r, world_size=WORLD) for r in range(WORLD)]

    def starts(resident: ResidentClips, epoch: int, seed: int = 0) -> list[tuple[int, int]]:
        keys = [b.keys.view(-1, 3, 2) for b in resident.batches(epoch, 2, seed=seed)]
        return [tuple(c[0].tolist()) for c in torch.cat(keys)]

    assert sorted(s for r in residents for s in starts(r, 0)) == EXPECTED[3, 1]  # disjoint, together every clip
    for r in residents:
        assert sorted(starts(r, 1)) == sorted(starts(r, 0))  # each epoch: every held clip once
        assert starts(r, 2, seed=5) == starts(r, 2, seed=5)  # seeded
        assert len({tuple(starts(r, e, seed=5)) for e in range(6)}) > 1  # 3 clips: orders may repeat, not all
        assert len(r.frames) == len(np.unique(clips.windows.indices[r.indices.numpy()]))  # shared frames once
    # A resident clip batch is the loader's batch of the same clips (npz source, pixels and labels).
    r = residents[1]
    assert_same_batch(r[[2, 0]], FaceClips(npz, 3, 1).batch(r.indices[[2, 0]].numpy()))
    with pytest.raises(IndexError):
        r[[len(r)]]


def _still_clips(clips: int, length: int):
    """``clips`` clips of ``length`` frames, each frame of a clip the same posed face (same box)."""
    g, rng = torch.Generator().manual_seed(8), np.random.default_rng(8)
    return collate([s for s in posed_samples(random_poses(clips, g), [(120, 160)], rng) for _ in range(length)])


def test_equal_boxes_give_every_frame_the_same_matrix() -> None:
    batch = _still_clips(6, 4)
    for crop in ("mean", "union", "frame"):
        clip_aug = ClipAugment(FaceAugment(AugmentConfig(max_rotation=30)), 4, crop=crop)
        m = clip_aug.matrix(batch, clip_aug.sample_params(batch, torch.Generator().manual_seed(1))).view(6, 4, 3, 3)
        assert torch.equal(m, m[:, :1].expand_as(m)), crop
        assert (m[1:, 0] - m[:-1, 0]).abs().amax((1, 2)).min() > 1e-3  # clips differ from each other


def test_clip_crop_is_the_mean_or_union_box() -> None:
    """Eval framing (margin 0.1, no shift, rotation or flip) of boxes [10, 20, 50, 60] and [14, 20, 54, 60]."""
    batch = _still_clips(1, 2)
    batch = replace(batch, bbox=torch.tensor([[10.0, 20, 50, 60], [14, 20, 54, 60]]))
    aug = FaceAugment().eval()
    # mean box [12, 20, 52, 60]: centre (32, 40), side 40 * 1.2 = 48; union [10, 20, 54, 60]: side 44 * 1.2.
    for crop, centre, side in [("mean", (32, 40), 48.0), ("union", (32, 40), 52.8)]:
        clip_aug = ClipAugment(aug, 2, crop=crop)
        m, k = clip_aug.matrix(batch, clip_aug.sample_params(batch)), 128 / side
        expected = torch.tensor([[k, 0, 63.5 - centre[0] * k], [0, k, 63.5 - centre[1] * k], [0, 0, 1]])
        torch.testing.assert_close(m, expected.expand(2, 3, 3))
    # Per-frame crops follow each box: frame 1's centre is 4 px right of frame 0's.
    clip_aug = ClipAugment(aug, 2, crop="frame")
    m = clip_aug.matrix(batch, clip_aug.sample_params(batch))
    torch.testing.assert_close(apply_points(m, torch.tensor([[[30.0, 40]], [[34, 40]]])), torch.full((2, 1, 2), 63.5))


def test_drift_moves_the_camera_linearly() -> None:
    config = AugmentConfig(crop_margin=(0.1, 0.1), scale=(0.8, 1.25), max_rotation=30, max_shift=0.1)
    clips, length = 6, 5
    batch = _still_clips(clips, length)
    clip_aug = ClipAugment(FaceAugment(config), length, drift=1.0)
    params = clip_aug.sample_params(batch, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    first, second = sample_params(config, clips, g), sample_params(config, clips, g)  # the same two draws
    for name in ("angle", "scale", "margin", "shift"):
        value = getattr(params, name).view(clips, length, -1)
        torch.testing.assert_close(value[:, 0], getattr(first, name).view(clips, -1))  # from the first draw
        torch.testing.assert_close(value[:, -1], getattr(second, name).view(clips, -1))  # to the second
    for name in ("flip", "brightness", "contrast", "saturation", "hue", "gray"):  # per clip, never drifting
        assert torch.equal(getattr(params, name).view(clips, length)[:, 1:],
                           getattr(first, name)[:, None].expand(clips, length - 1))
    # The matrices: rotation, zoom and the source point seen at the output centre move by equal steps.
    m = clip_aug.matrix(batch, params)
    k, phi, _ = decompose(m)
    centre = apply_points(torch.linalg.inv(m.double()), torch.full((len(m), 1, 2), 63.5, dtype=torch.float64))
    for track in (torch.rad2deg(phi), k, centre[:, 0, 0], centre[:, 0, 1]):
        steps = track.view(clips, length).diff(dim=1)
        assert (steps[:, 0].abs() > 1e-3).all()  # it moves
        torch.testing.assert_close(steps, steps[:, :1].expand_as(steps), atol=2e-4, rtol=1e-4)
    half = sample_clip_params(config, clips, length, torch.Generator().manual_seed(3), drift=0.5)
    torch.testing.assert_close(half.angle.view(clips, length)[:, -1], (first.angle + second.angle) / 2)


def _clip_batch(frames: int, size: tuple[int, int], seed: int, dots: bool = False):
    """Posed faces (a random pose per frame) on one frame size, optionally one dot per frame at its landmark."""
    g = torch.Generator().manual_seed(seed)
    samples = posed_samples(random_poses(frames, g), [size], np.random.default_rng(seed))
    return collate(_dot_frames(samples) if dots else samples), g


def test_dots_land_on_their_landmark_index_in_every_frame(device) -> None:
    batch, g = _clip_batch(136, (200, 240), 11, dots=True)
    out = ClipAugment(FaceAugment(NO_COLOUR), 4, drift=1.0).to(device)(batch.to(device), g)
    assert out.images.shape == (34, 4, 1, 128, 128) and out.landmarks2d.shape == (34, 4, 68, 2)
    img = out.images[:, :, 0].double()
    mass = img.sum((2, 3))
    ys, xs = torch.meshgrid(torch.arange(128.0, device=device), torch.arange(128.0, device=device), indexing="ij")
    centroid = torch.stack([(img * xs).sum((2, 3)), (img * ys).sum((2, 3))], -1) / mass[..., None]
    j = (torch.arange(136, device=device) % 68).view(34, 4)
    index = torch.where(out.flipped, TABLE.to(device)[j], j)
    expected = out.landmarks2d.gather(2, index[..., None, None].expand(34, 4, 1, 2))[:, :, 0].double()
    inside = ((expected > 6) & (expected < 121)).all(-1)
    assert inside.sum() > 100 and out.flipped.any() and (~out.flipped).any()
    assert (out.params.angle.view(34, 4).diff(dim=1).abs() > 0.1).any()  # the camera drifts
    err = (centroid - expected).norm(dim=-1)[inside]
    assert err.max() < 0.5, f"worst dot off by {err.max():.3f} px"


def test_pose_and_gaze_reproject_on_every_frame(device) -> None:
    batch, g = _clip_batch(256, (120, 160), 5)
    out = ClipAugment(FaceAugment(NO_COLOUR), 8, drift=1.0).to(device)(batch.to(device), g)
    assert out.head_pose.shape == (32, 8, 3) and out.flipped.any() and (out.params.angle.abs() > 20).any()
    k, _, _ = decompose(out.frames.matrix)
    assert _reprojection_error(out.frames, k).max() < 0.01
    torch.testing.assert_close(out.gaze.norm(dim=-1), batch.gaze.to(device).norm(dim=-1).view(32, 8))


def _select(params: AugmentParams, index: torch.Tensor) -> AugmentParams:
    return replace(params, **{f.name: getattr(params, f.name)[index] for f in fields(params)})


def test_clip_batch_equals_the_frame_path_frame_by_frame(device) -> None:
    batch, g = _clip_batch(24, (120, 160), 2)
    batch = batch.to(device)
    aug = FaceAugment(AugmentConfig(grayscale_p=0.5, max_rotation=30)).to(device)
    clip_aug = ClipAugment(aug, 4, drift=0.5)
    out = clip_aug(batch, g)
    # The same frames in another order through the frame path, with their matrices and params.
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0)).to(device)
    frames = aug.apply_matrix(batch.select(perm), out.frames.matrix[perm], _select(out.params, perm))
    for name in ("images", "landmarks2d", "landmarks3d", "bbox", "head_pose", "gaze", "visible", "matrix",
                 "flipped", "keys", "valid"):
        clip_field = getattr(out, name).flatten(0, 1)[perm]
        assert torch.equal(clip_field, getattr(frames, name)), name
    # Per-frame crops without drift are the frame path's own matrices.
    params = out.params
    per_frame = ClipAugment(aug, 4, crop="frame")
    assert torch.equal(per_frame.matrix(batch, params), aug.matrix(batch, params))


def test_replay_and_eval(device) -> None:
    batch, g = _clip_batch(12, (120, 160), 4)
    batch = batch.to(device)
    clip_aug = ClipAugment(FaceAugment(AugmentConfig()), 3, drift=1.0).to(device)
    out = clip_aug(batch, g)
    again = clip_aug.apply(batch, out.params)
    assert torch.equal(out.images, again.images) and torch.equal(out.landmarks2d, again.landmarks2d)
    with torch.autocast(device, dtype=torch.bfloat16):  # a caller's autocast must not touch the label maths
        assert torch.equal(clip_aug.apply(batch, out.params).landmarks2d, out.landmarks2d)
    clip_aug.eval()
    a, b = (clip_aug(batch, torch.Generator().manual_seed(s)) for s in (1, 2))
    assert torch.equal(a.images, b.images) and not a.flipped.any()
    torch.testing.assert_close(a.params.margin, torch.full((12,), 0.1, device=device))
    # One matrix per clip (mean box, no drift in eval) though each frame's face sits elsewhere: the motion stays.
    assert torch.equal(a.matrix, a.matrix[:, :1].expand_as(a.matrix))
    assert (a.landmarks2d.diff(dim=1).abs().amax((2, 3)) > 1).all()


def test_dali_backend_gives_the_same_clips() -> None:
    """The step goes through FaceAugment.apply_matrix, so any backend works: DALI against the torch default."""
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")
    batch, g = _clip_batch(12, (120, 160), 6)
    torch_clips = ClipAugment(FaceAugment(AugmentConfig()), 4, drift=1.0)
    dali_clips = ClipAugment(FaceAugment(AugmentConfig(), backend="dali"), 4, drift=1.0)
    params = torch_clips.sample_params(batch, g)
    a, b = torch_clips.apply(batch, params), dali_clips.apply(batch, params)
    assert a.images.shape == b.images.shape == (3, 4, 1, 128, 128)
    assert (a.images - b.images).abs().mean() <= 0.1 / 255 and (a.images - b.images).abs().max() <= 1 / 255
    for name in ("landmarks2d", "landmarks3d", "head_pose", "gaze", "matrix"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_cli_previews_clips_as_strips(synth_dir, tmp_path) -> None:
    from PIL import Image

    from gpuaug.cli import main

    out = tmp_path / "clips.png"
    main(["preview", str(synth_dir), "--clips", "3", "--drift", "0.5", "--count", "2", "--out", str(out)])
    # 2 clips of 3 frames: rows of 3 tiles of 2 x 128 px with 4 px gaps; the source strips beside it.
    assert Image.open(out).size == (3 * 256 + 2 * 4, 2 * 256 + 4)
    assert Image.open(tmp_path / "clips_source.png").size[1] > 0


def test_clip_bench_writes_every_row(tmp_path) -> None:
    from argparse import Namespace

    from gpuaug.bench.clips import CLIPS, FRAMES, KORNIA, run

    args = Namespace(clip_count=2, clip_length=2, height=48, width=64, out_size=128, grayscale_p=1.0, repeats=1,
                     slow_repeats=1, warmup=0, out=tmp_path)
    json_path, md_path = run(args, [torch.device("cpu")], lambda d: "cpu test box")
    assert json_path.name == "clips_cpu-test-box.json"
    rows = {r["name"]: r for r in json.loads(json_path.read_text())["rows"]}
    assert all(rows[name]["frames_per_s"] > 0 for name in (FRAMES, CLIPS, KORNIA))
    assert f"| {CLIPS} |" in md_path.read_text()
