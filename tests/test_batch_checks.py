"""Bad batches: malformed ones raise a BatchError naming the field (and sample); bad values come out as
fill with valid=False and NaN labels; no matrix or layout can make the render read outside the batch."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import cuda_only

from gpuaug import AugmentConfig, BatchError, FaceAugment, FaceBatch, collate
from gpuaug.backends.torch_backend import render, render_gather
from gpuaug.checks import check_values
from gpuaug.sample import FaceSample

CONFIG = AugmentConfig(out_size=24, grayscale_p=0.5)


def _nan_rows(t: torch.Tensor, i: int) -> torch.Tensor:
    """Sample ``i`` of ``t`` all NaN (every label of that kind missing)."""
    return t.index_fill(0, torch.tensor([i], device=t.device), float("nan"))


def _nan(t: torch.Tensor, i: int, value: float = float("nan")) -> torch.Tensor:
    t = t.clone()
    t[i].view(-1)[0] = value
    return t


BAD_VALUES = {
    "nan bbox and landmarks": lambda b: replace(b, bbox=_nan(b.bbox, 2), landmarks2d=_nan_rows(b.landmarks2d, 2)),
    "inf bbox": lambda b: replace(b, bbox=b.bbox.index_fill(0, torch.tensor([2], device=b.device), float("inf"))),
    "zero-size bbox": lambda b: replace(b, bbox=torch.cat([b.bbox[:2], b.bbox[2:3, :2].repeat(1, 2), b.bbox[3:]])),
    "inverted bbox": lambda b: replace(b, bbox=torch.cat([b.bbox[:2], b.bbox[2:3].flip(-1), b.bbox[3:]])),
    "inf landmarks": lambda b: replace(b, landmarks2d=_nan(b.landmarks2d, 2, -float("inf"))),  # NaN: missing
    "inf head pose": lambda b: replace(b, head_pose=_nan(b.head_pose, 2, float("inf"))),  # NaN: a missing pose
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_values_are_flagged_not_raised(face_batch, device, case):
    """Sample 2 is bad: its image is fill, its labels NaN, valid False; every other sample is untouched."""
    good = face_batch.to(device)
    bad = BAD_VALUES[case](good)
    aug = FaceAugment(CONFIG)
    params = aug.sample_params(good, torch.Generator().manual_seed(0))
    ref, out = aug.apply(good, params), aug.apply(bad, params)
    assert out.valid.tolist() == [i != 2 for i in range(len(good))] and ref.valid.all()
    assert (out.images[2] == 0).all() and out.landmarks2d[2].isnan().all() and out.head_pose[2].isnan().all()
    keep = out.valid
    assert torch.equal(out.images[keep], ref.images[keep]) and torch.equal(out.landmarks2d[keep], ref.landmarks2d[keep])
    with pytest.raises(BatchError, match=r"sample 2 .*field"):
        check_values(bad)


def test_reference_render_fills_samples_without_a_finite_matrix(face_batch, device):
    """The kornia reference (the CPU fallback when the render cannot be compiled) renders fill, like the gather
    paths, for a NaN or infinite matrix; the other samples are rendered."""
    batch = face_batch.to(device)
    aug = FaceAugment(CONFIG)
    params = aug.sample_params(batch, torch.Generator().manual_seed(1))
    matrix = aug.matrix(batch, params)
    matrix[0, 0, 0], matrix[1, 1, 2] = float("nan"), float("inf")
    out = render(batch, matrix, params, CONFIG, warp="kornia")
    assert torch.isfinite(out).all() and (out[:2] == 0).all() and (out[2:].flatten(1).amax(1) > 0).all()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e30, 0.0, -1e-30])
@pytest.mark.parametrize("sampler", ["compiled", "eager"])
def test_any_matrix_renders_without_reading_outside(face_batch, device, value, sampler):
    """NaN, inf, huge and singular matrices (and offsets/strides that do not fit the buffer) render fill or
    clamped taps: never an out-of-bounds read, never a crash, compiled or eager."""
    batch = face_batch.to(device)
    aug = FaceAugment(CONFIG)
    params = aug.sample_params(batch, torch.Generator().manual_seed(1))
    matrix = aug.matrix(batch, params)
    matrix[::2, :2, :] = value  # every other sample gets the bad matrix
    wild = replace(batch, offsets=batch.offsets * 1000 - 7, strides=batch.strides * 99)
    fn = render if sampler == "compiled" else render_gather
    for b in (batch, wild):
        out = fn(b, matrix, params, CONFIG)
        assert out.shape == (len(batch), 3, 24, 24) and torch.isfinite(out).all()
    if value != 1e30:  # non-finite or singular: nothing to sample, all fill
        assert (fn(batch, matrix, params, CONFIG)[::2] == 0).all()


def test_structure_errors_name_the_field(face_batch):
    aug = FaceAugment(CONFIG)
    cases = {
        "pixels": replace(face_batch, pixels=face_batch.pixels.float() / 255),  # float images are refused
        "landmarks2d": replace(face_batch, landmarks2d=face_batch.landmarks2d[:, :5]),
        "bbox": replace(face_batch, bbox=face_batch.bbox.double()),
        "sizes": replace(face_batch, sizes=face_batch.sizes[:3]),
        "keys": replace(face_batch, keys=face_batch.keys[:, 0]),
    }
    for field, batch in cases.items():
        with pytest.raises(BatchError, match=f"field '{field}'") as info:
            aug(batch)
        assert info.value.field == field
    with pytest.raises(BatchError, match=r"uint8.*\* 255"):
        aug(cases["pixels"])


@cuda_only
def test_mixed_devices_are_refused(face_batch):
    with pytest.raises(BatchError, match=r"field 'bbox'.*batch\.to"):
        FaceAugment(CONFIG)(replace(face_batch.to("cuda"), bbox=face_batch.bbox))


def _sample(key: int, image: np.ndarray | None = None, **labels: np.ndarray) -> FaceSample:
    lm = np.full((68, 2), 10, np.float32)
    fields = {"bbox": np.array([4, 4, 20, 20], np.float32), "landmarks2d": lm,
              "landmarks3d": np.concatenate([lm, np.zeros((68, 1), np.float32)], 1),
              "head_pose": np.zeros(3, np.float32), "gaze": np.array([0, 0, 1], np.float32), **labels}
    return FaceSample(np.zeros((30, 30, 3), np.uint8) if image is None else image, key=(7, key), **fields)


@pytest.mark.parametrize(("sample", "field"), [
    (_sample(3, bbox=np.array([4, 4, 4, 20], np.float32)), "bbox"),
    (_sample(3, head_pose=np.array([0, np.inf, 0], np.float32)), "head_pose"),  # (NaN: a missing pose)
    (_sample(3, image=np.zeros((30, 30, 3), np.float32)), "image"),
    (_sample(3, image=np.zeros((30, 30), np.uint8)), "image"),
    (_sample(3, landmarks3d=np.zeros((68, 2), np.float32)), "landmarks3d"),
    (_sample(3, image=np.zeros((0, 30, 3), np.uint8)), "pixels"),
])
def test_collate_names_sample_key_and_field(sample, field):
    with pytest.raises(BatchError, match=rf"sample 1 \(video 7, frame 3\), field '{field}'"):
        collate([_sample(0), sample, _sample(5)])


def test_hand_made_padded_batch_works(face_batch):
    """FaceBatch.from_padded over a dense tensor renders like the ragged batch of the same frames."""
    dense = FaceBatch.from_padded(face_batch.images, face_batch.sizes, bbox=face_batch.bbox,
                                  landmarks2d=face_batch.landmarks2d, landmarks3d=face_batch.landmarks3d,
                                  head_pose=face_batch.head_pose, gaze=face_batch.gaze, keys=face_batch.keys)
    aug = FaceAugment(CONFIG)
    params = aug.sample_params(face_batch, torch.Generator().manual_seed(0))
    assert torch.equal(aug.apply(dense, params).images, aug.apply(face_batch, params).images)
