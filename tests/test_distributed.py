"""DDP: two gloo processes on the CPU, each with DistributedSampler + collate + FaceAugment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from seed_npz import seed_arrays, write_dataset, write_video
from torch.utils.data import DataLoader, DistributedSampler

import gpuaug
from gpuaug import AugmentConfig, FaceAugment, FaceFrames, collate
from gpuaug.distributed import rank_generator
from gpuaug.load.packed import pack

WORLD, SEED, EPOCHS = 2, 7, 2


def _rank(rank: int, data: str, out: str) -> None:
    """One rank: for two runs of two epochs, the keys it saw, its augmentation draws and pixel sums."""
    # Eager pixels: torch.compile in each fresh process would cost more than the whole test; sharding and
    # seeding, the subject here, are the same either way.
    os.environ["GPUAUG_COMPILE"] = "0"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=WORLD)
    frames = FaceFrames(data)
    sampler = DistributedSampler(frames, num_replicas=WORLD, rank=rank, shuffle=True, seed=SEED)
    loader = DataLoader(frames, batch_size=3, sampler=sampler, collate_fn=collate)
    aug = FaceAugment(AugmentConfig(out_size=24))
    report: dict[str, dict] = {}
    for run in range(2):
        for epoch in range(EPOCHS):
            sampler.set_epoch(epoch)
            g = rank_generator(SEED, epoch, rank)
            seen: dict[str, list] = {"keys": [], "angle": [], "flip": [], "sums": []}
            for batch in loader:
                result = aug(batch, g)
                seen["keys"] += batch.keys.tolist()
                seen["angle"] += result.params.angle.tolist()
                seen["flip"] += result.params.flip.tolist()
                seen["sums"].append(result.images.double().sum().item())
            everyone: list = [None] * WORLD
            dist.all_gather_object(everyone, seen["keys"])  # the process group really talks
            report[f"{run}/{epoch}"] = {**seen, "gathered": everyone}
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


def test_two_ranks_shard_disjointly_and_reproducibly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_dataset(data, [(24, 32), (20, 20), (24, 32), (20, 24)], frames=5)  # 20 frames - 4 skipped
    frames = FaceFrames(data)
    assert len(frames) % WORLD == 0  # else DistributedSampler repeats frames to even the shards out
    everything = sorted(list(frames.locate(i)) for i in range(len(frames)))
    mp.spawn(_rank, args=(str(data), str(tmp_path)), nprocs=WORLD, join=True)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    orders = []
    for epoch in range(EPOCHS):
        first = [rep[f"0/{epoch}"] for rep in reports]
        keys = [sorted(map(tuple, r["keys"])) for r in first]
        assert not set(keys[0]) & set(keys[1])  # disjoint shards
        assert sorted(keys[0] + keys[1]) == [tuple(k) for k in everything]  # every frame once
        assert first[0]["gathered"] == [r["keys"] for r in first]
        assert first[0]["angle"] != first[1]["angle"]  # ranks draw different augmentations
        for rep in reports:  # same (seed, epoch, rank) -> same keys, params and pixels
            assert rep[f"0/{epoch}"] == rep[f"1/{epoch}"]
        orders.append(first[0]["keys"])
    assert orders[0] != orders[1]  # set_epoch reshuffles


def test_rank_generator_streams() -> None:
    def draw(*triple: int) -> torch.Tensor:
        return torch.rand(8, generator=rank_generator(*triple))

    assert torch.equal(draw(1, 2, 3), draw(1, 2, 3))
    streams = [draw(1, e, r) for e in range(3) for r in range(3)] + [draw(2, 0, 0)]
    assert len({tuple(s.tolist()) for s in streams}) == len(streams)


def test_rank_generator_takes_every_seed_torch_takes() -> None:
    """Every seed torch.Generator.manual_seed accepts ([-2^63, 2^64)): a negative one is its two's complement,
    as torch reads it (-1 and 2^64 - 1 are one stream, -1 and 1 are not); outside that range a ValueError names
    the range, as torch refuses it."""
    def draw(*keys: int) -> torch.Tensor:
        return torch.rand(8, generator=rank_generator(*keys))

    assert torch.equal(draw(-1, 0, 0), draw(2**64 - 1, 0, 0)) and not torch.equal(draw(-1, 0, 0), draw(1, 0, 0))
    assert torch.equal(draw(-(2**63), 3, 1, 5), draw(2**63, 3, 1, 5))
    for seed in (2**64, -(2**63) - 1):
        with pytest.raises(ValueError, match="seed"):
            rank_generator(seed, 0, 0)


def test_stream_loader_takes_a_negative_seed(tmp_path) -> None:
    """StreamLoader(seed=-1): accepted (torch.Generator().manual_seed(-1) is legal) and drawn from, shuffled
    order and augment draws both; another seed gives another epoch."""
    for v in range(3):
        write_video(tmp_path / "npz" / f"v{v}.npz", seed_arrays(4, (30, 40), seed=v))
    pack(tmp_path / "npz", tmp_path / "packed", progress=False)
    frames = gpuaug.FaceFrames(tmp_path / "packed")
    aug = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=16))
    keys = {}
    for seed in (-1, 5):
        pairs = list(gpuaug.StreamLoader(frames, 4, shuffle=True, seed=seed, augment=aug))
        keys[seed] = [tuple(k) for b, _ in pairs for k in b.keys.tolist()]
        assert sorted(keys[seed]) == sorted(frames.locate(i) for i in range(12))
    assert keys[-1] != keys[5]
