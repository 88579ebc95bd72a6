"""Built-in flip tables against an outside reference (mmpose's dataset metainfo), and user-table checks.

The reference is the swap pairs in mmpose 1.3.2's ``configs/_base_/datasets/*.py``, read from the
wheel on PyPI (pinned by version and sha256). The wheel is downloaded once and kept under the
interpreter's prefix (the venv), so later runs need no network. A failed download FAILS the test:
skipping would let a broken table pass.
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gpuaug.labels.flip_tables import FLIP_TABLES, flip_side, resolve_flip_table

MMPOSE_VERSION = "1.3.2"
MMPOSE_WHEEL = f"mmpose-{MMPOSE_VERSION}-py2.py3-none-any.whl"
MMPOSE_WHEEL_SHA256 = "70a77b4e5fc96a9295012ab0505b975f192b22372b2f59e3110200c1462576b6"
DATASETS_DIR = "mmpose/.mim/configs/_base_/datasets"

# Our name -> (mmpose metainfo file, K, swap pairs, midline points).
EXPECTED = {
    "ibug68": ("300w.py", 68, 29, 10),
    "wflw98": ("wflw.py", 98, 44, 10),
    "cofw29": ("cofw.py", 29, 11, 7),
    "aflw19": ("aflw.py", 19, 8, 3),
    "lapa106": ("lapa.py", 106, 48, 10),
}


def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that survives runs (inside the venv) when writable, else a per-run temporary one."""
    keep = Path(sys.prefix) / "gpuaug-reference"
    try:
        keep.mkdir(parents=True, exist_ok=True)
        if os.access(keep, os.W_OK):
            return keep
    except OSError:
        pass
    return tmp_path_factory.mktemp("gpuaug-reference")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def mmpose_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned mmpose wheel, downloaded with pip on first use and then cached."""
    folder = _cache_dir(tmp_path_factory)
    wheel = folder / MMPOSE_WHEEL
    if wheel.exists() and _sha256(wheel) != MMPOSE_WHEEL_SHA256:
        wheel.unlink()  # a broken or partial earlier download
    if not wheel.exists():
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            f"mmpose=={MMPOSE_VERSION}",
            "-d",
            str(folder),
        ]
        try:
            subprocess.run(command, check=True, timeout=120, capture_output=True, text=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
            detail = getattr(error, "stderr", None) or str(error)
            pytest.fail(
                f"could not download the reference wheel mmpose=={MMPOSE_VERSION} from PyPI "
                f"(needed to check the built-in flip tables; put {MMPOSE_WHEEL} in {folder} to run "
                f"offline): {' '.join(command)}\n{detail}"
            )
    if not wheel.exists():
        pytest.fail(f"pip ran but {wheel} is missing; found {sorted(p.name for p in folder.iterdir())}")
    digest = _sha256(wheel)
    if digest != MMPOSE_WHEEL_SHA256:
        pytest.fail(f"{wheel} has sha256 {digest}, expected {MMPOSE_WHEEL_SHA256}")
    return wheel


def _literal(node: ast.expr) -> Any:
    """Evaluate constants, lists, dicts and ``dict(key=value, ...)`` calls; nothing else is run."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg is not None}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    return ast.literal_eval(node)


def _keypoint_info(source: str) -> dict[int, dict[str, Any]]:
    """``dataset_info = dict(..., keypoint_info={...}, ...)`` -> the keypoint_info dict."""
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call):
            for keyword in statement.value.keywords:
                if keyword.arg == "keypoint_info":
                    return _literal(keyword.value)
    raise AssertionError("no keypoint_info in the metainfo file")


def _mmpose_table(info: dict[int, dict[str, Any]]) -> tuple[int, ...]:
    """table[id] = id of the keypoint its ``swap`` names, or id itself for ``swap == ''``."""
    k = len(info)
    assert sorted(info) == list(range(k)) and all(info[i]["id"] == i for i in info), "ids are not 0..K-1"
    id_of = {entry["name"]: i for i, entry in info.items()}
    assert len(id_of) == k, "keypoint names are not unique"
    return tuple(id_of[info[i]["swap"]] if info[i]["swap"] else i for i in range(k))


@pytest.fixture(scope="session")
def mmpose_tables(mmpose_wheel: Path) -> dict[str, tuple[int, ...]]:
    """Our table names -> the flip table built from mmpose's metainfo swap pairs."""
    with zipfile.ZipFile(mmpose_wheel) as archive:
        return {
            name: _mmpose_table(_keypoint_info(archive.read(f"{DATASETS_DIR}/{file}").decode()))
            for name, (file, *_) in EXPECTED.items()
        }


