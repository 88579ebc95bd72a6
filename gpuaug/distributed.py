"""Seeding for multi-process training (torchrun / DDP): one random stream per (seed, epoch, rank)."""

from __future__ import annotations

import numpy as np
import torch


def rank_generator(seed: int, epoch: int, rank: int, *stream: int) -> torch.Generator:
    """A CPU generator for ``FaceAugment`` on one rank in one epoch (``stream``: optional further keys,
    e.g. a batch number, for loaders whose workers draw batches out of order).

    Streams differ across epochs and ranks (so ranks never repeat each other's augmentations) and are
    reproducible for the same (seed, epoch, rank). Mixing goes through ``numpy.random.SeedSequence``,
    so nearby triples do not give correlated seeds, as ``seed + epoch + rank`` would.
    """
    state = np.random.SeedSequence([seed, epoch, rank, *stream]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) >> 1)  # manual_seed wants a value below 2**63
