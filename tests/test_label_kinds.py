"""Only the labels a data set has: any subset of box, 2D and 3D landmarks, head pose and gaze goes through the
step, the loaders, packing, clips, targets and the preview, and an absent kind comes out None."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from seed_npz import seed_arrays, write_video

import gpuaug
from gpuaug import AugmentConfig, BatchError, FaceAugment, FaceBatch, FaceDataError, collate
from gpuaug.load.packed import pack
from gpuaug.preview import preview_augmented
from gpuaug.sample import LABEL_FIELDS
from gpuaug.targets import GazeBinTarget, HeatmapTarget, PoseBinTarget

CONFIG = AugmentConfig(out_size=32, grayscale_p=0.0, max_rotation=40.0)
OUTPUT_OF = {"bbox": ("bbox",), "landmarks2d": ("landmarks2d", "visible", "annotated"),
             "landmarks3d": ("landmarks3d",), "head_pose": ("head_pose",), "gaze": ("gaze",)}


def _only(batch: FaceBatch, kinds: tuple[str, ...]) -> FaceBatch:
    """``batch`` with only the label kinds ``kinds`` (the others None)."""
    return replace(batch, **{k: None for k in LABEL_FIELDS if k not in kinds})


def _extent(batch: FaceBatch) -> torch.Tensor:
    """(B, 4) the 2D landmarks' extent, by hand."""
    lm = batch.landmarks2d
    return torch.cat([lm.amin(1), lm.amax(1)], 1)


SUBSETS = [kinds for n in range(len(LABEL_FIELDS) + 1) for kinds in itertools.combinations(LABEL_FIELDS, n)]


@pytest.mark.parametrize("kinds", SUBSETS, ids=lambda k: "+".join(k) or "none")
def test_every_subset_of_kinds_gives_the_full_batchs_values(face_batch: FaceBatch, kinds: tuple[str, ...]) -> None:
    """Under the same params each subset gives the pixels and the values of the kinds it has that the full batch
    gives with the same crop: its box; without a box, the box set to the landmarks' extent; with neither, the
    whole frame. Absent kinds come out None, and has names exactly the kinds present."""
    part = _only(face_batch, kinds)
    crop = (face_batch.bbox if "bbox" in kinds else _extent(face_batch) if "landmarks2d" in kinds else
            torch.cat([torch.full((8, 2), -0.5), face_batch.sizes.flip(1) - 0.5], 1))
    full = replace(face_batch, bbox=crop)
    aug = FaceAugment(CONFIG, targets=[HeatmapTarget(size=16)] if "landmarks2d" in kinds else [])
    params = aug.sample_params(full, torch.Generator().manual_seed(3))
    a, b = FaceAugment(CONFIG).apply(full, params), aug.apply(part, params)
    assert b.valid.all() and torch.equal(a.images, b.images) and torch.equal(a.matrix, b.matrix)
    present = {name for k in kinds for name in OUTPUT_OF[k]} | ({"occluded"} if "landmarks2d" in kinds else set())
    for name in ("bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze", "visible", "occluded", "annotated"):
        if name in present:
            assert torch.equal(getattr(a, name), getattr(b, name)), name
        else:
            assert getattr(b, name) is None, name
    assert set(b.has) == set(kinds) and all(v.all() for v in b.has.values())
    if "landmarks2d" in kinds:
        assert b.targets["heatmap"].heatmaps.shape == (8, 68, 16, 16)
    clip = gpuaug.ClipAugment(FaceAugment(CONFIG), 4)(part, torch.Generator().manual_seed(0))
    assert all((getattr(clip, k) is None) == (k not in kinds) for k in LABEL_FIELDS)


def test_a_target_needs_its_kind(face_batch: FaceBatch) -> None:
    """A target built from a kind the batch lacks raises naming both; the others build."""
    part = _only(face_batch, ("bbox", "landmarks2d"))
    FaceAugment(CONFIG, targets=[HeatmapTarget(size=16)])(part)
    for target, kind in ((PoseBinTarget(), "head_pose"), (GazeBinTarget(), "gaze")):
        with pytest.raises(ValueError, match=rf"{target.name}.*{kind}"):
            FaceAugment(CONFIG, targets=[target])(part)


