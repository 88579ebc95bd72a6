"""DALI loader: epochs cover every frame once, shards are disjoint, batches replay the shared code."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_same_output

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")

from test_dali_backend import kornia_reference
from torch.utils.data import DistributedSampler

from gpuaug import AugmentConfig, AugmentedBatch, FaceFrames, collate
from gpuaug.dali_loader import DaliFaceLoader, ShardPlan

CONFIG = AugmentConfig(out_size=48, grayscale_p=0.5)


@pytest.fixture(scope="module")
def frames(synth_dir) -> FaceFrames:
    return FaceFrames(synth_dir)


def all_keys(frames: FaceFrames) -> list[tuple[int, int]]:
    return sorted(frames.locate(i) for i in range(len(frames)))


def epoch_keys(loader: DaliFaceLoader) -> list[tuple[int, int]]:
    return [tuple(k) for batch in loader for k in batch.keys.tolist()]


@pytest.mark.parametrize(("n", "world_size"), [(23, 1), (24, 2), (23, 3), (23, 5)])
def test_plan_shards_partition_every_epoch(n, world_size):
    batch_size = 4
    for epoch in range(3):
        shards = []
        for rank in range(world_size):
            plan = ShardPlan(n, batch_size, seed=9, rank=rank, world_size=world_size)
            steps = range(epoch * plan.batches_per_epoch, (epoch + 1) * plan.batches_per_epoch)
            shards.append([int(i) for s in steps for i in plan.indices(s)])
        assert sorted(i for s in shards for i in s) == list(range(n))  # disjoint, and all of them
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        if n % world_size == 0:  # then the shards are DistributedSampler's
            for rank, shard in enumerate(shards):
                sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, seed=9)
                sampler.set_epoch(epoch)
                assert shard == list(sampler)


@pytest.mark.parametrize("config", [CONFIG, AugmentConfig(out_size=48, grayscale_p=1.0)], ids=["colour", "grey"])
def test_two_epochs_every_frame_once_and_replayable(frames, device, config):
    loader = DaliFaceLoader(frames, batch_size=5, config=config, seed=4, device=device)  # 12 frames: 5, 5, 2
    assert len(loader) == 3
    seen = []
    for epoch in range(2):
        assert loader.epoch == epoch
        batches = list(loader)
        keys = [tuple(k) for b in batches for k in b.keys.tolist()]
        assert sorted(keys) == all_keys(frames)
        seen.append(keys)
    assert seen[0] != seen[1]  # reshuffled

    # The last batch replays through the shared code: same labels, kornia pixels within parity.
    last = batches[-1]
    index = {frames.locate(i): i for i in range(len(frames))}
    raw = collate([frames[index[tuple(k)]] for k in last.keys.tolist()]).to(device)
    ref = kornia_reference(config).to(device).apply(raw, last.params)
    assert_same_output(last, ref, skip=("images",))
    assert last.images.device == raw.device and last.images.shape == ref.images.shape
    assert (last.images - ref.images).abs().max() <= 1 / 255


def same(x: AugmentedBatch, y: AugmentedBatch) -> bool:
    return all(torch.equal(getattr(x, f), getattr(y, f)) for f in ("keys", "images", "landmarks2d", "head_pose"))


def test_same_seed_same_batches_shards_disjoint(frames):
    def loader(seed: int, rank: int = 0, world_size: int = 1) -> DaliFaceLoader:
        return DaliFaceLoader(frames, 4, CONFIG, seed=seed, rank=rank, world_size=world_size, num_workers=1)

    a, b = loader(1), loader(1)
    epochs = [list(a), list(a)]
    assert same(next(iter(b)), epochs[0][0])
    replay = list(b)  # leaving epoch 0 after one batch: this pass is epoch 1
    assert b.epoch == 2 and all(same(x, y) for x, y in zip(replay, epochs[1], strict=True))
    shards = [{tuple(k) for batch in loader(1, r, 2) for k in batch.keys.tolist()} for r in (0, 1)]
    assert not shards[0] & shards[1] and sorted(shards[0] | shards[1]) == all_keys(frames)
