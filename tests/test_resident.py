"""A data set held on a device: batches equal the loader's, rank shards partition it, epochs are seeded."""

from __future__ import annotations

import psutil
import pytest
import torch
from conftest import cuda_only
from test_ragged import assert_same_batch, write_sources

from gpuaug import AugmentConfig, FaceAugment, FaceFrames
from gpuaug.load.resident import ResidentFrames, required_bytes

WORLD = 3


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[FaceFrames, FaceFrames]:
    return write_sources(tmp_path_factory.mktemp("resident"))


def epoch_keys(resident: ResidentFrames, epoch: int, seed: int = 0, batch_size: int = 4) -> list[tuple[int, int]]:
    return [tuple(k) for b in resident.batches(epoch, batch_size, seed=seed) for k in b.keys.tolist()]


@pytest.mark.parametrize("kind", ["npz", "packed"])
def test_batches_equal_loader_batches(sources: tuple[FaceFrames, FaceFrames], kind: str, device: str) -> None:
    npz, packed = sources
    resident = ResidentFrames(npz if kind == "npz" else packed, device, rank=1, world_size=WORLD)
    assert resident.indices.tolist() == list(range(1, len(packed), WORLD))
    positions = torch.tensor([5, 0, 2, 2, len(resident) - 1])
    assert_same_batch(resident[positions], packed.batch(resident.indices[positions]))
    order = resident.order(epoch=3, seed=7).cpu()
    for b, batch in enumerate(resident.batches(epoch=3, batch_size=3, seed=7)):
        assert batch.pixels is resident.data.pixels  # the batch points into the resident buffer: no copy
        assert_same_batch(batch, packed.batch(resident.indices[order[3 * b:3 * b + 3]]))
    assert resident.data.pixels.device.type == device
    expected = sum(f.image.nbytes for f in map(packed.__getitem__, resident.indices.tolist()))
    assert resident.data.pixels.numel() == expected
    assert required_bytes(packed, 1, WORLD) == expected + len(resident) * (4 * (4 + 68 * 2 + 68 * 3 + 3 + 3) + 8 * 6)


def test_epochs_partition_the_data_set(sources: tuple[FaceFrames, FaceFrames]) -> None:
    _, packed = sources
    ranks = [ResidentFrames(packed, "cpu", rank=r, world_size=WORLD) for r in range(WORLD)]
    everything = sorted(packed.locate(i) for i in range(len(packed)))
    shards = [sorted(epoch_keys(r, 0)) for r in ranks]
    assert sorted(k for shard in shards for k in shard) == everything  # disjoint, and together every frame
    for r, shard in zip(ranks, shards, strict=True):
        for epoch in range(1, 4):  # every epoch sees each of the rank's frames once
            assert sorted(epoch_keys(r, epoch)) == shard
        assert epoch_keys(r, 2, seed=5) == epoch_keys(r, 2, seed=5)  # reproducible per (seed, epoch)
        assert epoch_keys(r, 2, seed=5) != epoch_keys(r, 3, seed=5)
        assert epoch_keys(r, 2, seed=5) != epoch_keys(r, 2, seed=6)
    # drop_last: full batches only, as many on every rank (what DDP needs), though shard sizes differ.
    assert sorted(len(r) for r in ranks) == [8, 9, 9]  # 9 // 3 != 8 // 3: full batches alone would differ
    assert {len(list(r.batches(0, 3, drop_last=True))) for r in ranks} == {8 // 3}
    assert all(len(b) == 3 for r in ranks for b in r.batches(0, 3, drop_last=True))


def test_bad_rank_and_empty_shard(sources: tuple[FaceFrames, FaceFrames]) -> None:
    _, packed = sources
    with pytest.raises(ValueError, match="rank"):
        ResidentFrames(packed, "cpu", rank=WORLD, world_size=WORLD)
    with pytest.raises(ValueError, match="holds no frame"):
        ResidentFrames(packed, "cpu", rank=len(packed), world_size=len(packed) + 1)


def test_memory_stays_flat_over_epochs(sources: tuple[FaceFrames, FaceFrames]) -> None:
    _, packed = sources
    resident = ResidentFrames(packed, "cpu")
    aug = FaceAugment(AugmentConfig(out_size=32))
    g = torch.Generator().manual_seed(0)
    process = psutil.Process()
    rss = []
    for epoch in range(10):
        for batch in resident.batches(epoch, 4):
            aug(batch, g)
        rss.append(process.memory_info().rss)
    growth_mb = (max(rss[1:]) - rss[0]) / 2**20
    assert growth_mb < 50, f"RSS grew {growth_mb:.1f} MB after the first epoch"


@cuda_only
def test_cuda_epoch_never_syncs(sources: tuple[FaceFrames, FaceFrames]) -> None:
    _, packed = sources
    resident = ResidentFrames(packed, "cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        batches = list(resident.batches(epoch=0, batch_size=4))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert sum(len(b) for b in batches) == len(resident)
