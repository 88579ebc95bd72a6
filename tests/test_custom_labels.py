"""Labels of your own (blendshapes, action units, classes): declared once with their flip rule, carried through
collate, packing, the stream loader, clips, DALI and replays, re-indexed exactly on mirrored samples."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from seed_npz import seed_arrays, write_video

import gpuaug
from gpuaug import AugmentConfig, BatchError, FaceAugment, FaceBatch, collate
from gpuaug.labels.custom import ARKIT52, ClassLabel, FlipVector
from gpuaug.load.packed import pack
from gpuaug.pack_cli import main as pack_main

CONFIG = AugmentConfig(out_size=24)
BLEND = FlipVector.from_names("blendshapes", ARKIT52)
#: Expression classes: 0 neutral, 1 smirk (left), 2 smirk (right), 3 smile.
EXPRESSION = ClassLabel("expression", 4, flip=(0, 2, 1, 3))
VELOCITY = FlipVector("velocity", 2, sign=(-1.0, 1.0))  # x, y of the head's motion: x changes sign on a mirror


def test_arkit_table_swaps_left_and_right_by_name() -> None:
    """Each named side takes its partner's slot, a name without a side (jawOpen, tongueOut) stays; the table is
    its own inverse; names in another order (a capture tool's) give the matching table."""
    assert len(ARKIT52) == len(set(ARKIT52)) == 52
    perm = BLEND.perm
    for i, name in enumerate(ARKIT52):
        partner = ARKIT52[perm[i]]
        if "Left" in name:
            assert partner == name.replace("Left", "Right")
        elif "Right" in name:
            assert partner == name.replace("Right", "Left")
        else:
            assert partner == name
    assert all(perm[perm[i]] == i for i in range(52)) and sum(perm[i] != i for i in range(52)) == 40  # 20 pairs
    shuffled = list(reversed(ARKIT52))
    other = FlipVector.from_names("b", shuffled)
    assert [shuffled[other.perm[i]] for i in range(52)] == [ARKIT52[perm[ARKIT52.index(n)]] for n in shuffled]
    with pytest.raises(ValueError, match="eyeBlinkRight"):
        FlipVector.from_names("b", ["eyeBlinkLeft", "jawOpen"])


@pytest.mark.parametrize(("spec", "message"), [
    (lambda: FlipVector("v", 3, perm=(1, 2, 0)), "own inverse"), (lambda: FlipVector("v", 2, perm=(0, 2)), "0-based"),
    (lambda: FlipVector("v", 2, perm=(1, 0), sign=(1.0, -1.0)), "same sign"),
    (lambda: ClassLabel("c", 3, flip=(1, 0)), "2 entries for 3"), (lambda: FlipVector("1x", 2), "identifier"),
])
def test_bad_declarations_raise(spec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec()


def _with_labels(batch: FaceBatch, seed: int = 0) -> FaceBatch:
    g = torch.Generator().manual_seed(seed)
    n = len(batch)
    return replace(batch, labels={"blendshapes": torch.rand(n, 52, generator=g),
                                  "expression": torch.tensor([0, 1, 2, 3, 1, 2, -1, 0])[:n],
                                  "velocity": torch.randn(n, 2, generator=g)})


def test_labels_are_re_indexed_on_mirrored_samples_and_replay(face_batch: FaceBatch) -> None:
    """Mirrored samples: blendshapes take their partner's value, the class maps through its table (a missing
    class, -1, stays), the velocity's x changes sign; others come out as they went in; replaying the params gives
    the same; mirroring twice gives the labels back."""
    batch = _with_labels(face_batch)
    aug = FaceAugment(CONFIG, labels=[BLEND, EXPRESSION, VELOCITY])
    out = aug(batch, torch.Generator().manual_seed(2))
    flipped = out.flipped
    assert flipped.any() and (~flipped).any() and out.valid.all()
    perm = torch.tensor(BLEND.perm)
    expected = torch.where(flipped[:, None], batch.labels["blendshapes"][:, perm], batch.labels["blendshapes"])
    assert torch.equal(out.labels["blendshapes"], expected)
    table = torch.tensor([0, 2, 1, 3])
    cls = batch.labels["expression"]
    assert torch.equal(out.labels["expression"], torch.where(flipped & (cls >= 0), table[cls.clamp(0)], cls))
    assert out.labels["expression"].dtype == torch.int64
    v = batch.labels["velocity"]
    assert torch.equal(out.labels["velocity"], torch.where(flipped[:, None], v * torch.tensor([-1.0, 1.0]), v))
    again = aug.apply(batch, out.params)
    assert all(torch.equal(again.labels[k], out.labels[k]) for k in out.labels)
    for spec in (BLEND, EXPRESSION, VELOCITY):
        twice = spec.mirror(spec.mirror(batch.labels[spec.name], torch.ones(8, dtype=torch.bool)),
                            torch.ones(8, dtype=torch.bool))
        assert torch.equal(twice, batch.labels[spec.name]), spec.name


def test_bad_values_and_undeclared_labels(face_batch: FaceBatch) -> None:
    """An inf in a vector or a class out of range: that sample invalid (NaN labels, class -1), the others kept; a
    NaN is a missing value (kept, the sample valid); a label without a declaration, or a declared one missing or
    of the wrong dtype, is a BatchError naming it."""
    batch = _with_labels(face_batch)
    batch.labels["blendshapes"][1, 3] = torch.inf
    batch.labels["blendshapes"][2, 5] = torch.nan
    batch.labels["expression"][4] = 9
    aug = FaceAugment(CONFIG, labels=[BLEND, EXPRESSION, VELOCITY])
    out = aug(batch)
    assert out.valid.tolist() == [True, False, True, True, False, True, True, True]
    assert torch.isnan(out.labels["blendshapes"][1]).all() and out.labels["expression"][4] == -1
    assert torch.isnan(out.labels["blendshapes"][2]).sum() == 1
    with pytest.raises(BatchError, match=r"labels\.velocity.*not declared"):
        FaceAugment(CONFIG, labels=[BLEND, EXPRESSION])(batch)
    with pytest.raises(BatchError, match=r"labels\.gaze_class.*does not have"):
        FaceAugment(CONFIG, labels=[BLEND, EXPRESSION, VELOCITY, ClassLabel("gaze_class", 3)])(batch)
    wrong = replace(batch, labels={**batch.labels, "expression": batch.labels["expression"].float()})
    with pytest.raises(BatchError, match=r"labels\.expression.*torch\.int64"):
        aug(wrong)


def test_collate_keeps_integer_labels_integer() -> None:
    samples = [gpuaug.FaceSample(np.zeros((20, 30, 3), np.uint8), bbox=np.array([2, 2, 20, 15], np.float32),
                                 labels={"expression": np.int64(2**40 + 1), "blendshapes": np.full(52, 0.5)})
               for _ in range(2)]
    batch = collate(samples)
    assert batch.labels["expression"].dtype == torch.int64 and batch.labels["expression"][0] == 2**40 + 1
    assert batch.labels["blendshapes"].dtype == torch.float32 and batch.labels["blendshapes"].shape == (2, 52)
    samples[1] = replace(samples[1], labels={"expression": np.int64(1)})
    with pytest.raises(BatchError, match=r"labels of its own.*blendshapes"):
        collate(samples)


def _videos(root: Path, n: int = 3) -> Path:
    for v in range(n):
        arrays = seed_arrays(4, (40, 52), seed=v)
        rng = np.random.default_rng(v)
        arrays["blendshapes"] = rng.uniform(0, 1, (52, 4)).astype(np.float32)
        arrays["expression"] = rng.integers(0, 4, 4).astype(np.int32)
        write_video(root / f"v{v}.npz", arrays)
    return root


def test_npz_pack_stream_clips_and_replay(tmp_path: Path) -> None:
    """npz fields read as labels of your own (integers stay integers), packed with them (--labels), streamed
    with per-draw windows: the same labels out as the npz batches under the same params; clips get a T axis."""
    npz = _videos(tmp_path / "npz")
    names = ("blendshapes", "expression")
    frames = gpuaug.FaceFrames(npz, labels=names)
    assert frames.label_names == names and frames[1].labels["expression"].dtype == np.int64
    pack_main([str(npz), str(tmp_path / "packed"), "--quiet", "--labels", ",".join(names)])
    packed = gpuaug.FaceFrames(tmp_path / "packed")
    assert packed.label_names == names
    assert {p.name for p in (tmp_path / "packed").glob("label.*")} == {"label.blendshapes.f32", "label.expression.i64"}
    aug = FaceAugment(CONFIG, labels=[BLEND, EXPRESSION])
    for i, (batch, params) in enumerate(gpuaug.StreamLoader(packed, 4, augment=aug)):
        a, b = aug.apply(batch, params), aug.apply(frames.batch(np.arange(4 * i, 4 * i + 4)), params)
        assert all(torch.equal(a.labels[k], b.labels[k]) for k in names)
    clips = gpuaug.ClipAugment(aug, 2)(packed.batch(np.arange(4)), torch.Generator().manual_seed(0))
    assert clips.labels["blendshapes"].shape == (2, 2, 52) and clips.labels["expression"].shape == (2, 2)
    with pytest.raises(gpuaug.FaceDataError, match="labels of your own"):
        gpuaug.FaceFrames(tmp_path / "packed", labels=("blendshapes",))
    with pytest.raises(gpuaug.FaceDataError, match="au12"):
        gpuaug.FaceFrames(npz, labels=("au12",))


def test_dali_loader_carries_the_labels(tmp_path: Path) -> None:
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed")
    from gpuaug.dali_loader import DaliFaceLoader

    npz = _videos(tmp_path / "npz")
    pack(npz, tmp_path / "packed", progress=False, labels=["blendshapes", "expression"])
    frames = gpuaug.FaceFrames(tmp_path / "packed")
    loader = DaliFaceLoader(frames, 4, CONFIG, num_workers=1, labels=[BLEND, EXPRESSION])
    out = next(iter(loader))
    index = {frames.locate(i): i for i in range(len(frames))}
    raw = frames.batch([index[tuple(k)] for k in out.keys.tolist()])
    expected = FaceAugment(CONFIG, labels=[BLEND, EXPRESSION]).apply(raw, out.params)
    assert out.labels["blendshapes"].shape == (4, 52) and out.labels["expression"].dtype == torch.int64
    assert all(torch.equal(out.labels[k], expected.labels[k]) for k in ("blendshapes", "expression"))


def test_shipped_occlusion_flags_follow_the_points_into_occluded() -> None:
    """COFW-style flags (29 points): on a mirrored sample the flags take the flip table's slots like the points;
    a set flag of an annotated point is occluded (so a heatmap with occluded="drop" leaves it out), not for a
    point not annotated nor an unknown flag (-1); a flag of 2 makes that sample invalid; a table of another K is a
    BatchError naming the label."""
    g = torch.Generator().manual_seed(5)
    points = torch.rand(6, 29, 2, generator=g) * 50 + 25
    points[0, 3] = torch.nan
    flags = (torch.rand(6, 29, generator=g) < 0.3).long()
    flags[0, 3] = 1                                                 # flagged but not annotated: never occluded
    flags[1, :] = -1                                                # unknown
    flags[2, 7] = 2                                                 # a bad value
    box = torch.tensor([10.0, 10.0, 90.0, 90.0]).expand(6, 4)
    batch = FaceBatch.from_images(torch.zeros(6, 100, 100, 3, dtype=torch.uint8), bbox=box, landmarks2d=points,
                                  labels={"occluded": flags})
    spec = gpuaug.PointFlags("occluded")
    aug = FaceAugment(AugmentConfig(out_size=24, flip_table="cofw29", flip_p=0.5), labels=[spec],
                      targets=[gpuaug.targets.HeatmapTarget(size=12, weight_by="valid", occluded="drop")])
    out = aug(batch, torch.Generator().manual_seed(0))
    assert out.flipped.any() and (~out.flipped).any()
    assert out.valid.tolist() == [True, True, False, True, True, True]
    table = gpuaug.labels.flip_tables.resolve_flip_table("cofw29")
    moved = torch.where(out.flipped[:, None], flags[:, table], flags)
    keep = out.valid
    assert torch.equal(out.labels["occluded"][keep], moved[keep]) and (out.labels["occluded"][~keep] == -1).all()
    expected = (moved == 1) & out.annotated
    assert torch.equal(out.occluded, expected) and out.occluded.any()
    assert not out.occluded[0].masked_select(~out.annotated[0]).any() and not out.occluded[1].any()
    assert torch.equal(out.targets["heatmap"].weights > 0, out.valid[:, None] & out.annotated & ~expected)
    with pytest.raises(BatchError, match=r"labels\.occluded.*\(6, 68\)"):
        FaceAugment(CONFIG, labels=[spec])(replace(batch, landmarks2d=torch.zeros(6, 68, 2)))
    with pytest.raises(ValueError, match="flip table"):
        _ = spec.shape


def test_shipped_occlusion_flags_load_and_pack(tmp_path: Path) -> None:
    """A bool npz field of flags (K, N), frames last, loads as int64 and packs (label.occluded.i64)."""
    for v in range(2):
        arrays = seed_arrays(3, (40, 52), seed=v)
        arrays["occluded"] = np.random.default_rng(v).uniform(size=(68, 3)) < 0.5
        write_video(tmp_path / "npz" / f"v{v}.npz", arrays)
    frames = gpuaug.FaceFrames(tmp_path / "npz", labels=("occluded",))
    pack(tmp_path / "npz", tmp_path / "packed", progress=False, labels=["occluded"])
    packed = gpuaug.FaceFrames(tmp_path / "packed")
    aug = FaceAugment(CONFIG, labels=[gpuaug.PointFlags("occluded")])
    a, b = frames.batch(np.arange(6)), packed.batch(np.arange(6))
    assert a.labels["occluded"].dtype == torch.int64 and torch.equal(a.labels["occluded"], b.labels["occluded"])
    params = aug.sample_params(a, torch.Generator().manual_seed(3))
    assert torch.equal(aug.apply(a, params).occluded, aug.apply(b, params).occluded)