def test_a_missing_label_of_one_sample_stays_missing(face_batch: FaceBatch) -> None:
    """NaN pose, gaze or box in one sample (its data set has them): the sample stays valid (a NaN box: the crop
    frames its landmarks), that label comes out NaN and has[kind] is False there only; bins give it weight 0."""
    batch = replace(face_batch, head_pose=face_batch.head_pose.clone(), gaze=face_batch.gaze.clone(),
                    bbox=face_batch.bbox.clone())
    batch.head_pose[1] = torch.nan
    batch.gaze[2, 0] = torch.nan
    batch.bbox[3] = torch.nan
    out = FaceAugment(CONFIG, targets=[PoseBinTarget(), GazeBinTarget()])(batch, torch.Generator().manual_seed(0))
    assert out.valid.all()
    for kind, row in (("head_pose", 1), ("gaze", 2), ("bbox", 3)):
        assert torch.isnan(getattr(out, kind)[row]).all() and out.has[kind].tolist() == [i != row for i in range(8)]
    assert (out.targets["pose_bins"].weights[1] == 0).all() and (out.targets["pose_bins"].weights[0] == 1).all()
    assert (out.targets["gaze_bins"].weights[2] == 0).all()
    box_less = FaceAugment(CONFIG).apply(replace(batch, bbox=batch.bbox.clone().index_fill_(0, torch.tensor([3]), 0)
                                                 .index_copy_(0, torch.tensor([3]), _extent(batch)[3:4])), out.params)
    assert torch.equal(box_less.images[3], out.images[3])


def test_nothing_to_crop_around_is_invalid(face_batch: FaceBatch) -> None:
    """No finite box and no annotated point: invalid (fill, NaN labels); an inf anywhere too; a NaN pose is not."""
    batch = replace(face_batch, bbox=face_batch.bbox.clone(), landmarks2d=face_batch.landmarks2d.clone(),
                    gaze=face_batch.gaze.clone())
    batch.bbox[0] = torch.nan
    batch.landmarks2d[0] = torch.nan
    batch.gaze[5, 1] = torch.inf
    out = FaceAugment(CONFIG)(batch)
    assert out.valid.tolist() == [False, True, True, True, True, False, True, True]
    with pytest.raises(BatchError, match=r"nothing to crop around"):
        gpuaug.checks.check_values(batch)


def test_one_augmentation_takes_one_set_of_kinds(face_batch: FaceBatch) -> None:
    aug = FaceAugment(CONFIG)
    aug(_only(face_batch, ("bbox", "landmarks2d")))
    with pytest.raises(BatchError, match=r"bbox, landmarks2d.*bbox, head_pose.*FaceAugment of their own"):
        aug(_only(face_batch, ("bbox", "head_pose")))


def test_collate_takes_samples_of_one_set_of_kinds(face_batch: FaceBatch) -> None:
    """collate stacks the kinds the samples have; a sample with other kinds is a BatchError naming it."""
    samples = [gpuaug.FaceSample(np.zeros((20, 30, 3), np.uint8), bbox=np.array([2, 2, 20, 15], np.float32),
                                 head_pose=np.array([10, 0, 0], np.float32), key=(0, i)) for i in range(3)]
    batch = collate(samples)
    assert batch.kinds == ("bbox", "head_pose") and batch.landmarks2d is None and batch.head_pose.shape == (3, 3)
    samples[2] = replace(samples[2], gaze=np.zeros(3, np.float32))
    with pytest.raises(BatchError, match=r"gaze.*sample 2|sample 2.*gaze"):
        collate(samples)


def test_preview_draws_what_there_is(face_batch: FaceBatch, tmp_path: Path) -> None:
    """A pose-only batch (a head-pose set of face crops): the crop is the whole frame, the preview draws the axes
    from the image's centre."""
    out = FaceAugment(CONFIG)(_only(face_batch, ("head_pose",)), torch.Generator().manual_seed(1))
    assert out.landmarks2d is None and out.visible is None and out.has["head_pose"].all()
    picture = np.asarray(__import__("PIL.Image").Image.open(preview_augmented(out, tmp_path / "p.png")))
    assert (picture[..., 0] > 200).any()  # the head's red x axis