def test_builtin_names():
    assert set(FLIP_TABLES) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_builtin_table_matches_mmpose(name: str, mmpose_tables: dict[str, tuple[int, ...]]):
    reference = mmpose_tables[name]
    ours = FLIP_TABLES[name]
    assert len(ours) == len(reference)
    differ = [(i, ours[i], reference[i]) for i in range(len(ours)) if ours[i] != reference[i]]
    assert not differ, f"{name}: (point, ours, mmpose) {differ}"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_mmpose_swaps_are_symmetric(name: str, mmpose_tables: dict[str, tuple[int, ...]]):
    reference = mmpose_tables[name]
    assert all(reference[reference[i]] == i for i in range(len(reference)))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_builtin_table_shape_pairs_and_involution(name: str):
    _, k, n_pairs, n_midline = EXPECTED[name]
    table = resolve_flip_table(name)
    assert table.dtype == torch.int64 and table.shape == (k,)
    assert torch.equal(table[table], torch.arange(k))
    assert int((table == torch.arange(k)).sum()) == n_midline
    assert int((table != torch.arange(k)).sum()) == 2 * n_pairs
    side = flip_side(name)
    assert len(side) == k and side.count(0) == n_midline and side.count(-1) == side.count(1) == n_pairs
    assert all(side[i] == -side[int(table[i])] for i in range(k))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_flip_twice_is_identity_on_random_points(name: str):
    table = resolve_flip_table(name)
    g = torch.Generator().manual_seed(0)
    width = 200.0
    points = torch.rand(16, len(table), 2, generator=g, dtype=torch.float64) * width

    def flip(p: torch.Tensor) -> torch.Tensor:
        mirrored = torch.stack([width - p[..., 0], p[..., 1]], dim=-1)
        return mirrored[:, table]

    once = flip(points)
    assert not torch.equal(once, points)
    torch.testing.assert_close(flip(once), points, rtol=0, atol=1e-12)


def test_ibug68_side_convention():
    side = flip_side("ibug68")
    assert side[0] == -1 and side[16] == 1 and side[8] == 0  # jaw start at the image's left: -1
    assert side[36] == -1 and side[45] == 1 and side[30] == 0


def test_custom_table_decides_k():
    five = resolve_flip_table([1, 0, 2, 4, 3])  # eyes, nose tip, mouth corners
    assert five.tolist() == [1, 0, 2, 4, 3] and five.dtype == torch.int64
    assert flip_side([1, 0, 2, 4, 3]) == (-1, 1, 0, -1, 1)
    assert resolve_flip_table(torch.tensor([0, 2, 1])).tolist() == [0, 2, 1]
    assert resolve_flip_table(np.array([1, 0])).tolist() == [1, 0]
    assert resolve_flip_table(range(7)).tolist() == list(range(7))  # all on the midline


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown flip table 'nope'; known: aflw19, cofw29, ibug68, lapa106, wflw98"),
        ([], "must not be empty"),
        ([1.0, 0.0], "integer point indices; got 1.0 at position 0"),
        ([True, False], "integer point indices"),
        ([(0, 1)], "integer point indices"),
        (torch.tensor([1.0, 0.0]), "integer point indices"),
        (torch.tensor([[1, 0]]), "1-D"),
        (
            [*range(1, 98), 98],
            r"0-based point indices in \[0, 98\); got 98 at position 97 \(1-based tables: subtract 1\)",
        ),
        ([0, 1, 2, 98, *range(4, 98)], r"0-based point indices in \[0, 98\); got 98 at position 3"),
        ([0, -1, 2], r"0-based point indices in \[0, 3\); got -1 at position 1"),
        ([1, 1, 2], "not a permutation, so not an involution: point 1 is listed at positions 0 and 1, and point 0"),
        (
            [1, 2, 0, 3],
            r"not an involution \(table\[table\[i\]\] must be i\): position 0 -> 1 -> 2; "
            r"offending positions \[0, 1, 2\]",
        ),
    ],
)
def test_bad_flip_tables_are_rejected(spec: Any, message: str):
    with pytest.raises(ValueError, match=message):
        resolve_flip_table(spec)


def test_one_based_hint_only_when_it_fits():
    with pytest.raises(ValueError) as error:
        resolve_flip_table([0, 5, 2])
    assert "0-based" in str(error.value) and "subtract 1" not in str(error.value)
