"""StreamLoader: the batches FaceFrames.batch gives, in the sampler's order, every item once per epoch per
rank, seeded and resumable; buffers recycled without overwriting a batch in use; read errors raised in the
caller."""

from __future__ import annotations

import json
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cuda_only
from seed_npz import seed_arrays, write_video
from torch.utils.data import DistributedSampler

import gpuaug
from gpuaug.errors import FaceDataError
from gpuaug.load.packed import pack
from gpuaug.window import ReadWindow

CONFIG = gpuaug.AugmentConfig(out_size=24)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """7 noise videos of three frame sizes, 5 frames each (35 frames), packed."""
    root = tmp_path_factory.mktemp("stream")
    for v in range(7):
        arrays = seed_arrays(5, [(30, 40), (36, 28), (44, 52)][v % 3], seed=v)
        write_video(root / "npz" / f"v{v}.npz", arrays)
    pack(root / "npz", root / "packed", progress=False)
    return root / "packed"


def _keys(batches) -> list[tuple[int, int]]:
    return [tuple(k) for b in batches for k in b.keys.tolist()]


def _same(a: gpuaug.FaceBatch, b: gpuaug.FaceBatch) -> None:
    assert type(a) is type(b)
    for name in ("offsets", "strides", "sizes", "bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze", "keys"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.images, b.images)


def test_batches_are_frames_batch_in_the_shuffled_order(packed: Path) -> None:
    """Each batch equals FaceFrames.batch of the epoch order's slice (window reads included); the order is
    ResidentFrames' (seed, epoch) permutation: every frame once, the last batch short."""
    frames = gpuaug.FaceFrames(packed)
    loader = gpuaug.StreamLoader(frames, 8, shuffle=True, seed=3, config=CONFIG, threads=2, in_flight=2)
    order = gpuaug.load.resident.epoch_order(len(frames), 1, 3, 0, torch.device("cpu")).numpy()
    batches = list(loader.batches(1))
    assert len(batches) == len(loader) == 5 and len(batches[-1]) == 35 - 32
    assert sorted(np.concatenate([loader.order(1)])) == list(range(35))
    for i, batch in enumerate(batches):
        _same(batch, frames.batch(order[8 * i:8 * i + 8], window=ReadWindow(CONFIG)))
    assert _keys(batches) != _keys(loader.batches(2))  # another epoch, another order
    assert _keys(gpuaug.StreamLoader(frames, 8, shuffle=True, seed=3).batches(1)) == _keys(batches)  # seeded


def test_resume_mid_epoch(packed: Path) -> None:
    """batches(epoch, start=k) gives the epoch's batches from k on, the same as an uninterrupted pass."""
    loader = gpuaug.StreamLoader(gpuaug.FaceFrames(packed), 6, shuffle=True, seed=1, config=CONFIG)
    full = list(loader.batches(4))
    for a, b in zip(full[3:], loader.batches(4, start=3), strict=True):
        _same(a, b)


@pytest.mark.parametrize("world", [1, 3])
def test_every_frame_once_per_epoch_per_rank(packed: Path, world: int) -> None:
    """DistributedSampler shards: each rank's loader yields exactly its sampler's indices, each once, in its
    order; the ranks together cover every frame; set_epoch reshuffles."""
    frames = gpuaug.FaceFrames(packed)
    for epoch in (0, 1):
        covered = []
        for rank in range(world):
            sampler = DistributedSampler(frames, num_replicas=world, rank=rank, shuffle=True, seed=7)
            loader = gpuaug.StreamLoader(frames, 4, sampler=sampler, config=CONFIG)
            loader.set_epoch(epoch)
            got = _keys(iter(loader))
            sampler.set_epoch(epoch)
            expected = list(sampler)
            assert got == [frames.locate(i) for i in expected]
            assert len(set(got)) == len(got) == len(sampler)  # once each (35 frames: no padding for 1 or 5)
            covered += expected
        assert sorted(set(covered)) == list(range(len(frames)))


