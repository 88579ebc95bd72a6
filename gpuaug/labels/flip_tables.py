"""Left/right index tables for horizontal flips: ``flipped[i] = original[table[i]]``.

A flip table for a layout of K landmarks is a sequence of K 0-based point indices. After a horizontal
flip, the point that lands at slot ``i`` is the mirror image of the original point ``table[i]``: the
left eye corner becomes the right eye corner and so on. Points on the face's midline (nose bridge, chin,
lip centres) map to themselves. A flip table is therefore a permutation that is its own inverse (an
involution): flipping twice restores every index.

Built-in tables (``FLIP_TABLES``), by name:

==========  ====  ======================================================
name        K     layout
==========  ====  ======================================================
``ibug68``  68    iBUG / 300W (also 300-VW, Multi-PIE 68, dlib)
``wflw98``  98    WFLW
``cofw29``  29    COFW
``aflw19``  19    AFLW, 19-point protocol (the 21 points less the ears)
``lapa106`` 106   LaPa (the layout RTMPose's face6 models predict)
==========  ====  ======================================================

The pairs are written below in our own compact form; ``tests/test_flip_tables.py`` checks every table
against the swap pairs in mmpose's dataset metainfo (``configs/_base_/datasets/*.py``).

Side convention (``flip_side``): in a pair the point with the lower index is side -1, its partner +1,
and midline points 0. In ``ibug68`` the jaw starts (index 0) at the image's left of a frontal, upright
face, i.e. the subject's right, so -1 is the image-left half. mmpose's converters to the LaPa layout
(RTMPose face6 configs) map 300W, WFLW and COFW points to LaPa points keeping that: the lower index of
each pair is on the image's left in ``wflw98``, ``cofw29`` and ``lapa106`` too. For ``aflw19`` the side
follows the index order only (not checked against an image).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch

# Each table lists its mirror pairs (0-based); points not listed are on the midline and map to themselves.

# iBUG-300W, 68 points. Midline: 8 (chin), 27-30 (nose bridge), 33 (nose tip), 51, 57, 62, 66 (lip centres).
_IBUG68_PAIRS = (
    *[(i, 16 - i) for i in range(8)],  # jaw 0-16
    *[(17 + i, 26 - i) for i in range(5)],  # brows 17-21 | 22-26
    (31, 35), (32, 34),  # nostrils
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes 36-41 | 42-47
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),  # outer lips 48-59
    (60, 64), (61, 63), (65, 67),  # inner lips 60-67
)  # fmt: skip

# WFLW, 98 points. Midline: 16 (chin), 51-54 (nose bridge), 57 (under the nose), 79, 85, 90, 94 (lip centres).
_WFLW98_PAIRS = (
    *[(i, 32 - i) for i in range(16)],  # contour 0-32
    *[(33 + i, 46 - i) for i in range(5)],  # upper brows 33-37 | 42-46
    *[(38 + i, 50 - i) for i in range(4)],  # lower brows 38-41 | 47-50
    (55, 59), (56, 58),  # nostrils 55-59
    *[(60 + i, 72 - i) for i in range(5)],  # eyes, corner and upper lid: 60-64 | 68-72
    *[(65 + i, 75 - i) for i in range(3)],  # eyes, lower lid: 65-67 | 73-75
    (76, 82), (77, 81), (78, 80), (83, 87), (84, 86),  # outer lips 76-87
    (88, 92), (89, 91), (93, 95),  # inner lips 88-95
    (96, 97),  # pupils
)  # fmt: skip

# COFW, 29 points. Midline: 20, 21 (nose), 24-27 (lip centres), 28 (chin).
_COFW29_PAIRS = (
    (0, 1), (2, 3), (4, 6), (5, 7),  # brows 0-7: ends, then middles
    (8, 9), (10, 11), (12, 14), (13, 15),  # eyes 8-15: corners, then lids
    (16, 17),  # pupils
    (18, 19),  # nostrils
    (22, 23),  # mouth corners
)  # fmt: skip

# AFLW, 19 points. Midline: 13 (nose tip), 16 (mouth centre), 18 (chin).
_AFLW19_PAIRS = (
    (0, 5), (1, 4), (2, 3),  # brows 0-2 | 3-5
    (6, 11), (7, 10), (8, 9),  # eyes 6-8 | 9-11
    (12, 14),  # nostrils
    (15, 17),  # mouth corners
)  # fmt: skip

# LaPa, 106 points. Midline: 16 (chin), 51-54 (nose bridge), 60 (under the nose), 87, 93, 98, 102 (lip centres).
_LAPA106_PAIRS = (
    *[(i, 32 - i) for i in range(16)],  # contour 0-32
    *[(33 + i, 46 - i) for i in range(5)],  # upper brows 33-37 | 42-46
    *[(38 + i, 50 - i) for i in range(4)],  # lower brows 38-41 | 47-50
    *[(55 + i, 65 - i) for i in range(5)],  # lower nose 55-65
    *[(66 + i, 79 - i) for i in range(5)],  # eyes, corner and upper lid: 66-70 | 75-79
    (71, 82), (72, 81), (73, 80),  # eyes, lower lid
    (74, 83),  # eye centres
    (84, 90), (85, 89), (86, 88), (91, 95), (92, 94),  # outer lips 84-95
    (96, 100), (97, 99), (101, 103),  # inner lips 96-103
    (104, 105),  # pupils
)  # fmt: skip


def _table_from_pairs(n: int, pairs: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    table = list(range(n))
    for a, b in pairs:
        if table[a] != a or table[b] != b:
            raise AssertionError(f"point {a} or {b} is listed in two pairs")  # a typo in the tables above
        table[a], table[b] = b, a
    return tuple(table)


FLIP_TABLES: dict[str, tuple[int, ...]] = {
    "ibug68": _table_from_pairs(68, _IBUG68_PAIRS),
    "wflw98": _table_from_pairs(98, _WFLW98_PAIRS),
    "cofw29": _table_from_pairs(29, _COFW29_PAIRS),
    "aflw19": _table_from_pairs(19, _AFLW19_PAIRS),
    "lapa106": _table_from_pairs(106, _LAPA106_PAIRS),
}


def _as_index_list(spec: Sequence[int]) -> list[int]:
    """Entries of a user table as Python ints; rejects floats, bools and nested sequences."""
    if isinstance(spec, torch.Tensor):
        if spec.dim() != 1 or spec.dtype.is_floating_point or spec.dtype.is_complex or spec.dtype == torch.bool:
            raise ValueError(
                "a flip table must be a 1-D sequence of integer point indices; "
                f"got a {spec.dim()}-D {spec.dtype} tensor"
            )
        return [int(v) for v in spec.tolist()]
    out = []
    for position, value in enumerate(spec):
        try:
            if isinstance(value, bool):
                raise TypeError
            out.append(operator.index(value))
        except TypeError:
            raise ValueError(
                f"a flip table must be a sequence of integer point indices; got {value!r} at position {position}"
            ) from None
    return out


def builtin_table(n_points: int) -> str | None:
    """The name of the built-in table of ``n_points`` landmarks (each built-in layout has its own count), or None."""
    return next((name for name, table in FLIP_TABLES.items() if len(table) == n_points), None)


def resolve_flip_table(spec: str | Sequence[int]) -> torch.Tensor:
    """A built-in table's name, or a user index sequence -> (K,) int64 tensor; the table decides K.

    ``flipped[i] = original[table[i]]``. A user table must be non-empty, hold integers, use 0-based
    point indices in ``[0, K)``, and be a permutation that is its own inverse (an involution).
    Raises ``ValueError`` naming the first offending positions otherwise, or listing the known names
    for an unknown name.

    Args:
        spec: a built-in table's name ("ibug68", "wflw98", "cofw29", "aflw19", "lapa106") or an index
            sequence.
    """
    if isinstance(spec, str):
        if spec not in FLIP_TABLES:
            raise ValueError(f"unknown flip table {spec!r}; known: {', '.join(sorted(FLIP_TABLES))}")
        return torch.tensor(FLIP_TABLES[spec], dtype=torch.int64)
    values = _as_index_list(spec)
    k = len(values)
    if k == 0:
        raise ValueError("a flip table must not be empty: it lists one entry per landmark")
    for position, value in enumerate(values):
        if not 0 <= value < k:
            hint = " (1-based tables: subtract 1)" if min(values) >= 1 and max(values) == k else ""
            raise ValueError(
                f"flip table entries are 0-based point indices in [0, {k}); got {value} at position {position}{hint}"
            )
    first_at: dict[int, int] = {}
    for position, value in enumerate(values):
        if value in first_at:
            missing = min(set(range(k)) - set(values))
            raise ValueError(
                f"flip table is not a permutation, so not an involution: point {value} is listed at positions "
                f"{first_at[value]} and {position}, and point {missing} nowhere"
            )
        first_at[value] = position
    bad = [i for i in range(k) if values[values[i]] != i]
    if bad:
        i = bad[0]
        raise ValueError(
            f"flip table is not an involution (table[table[i]] must be i): position {i} -> {values[i]} -> "
            f"{values[values[i]]}; offending positions {bad[:8]}{' ...' if len(bad) > 8 else ''}"
        )
    return torch.tensor(values, dtype=torch.int64)


def flip_side(spec: str | Sequence[int]) -> tuple[int, ...]:
    """Side of each point: -1 if its mirror partner has a higher index, 0 on the midline, +1 otherwise.

    For the built-in tables but ``aflw19``, -1 is the image's left half of a frontal upright face (the
    subject's right); otherwise it follows the index order only (see the module docstring). A preview can
    colour points by side for any K with it.

    Args:
        spec: a built-in table's name or an index sequence (:func:`resolve_flip_table`).
    """
    table = resolve_flip_table(spec).tolist()
    return tuple(-1 if partner > i else 0 if partner == i else 1 for i, partner in enumerate(table))