def _npz_set(root: Path, fields: tuple[str, ...], videos: int = 3, landmarks: int = 68) -> Path:
    for v in range(videos):
        arrays = seed_arrays(4, (40, 52), seed=v, landmarks=landmarks)
        write_video(root / f"v{v}.npz", {k: a for k, a in arrays.items() if k in ("colorImages", *fields)})
    return root


@pytest.mark.parametrize("fields", [("boundingBox", "landmarks2D"), ("landmarks2D",), ("headPose",),
                                    ("boundingBox", "landmarks2D", "landmarks3D")])
def test_npz_subsets_load_pack_and_stream(tmp_path: Path, fields: tuple[str, ...]) -> None:
    """npz videos with any subset of the seed's fields: FaceFrames has those kinds, packs them (v2 index: their
    label files only), streams them with per-draw windows, bit-identical to the npz batches."""
    npz = _npz_set(tmp_path / "npz", fields)
    frames = gpuaug.FaceFrames(npz)
    kinds = tuple(gpuaug.load.video.KIND_OF_FIELD[f] for f in fields)
    assert frames.kinds == kinds and frames[0].gaze is None and len(frames) == 12
    index = pack(npz, tmp_path / "packed", progress=False)
    assert index["version"] == 2 and list(index["labels"]) == list(kinds)
    assert {p.name for p in (tmp_path / "packed").glob("*.f32")} == {f"{k}.f32" for k in kinds}
    packed = gpuaug.FaceFrames(tmp_path / "packed")
    assert packed.kinds == kinds
    aug = FaceAugment(CONFIG)
    for i, (batch, params) in enumerate(gpuaug.StreamLoader(packed, 4, augment=aug)):
        whole = frames.batch(np.arange(4 * i, 4 * i + 4))
        a, b = aug.apply(batch, params), aug.apply(whole, params)
        assert torch.equal(a.images, b.images) and a.valid.all()
        for k in kinds:
            assert torch.equal(getattr(a, k), getattr(b, k)), k


def test_a_directory_holds_one_set_of_kinds(tmp_path: Path) -> None:
    _npz_set(tmp_path, ("boundingBox", "landmarks2D"), videos=2)
    arrays = seed_arrays(4, (40, 52), seed=9)
    write_video(tmp_path / "z.npz", {k: arrays[k] for k in ("colorImages", "boundingBox")})
    for read in (gpuaug.FaceFrames, lambda p: pack(p, p / "packed", progress=False)):
        with pytest.raises(FaceDataError, match=r"z\.npz.*bbox.*bbox, landmarks2d"):
            read(tmp_path)


def test_a_pack_of_version_1_reads_as_the_seed_layout(tmp_path: Path) -> None:
    """An index written before kinds were optional (v1: all five kinds, 68 points, entries without kinds) reads
    as it did."""
    npz = _npz_set(tmp_path / "npz", tuple(gpuaug.load.video.LABEL_FIELDS))
    pack(npz, tmp_path / "packed", progress=False)
    path = tmp_path / "packed" / "index.json"
    index = json.loads(path.read_text())
    index["version"] = 1
    for entry in index["videos"]:
        del entry["kinds"], entry["landmarks"]
    path.write_text(json.dumps(index))
    frames = gpuaug.FaceFrames(tmp_path / "packed")
    assert frames.kinds == LABEL_FIELDS and frames.landmarks == 68
    assert torch.equal(frames.batch([0, 5]).landmarks2d, gpuaug.FaceFrames(npz).batch([0, 5]).landmarks2d)


def test_dali_loader_takes_a_subset(tmp_path: Path) -> None:
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed")
    from gpuaug.dali_loader import DaliFaceLoader

    npz = _npz_set(tmp_path / "npz", ("boundingBox", "landmarks2D"))
    pack(npz, tmp_path / "packed", progress=False)
    loader = DaliFaceLoader(gpuaug.FaceFrames(tmp_path / "packed"), 4, CONFIG, num_workers=1)
    out = next(iter(loader))
    assert out.landmarks2d.shape == (4, 68, 2) and out.head_pose is None and out.valid.all()
