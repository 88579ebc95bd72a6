"""DDP: two gloo processes on the CPU, each with DistributedSampler + collate + FaceAugment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from seed_npz import write_dataset
from torch.utils.data import DataLoader, DistributedSampler

from gpuaug import AugmentConfig, FaceAugment, FaceFrames, collate
from gpuaug.distributed import rank_generator

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