def test_clip_batches(packed: Path) -> None:
    """FaceClips: B clips of T clip-major frames, read around each clip's box."""
    clips = gpuaug.FaceClips(gpuaug.FaceFrames(packed), 3)
    loader = gpuaug.StreamLoader(clips, 2, config=CONFIG, crop="union")
    first = next(iter(loader))
    _same(first, clips.batch([0, 1], window=ReadWindow(CONFIG, clip_length=3, crop="union")))


def test_a_held_batch_is_never_overwritten(packed: Path) -> None:
    """Buffers are recycled (a handful for a whole epoch), but one the caller still holds is not refilled."""
    frames = gpuaug.FaceFrames(packed)
    loader = gpuaug.StreamLoader(frames, 4, shuffle=True, config=CONFIG, in_flight=2)
    it = loader.batches(0)
    held = next(it)
    expected = held.pixels.clone()
    pointers = {b.pixels.data_ptr() for b in it}
    assert torch.equal(held.pixels, expected)
    assert held.pixels.data_ptr() not in pointers
    assert len(pointers) <= 2 + 2  # recycled: in flight + the one in hand + one


def _corrupt_index(packed: Path, tmp: Path) -> Path:
    """A copy of ``packed`` whose index puts the last video past the end of its image file."""
    copy = tmp / "bad_index"
    copy.mkdir()
    for f in packed.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    index = json.loads((copy / "index.json").read_text())
    index["videos"][-1]["shard_row"] += 3
    (copy / "index.json").write_text(json.dumps(index))
    return copy


def _truncate(packed: Path, tmp: Path) -> Path:
    """A copy of ``packed`` whose 30x40 image file lost its last two frames."""
    copy = tmp / "truncated"
    copy.mkdir()
    for f in packed.iterdir():
        data = f.read_bytes()
        (copy / f.name).write_bytes(data[:-2 * 30 * 40 * 3] if f.name == "images_30x40.u8" else data)
    return copy


@pytest.mark.parametrize("spoil", [_truncate, _corrupt_index], ids=["truncated", "wrong index"])
def test_bad_packed_file_raises_in_the_caller(packed: Path, tmp_path: Path, spoil) -> None:
    """A FaceDataError naming the image file, raised from a reading thread into the caller's loop; the
    threads are gone afterwards."""
    bad = spoil(packed, tmp_path)
    loader = gpuaug.StreamLoader(gpuaug.FaceFrames(bad), 8, config=CONFIG)
    with pytest.raises(FaceDataError, match=r"images_\d+x\d+\.u8.*(truncated|index)") as info:
        list(loader.batches(0))
    assert "_read" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert not [t for t in threading.enumerate() if t.name.startswith("gpuaug-stream")]


def test_stopping_early_ends_the_threads(packed: Path) -> None:
    loader = gpuaug.StreamLoader(gpuaug.FaceFrames(packed), 4, config=CONFIG)
    it = loader.batches(0)
    next(it)
    it.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("gpuaug-stream")]


def test_bad_arguments(packed: Path) -> None:
    frames = gpuaug.FaceFrames(packed)
    with pytest.raises(ValueError, match="batch_size"):
        gpuaug.StreamLoader(frames, 0)
    with pytest.raises(ValueError, match="not both"):
        gpuaug.StreamLoader(frames, 4, shuffle=True, sampler=range(3))
    npz = gpuaug.FaceFrames(packed.parent / "npz")
    with pytest.raises(ValueError, match=r"packed data.*num_workers"):
        gpuaug.StreamLoader(npz, 4)


@cuda_only
def test_cuda_hand_over(packed: Path) -> None:
    """On CUDA: batches arrive on the device, equal to the CPU loader's, read into page-locked buffers."""
    frames = gpuaug.FaceFrames(packed)
    on_cpu = list(gpuaug.StreamLoader(frames, 8, shuffle=True, config=CONFIG).batches(0))
    loader = gpuaug.StreamLoader(frames, 8, shuffle=True, device="cuda", config=CONFIG, in_flight=2)
    for a, b in zip(on_cpu, loader.batches(0), strict=True):
        assert b.device.type == "cuda"
        _same(a, b.to("cpu"))
    assert all(buf.is_pinned() for buf in loader._pool._buffers)
