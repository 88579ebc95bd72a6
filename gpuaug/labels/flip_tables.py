"""Left/right index tables for horizontal flips: ``flipped[i] = original[table[i]]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

# iBUG-300W 68-point mirror pairs (0-based); points not listed are on the midline and map to themselves.
_IBUG68_PAIRS = (
    *[(i, 16 - i) for i in range(8)],  # jaw
    *[(17 + i, 26 - i) for i in range(5)],  # brows
    (31, 35), (32, 34),  # nostrils
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),  # outer lips
    (60, 64), (61, 63), (65, 67),  # inner lips
)  # fmt: skip


def _table_from_pairs(n: int, pairs: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    table = list(range(n))
    for a, b in pairs:
        table[a], table[b] = b, a
    return tuple(table)


FLIP_TABLES: dict[str, tuple[int, ...]] = {"ibug68": _table_from_pairs(68, _IBUG68_PAIRS)}


def resolve_flip_table(spec: str | Sequence[int], num_points: int = 68) -> torch.Tensor:
    """A named table or a user index sequence -> (num_points,) int64 tensor, checked to be an involution.

    A flip table must be a permutation that is its own inverse (flipping twice restores every index).
    """
    if isinstance(spec, str):
        if spec not in FLIP_TABLES:
            raise ValueError(f"unknown flip table {spec!r}; known: {sorted(FLIP_TABLES)}")
        spec = FLIP_TABLES[spec]
    table = torch.as_tensor(list(spec), dtype=torch.int64)
    if table.shape != (num_points,):
        raise ValueError(f"flip table must have {num_points} entries, got {tuple(table.shape)}")
    if table.min() < 0 or table.max() >= num_points:
        raise ValueError(f"flip table entries must be in [0, {num_points}), got {table.tolist()}")
    bad = (table[table] != torch.arange(num_points)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"flip table is not an involution (table[table[i]] != i) at indices {bad}")
    return table
