"""Any landmark layout (the flip table decides K) and missing points (NaN = not annotated), end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import posed_samples, random_poses
from seed_npz import seed_arrays, write_video

import gpuaug
from gpuaug import AugmentConfig, BatchError, FaceAugment, FaceDataError, collate
from gpuaug.labels.flip_tables import FLIP_TABLES
from gpuaug.load.packed import pack
from gpuaug.preview import preview_augmented
from gpuaug.targets import HeatmapTarget, SimCCTarget

NO_COLOUR = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0, crop_margin=(0.2, 0.4), max_rotation=40,
                          flip_p=0.5)
LAYOUTS = ["wflw98", "cofw29", "lapa106"]


def _layout_samples(name: str, n: int, seed: int, sizes=((200, 240), (240, 320))) -> list[gpuaug.FaceSample]:
    """n posed faces (box, pose and gaze of the mean face) with K = len(table) points scattered over the face's
    box (2D) and a depth each (3D): a layout needs no face model for the label rules to be checked."""
    g, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    k = len(FLIP_TABLES[name])
    out = []
    for s in posed_samples(random_poses(n, g), list(sizes), rng):
        lo, hi = s.bbox[:2], s.bbox[2:]
        xy = (lo + rng.uniform(0.05, 0.95, (k, 2)) * (hi - lo)).astype(np.float32)
        z = rng.uniform(-20, 20, (k, 1)).astype(np.float32)
        out.append(replace(s, landmarks2d=xy, landmarks3d=np.concatenate([xy, z], 1)))
    return out


def _dot_frames(samples, sigma: float = 1.5) -> list:
    """Sample j gets ONE Gaussian dot, at its landmark j (cycled over K): a dot knows its index."""
    out = []
    for j, s in enumerate(samples):
        h, w = s.image.shape[:2]
        x, y = s.landmarks2d[j % len(s.landmarks2d)]
        yy, xx = np.mgrid[0:h, 0:w]
        blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        out.append(replace(s, image=np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, 2)))
    return out


@pytest.mark.parametrize("name", LAYOUTS)
def test_dots_land_on_their_landmark_index_for_any_layout(device: str, name: str) -> None:
    """A dot drawn at landmark j lands on the output landmark that holds j after the step: index j, or its flip
    partner on a mirrored sample (the layout's own table); the wrong index would be pixels off."""
    k = len(FLIP_TABLES[name])
    batch = collate(_dot_frames(_layout_samples(name, 2 * k, 11))).to(device)
    out = FaceAugment(replace(NO_COLOUR, flip_table=name)).to(device)(batch, torch.Generator().manual_seed(11))
    assert out.landmarks2d.shape == (2 * k, k, 2) and out.visible.shape == out.annotated.shape == (2 * k, k)
    img = out.images[:, 0].double()
    ys, xs = torch.meshgrid(torch.arange(128.0, device=device), torch.arange(128.0, device=device), indexing="ij")
    centroid = torch.stack([(img * xs).sum((1, 2)), (img * ys).sum((1, 2))], 1) / img.sum((1, 2))[:, None]
    j = torch.arange(2 * k, device=device) % k
    table = torch.tensor(FLIP_TABLES[name], device=device)
    index = torch.where(out.flipped, table[j], j)
    rows = torch.arange(2 * k, device=device)
    expected = out.landmarks2d[rows, index].double()
    inside = ((expected > 6) & (expected < 121)).all(1)
    assert inside.sum() > k and out.flipped.any() and (~out.flipped).any()
    assert (centroid - expected).norm(dim=1)[inside].max() < 0.5
    moved = out.flipped & inside & (index != j)
    assert moved.any() and ((centroid - out.landmarks2d[rows, j].double()).norm(dim=1)[moved] > 2).all()
    # Back to the source frame through the sample's own matrix and table.
    torch.testing.assert_close(out.to_source(out.landmarks2d), batch.landmarks2d, atol=2e-3, rtol=0)


def test_a_batch_of_another_landmark_count_names_both_counts() -> None:
    batch = collate(_layout_samples("wflw98", 2, 0))
    with pytest.raises(BatchError, match=r"98 landmarks.*68.*flip_table"):
        FaceAugment()(batch)
    with pytest.raises(BatchError, match=r"98 landmarks.*29"):
        FaceAugment(AugmentConfig(flip_table="cofw29"))(batch)


@pytest.mark.parametrize("name", ["ibug68", "wflw98"])
def test_missing_points_stay_missing(device: str, name: str, tmp_path: Path) -> None:
    """NaN points (not annotated): the sample stays valid; each point stays NaN, in its mirror slot on a flip;
    annotated, visible and occluded are False there and the targets give it weight 0 (no NaN in a map); every
    other label is what the batch without the holes gets under the same params."""
    k = len(FLIP_TABLES[name])
    full = collate(_layout_samples(name, 8, 4)).to(device)
    holes = torch.zeros(8, k, dtype=torch.bool, device=device)
    holes[torch.arange(8), torch.arange(8) * 3 % k] = True
    holes[2, :k // 2] = True
    holed = replace(full, landmarks2d=torch.where(holes[..., None], torch.nan, full.landmarks2d),
                    landmarks3d=torch.where(holes[..., None], torch.nan, full.landmarks3d))
    config = replace(NO_COLOUR, flip_table=name, out_size=64, occluder_p=1.0, occluder_size=(0.4, 0.6))
    aug = FaceAugment(config, targets=[HeatmapTarget(size=32, weight_by="valid"), SimCCTarget()]).to(device)
    params = aug.sample_params(full, torch.Generator().manual_seed(2))
    a, b = aug.apply(full, params), aug.apply(holed, params)
    table = torch.tensor(FLIP_TABLES[name], device=device)
    moved_holes = torch.where(b.flipped[:, None], holes[:, table], holes)
    assert b.valid.all() and b.flipped.any()
    assert torch.equal(b.annotated, ~moved_holes) and a.annotated.all()
    assert torch.isnan(b.landmarks2d[moved_holes]).all() and torch.isnan(b.landmarks3d[moved_holes]).all()
    keep = ~moved_holes
    assert torch.equal(b.landmarks2d[keep], a.landmarks2d[keep])
    assert torch.equal(b.landmarks3d[keep], a.landmarks3d[keep])
    assert not (b.visible | b.occluded)[moved_holes].any() and a.occluded.any()
    assert torch.equal(b.visible[keep], a.visible[keep]) and torch.equal(b.occluded[keep], a.occluded[keep])
    for name_ in ("images", "bbox", "head_pose", "gaze", "matrix"):
        assert torch.equal(getattr(a, name_), getattr(b, name_)), name_
    for target in ("heatmap", "simcc"):
        weights = b.targets[target].weights
        assert (weights[moved_holes] == 0).all() and (weights[keep] == a.targets[target].weights[keep]).all()
        for value in vars(b.targets[target]).values():
            assert torch.isfinite(value.float()).all()
    back = b.to_source(b.landmarks2d)  # source slots again: the holes where they were
    torch.testing.assert_close(back[~holes], holed.landmarks2d[~holes], atol=2e-3, rtol=0)
    assert torch.isnan(back[holes]).all()
    assert preview_augmented(b.to("cpu"), tmp_path / "p.png").stat().st_size > 0  # draws what is there


def test_a_sample_with_no_annotated_point_is_still_valid_with_its_box(device: str) -> None:
    """Every point missing but a box: the crop is still made from the box (valid); inf is not "missing"."""
    batch = collate(_layout_samples("cofw29", 3, 1)).to(device)
    batch.landmarks2d[0] = torch.nan
    batch.landmarks3d[0] = torch.nan
    batch.landmarks2d[1, 3, 0] = torch.inf
    out = FaceAugment(AugmentConfig(flip_table="cofw29", out_size=32)).to(device)(batch)
    assert out.valid.tolist() == [True, False, True] and not out.annotated[0].any()


def test_collate_and_readers_keep_missing_points(tmp_path: Path) -> None:
    """collate takes NaN points (an inf is still refused, naming the sample); an npz video with NaN points loads
    them as NaN, packs and streams them, and counts no frame as skipped for them."""
    samples = _layout_samples("wflw98", 2, 3)
    samples[1].landmarks2d[5] = np.nan
    assert torch.isnan(collate(samples).landmarks2d[1, 5]).all()
    samples[0].landmarks2d[7, 1] = np.inf
    with pytest.raises(BatchError, match="landmarks2d"):
        collate(samples)
    arrays = seed_arrays(4, (60, 80), seed=2, landmarks=98)
    arrays["landmarks2D"][10, :, 1] = np.nan
    arrays["landmarks3D"][10, :, 1] = np.nan
    write_video(tmp_path / "npz" / "v.npz", arrays)
    frames = gpuaug.FaceFrames(tmp_path / "npz")
    assert len(frames) == 4 and "none skipped" in frames.skip_report()
    assert np.isnan(frames[1].landmarks2d[10]).all() and np.isfinite(frames[0].landmarks2d).all()
    pack(tmp_path / "npz", tmp_path / "packed", progress=False)
    packed = gpuaug.FaceFrames(tmp_path / "packed")
    batch = packed.batch(np.arange(4))
    assert batch.landmarks2d.shape == (4, 98, 2) and torch.isnan(batch.landmarks2d[1, 10]).all()
    aug = FaceAugment(AugmentConfig(flip_table="wflw98", out_size=32))
    (streamed, params), = list(gpuaug.StreamLoader(packed, 4, augment=aug))
    out = aug.apply(streamed, params)
    assert out.valid.all() and int((~out.annotated).sum()) == 1


def test_layouts_of_one_directory_must_agree(tmp_path: Path) -> None:
    """Videos of one directory with other landmark counts: a FaceDataError naming the odd file and both counts
    (for npz reads and for packing)."""
    write_video(tmp_path / "a.npz", seed_arrays(2, (40, 40), seed=0, landmarks=98))
    write_video(tmp_path / "b.npz", seed_arrays(2, (40, 40), seed=1, landmarks=68))
    with pytest.raises(FaceDataError, match=r"b\.npz.*68.*98"):
        gpuaug.FaceFrames(tmp_path)
    with pytest.raises(FaceDataError, match=r"b\.npz.*68.*98"):
        pack(tmp_path, tmp_path / "packed", progress=False)


@pytest.mark.parametrize("name", ["cofw29", "lapa106"])
def test_clips_and_targets_for_any_layout(name: str) -> None:
    """Clips of K-point frames and K heatmaps: every per-landmark field has K."""
    k = len(FLIP_TABLES[name])
    batch = collate(_layout_samples(name, 6, 5))
    clip_aug = gpuaug.ClipAugment(FaceAugment(AugmentConfig(flip_table=name, out_size=32),
                                              targets=[HeatmapTarget(size=16)]), 3)
    out = clip_aug(batch, torch.Generator().manual_seed(0))
    assert out.landmarks2d.shape == (2, 3, k, 2) and out.annotated.shape == (2, 3, k)
    assert out.targets["heatmap"].heatmaps.shape == (2, 3, k, 16, 16)


@pytest.mark.parametrize("name", ["wflw98", "aflw19"])
def test_preview_colours_points_by_side_from_the_layout(name: str) -> None:
    """Each point is drawn in its side's colour from its layout's table (found by K, or given), NaN points not at
    all: point i red (lower index of a pair), its partner blue, a midline point yellow."""
    from PIL import Image

    from gpuaug.labels.flip_tables import flip_side
    from gpuaug.preview import SIDE_COLOUR, draw_labels

    table, side = FLIP_TABLES[name], flip_side(name)
    k = len(table)
    points = np.stack([10.0 + 12 * (np.arange(k) % 10), 10.0 + 12 * (np.arange(k) // 10)], 1)
    points[1] = np.nan
    for given in (None, table):
        img = Image.new("RGB", (140, 140))
        draw_labels(img, points, np.full(3, np.nan), np.zeros(3), table=given)
        pixels = np.asarray(img)
        for i in range(k):
            x, y = (int(v) for v in points[i] + 0.5) if i != 1 else (22, 10)
            expected = (0, 0, 0) if i == 1 else SIDE_COLOUR[side[i]]
            assert tuple(pixels[y, x]) == expected, (i, side[i])
    assert {side[i] for i in range(k)} == {-1, 0, 1}


@pytest.mark.parametrize(("backend", "warp"), [("torch", "kornia"), ("torch", "triton"), ("dali", "auto")])
def test_every_backend_takes_any_layout_and_missing_points(backend: str, warp: str) -> None:
    """Labels are shared code: every backend and warp gives the default's labels for 98 points with holes, the
    same annotated mask, and an image of the same shape."""
    pytest.importorskip({"dali": "nvidia.dali", "torch": "kornia" if warp == "kornia" else "triton"}[backend])
    batch = collate(_layout_samples("wflw98", 4, 6))
    batch.landmarks2d[1, 40:50] = torch.nan
    config = AugmentConfig(flip_table="wflw98", out_size=32)
    torch_aug, other = FaceAugment(config), FaceAugment(config, backend=backend, warp=warp)
    params = torch_aug.sample_params(batch, torch.Generator().manual_seed(1))
    a, b = torch_aug.apply(batch, params), other.apply(batch, params)
    assert b.images.shape == a.images.shape and torch.equal(a.annotated, b.annotated) and (~b.annotated).sum() == 10
    for name in ("landmarks2d", "landmarks3d", "bbox", "head_pose", "gaze", "visible"):
        assert torch.equal(getattr(a, name).nan_to_num(7.0), getattr(b, name).nan_to_num(7.0)), name
