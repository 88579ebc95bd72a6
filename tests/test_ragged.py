"""Ragged batches: same augmentation as padded ones; packed data batched straight from its memory maps."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_same_output, cuda_only
from seed_npz import write_dataset
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from gpuaug import AugmentConfig, FaceAugment, FaceBatch, FaceFrames, collate
from gpuaug.load.packed import pack
from gpuaug.sample import LABEL_FIELDS

#: One video per size; the odd ones lose two frames to skips, so keys have gaps (see seed_npz).
SIZES = [(24, 32), (20, 20), (30, 16), (24, 32), (16, 40)]


def write_sources(root: Path) -> tuple[FaceFrames, FaceFrames]:
    """The same videos as npz files and packed, as (npz, packed) data sets."""
    write_dataset(root / "npz", SIZES, frames=6)
    pack(root / "npz", root / "packed", progress=False)
    return FaceFrames(root / "npz"), FaceFrames(root / "packed")


def assert_same_batch(a: FaceBatch, b: FaceBatch) -> None:
    """Same frames (the padded view and each frame), sizes, labels and keys; buffer layouts may differ."""
    assert len(a) == len(b)
    assert torch.equal(a.images.cpu(), b.images.cpu())
    for i in range(len(a)):
        assert torch.equal(a.frame(i).cpu(), b.frame(i).cpu()), i
    for name in ("sizes", *LABEL_FIELDS, "keys"):
        x, y = getattr(a, name).cpu(), getattr(b, name).cpu()
        assert x.dtype == y.dtype and torch.equal(x, y), name


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[FaceFrames, FaceFrames]:
    return write_sources(tmp_path_factory.mktemp("ragged"))


def test_ragged_and_padded_collate_augment_identically(synth_dir: Path, device: str) -> None:
    frames = FaceFrames(synth_dir)
    samples = [frames[i] for i in range(len(frames))]
    ragged, padded = (collate(samples, layout=layout).to(device) for layout in ("ragged", "padded"))
    assert ragged.pixels.numel() < padded.pixels.numel()  # frames of 4 sizes: the layouts really differ
    aug = FaceAugment(AugmentConfig(out_size=48, grayscale_p=0.5))
    params = aug.sample_params(ragged, torch.Generator().manual_seed(0))
    a, b = aug.apply(ragged, params), aug.apply(padded, params)
    assert_same_output(a, b)


@pytest.mark.parametrize("order", ["all", "shuffled", "repeats"])
def test_packed_batch_equals_npz_collate(sources: tuple[FaceFrames, FaceFrames], order: str) -> None:
    npz, packed = sources
    n = len(packed)
    indices = {"all": list(range(n)), "shuffled": np.random.default_rng(0).permutation(n).tolist(),
               "repeats": [7, 0, 7, n - 1]}[order]
    batch = packed.batch(indices)
    assert_same_batch(batch, collate([npz[i] for i in indices]))
    assert_same_batch(batch, npz.batch(indices))
    assert batch.keys.tolist() == [list(packed[i].key) for i in indices]
    # Ragged: every frame's bytes once, nothing else.
    assert batch.pixels.numel() == int((packed.frame_sizes(indices).prod(1) * 3).sum())


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_fetches_whole_batches(
    sources: tuple[FaceFrames, FaceFrames], workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, packed = sources
    batches = list(BatchSampler(RandomSampler(packed, generator=torch.Generator().manual_seed(1)), 5, False))
    if workers == 0:  # the loader must not fall back to one sample at a time
        monkeypatch.setattr(packed.source, "sample", lambda *_: pytest.fail("per-sample read"))
    loader = DataLoader(packed, batch_sampler=batches, collate_fn=collate, num_workers=workers)
    got = list(loader)
    assert len(got) == len(batches)
    for batch, indices in zip(got, batches, strict=True):
        assert_same_batch(batch, packed.batch(indices))


def test_batch_refuses_bad_indices(sources: tuple[FaceFrames, FaceFrames]) -> None:
    for frames in sources:
        with pytest.raises(IndexError, match="out of range"):
            frames.batch([0, len(frames)])
        with pytest.raises(IndexError, match="out of range"):
            frames.batch([-1])
        with pytest.raises(ValueError, match="at least one"):
            frames.batch([])


@cuda_only
def test_pinned_batch_copies_without_waiting(sources: tuple[FaceFrames, FaceFrames]) -> None:
    _, packed = sources
    batch = packed.batch([3, 1, 4, 1, 5], pin_memory=True)
    assert all(getattr(batch, f.name).is_pinned() for f in fields(batch))
    assert_same_batch(batch.to("cuda", non_blocking=True), batch)


def test_padded_layout_is_kept_when_the_dataloader_fetches_batches(sources: tuple[FaceFrames, FaceFrames]) -> None:
    """collate(layout="padded") pads a batch that FaceFrames.__getitems__ built ragged; samples are unchanged."""
    from functools import partial

    _, packed = sources
    loader = DataLoader(packed, batch_size=5, collate_fn=partial(collate, layout="padded"))
    batch = next(iter(loader))
    h, w = (int(v) for v in batch.sizes.amax(0))
    assert batch.pixels.numel() == len(batch) * h * w * 3 and (batch.strides == 3 * w).all()
    assert_same_batch(batch, packed.batch(list(range(5))))
