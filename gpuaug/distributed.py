"""Seeding for multi-process training (torchrun / DDP): one random stream per (seed, epoch, rank)."""

from __future__ import annotations

import numpy as np
import torch


def rank_generator(seed: int, epoch: int, rank: int, *stream: int) -> torch.Generator:
    """A CPU generator for ``FaceAugment`` on one rank in one epoch (``stream``: optional further keys,
    e.g. a batch number, for loaders whose workers draw batches out of order).

    Streams differ across epochs and ranks (so ranks never repeat each other's augmentations) and are
    reproducible for the same (seed, epoch, rank). Mixing goes through ``numpy.random.SeedSequence``,
    so nearby triples do not give correlated seeds, as ``seed + epoch + rank`` would. Every seed
    ``torch.Generator.manual_seed`` takes is taken, a negative one as its two's complement (-1 is 2^64 - 1).

    Args:
        seed: the run's seed.
        epoch: the epoch.
        rank: this process's rank.
    """
    keys = [seed, epoch, rank, *stream]
    for key in keys:
        if not -(2**63) <= key < 2**64:
            raise ValueError(f"seed, epoch, rank and stream keys must be in [-2**63, 2**64), the seeds "
                             f"torch.Generator.manual_seed takes; got {key}")
    # A negative key counts as its two's complement, as manual_seed reads it (SeedSequence takes none below 0).
    state = np.random.SeedSequence([key % 2**64 for key in keys]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) >> 1)  # manual_seed wants a value below 2**63
