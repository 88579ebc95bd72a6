"""Packed format: exact round trip with the npz reader, resume after a crash, verification, CLI."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from seed_npz import seed_arrays, write_dataset, write_video

from gpuaug.errors import FaceDataError
from gpuaug.load.frames import FaceFrames
from gpuaug.load.packed import INDEX, JOURNAL, pack, verify_packed
from gpuaug.pack_cli import main as pack_main
from gpuaug.sample import FaceSample

SIZES = [(24, 32), (20, 20), (24, 32), (16, 40)]


def assert_same_frames(a: FaceFrames, b: FaceFrames) -> None:
    """Every field of every frame equal (values, dtypes, shapes), keys included; same skip lists."""
    assert len(a) == len(b) and len(a.videos) == len(b.videos)
    assert a.skipped == b.skipped  # file, frame, kind and detail
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x.key == y.key
        for f in fields(FaceSample):
            u, v = np.asarray(getattr(x, f.name)), np.asarray(getattr(y, f.name))
            assert u.dtype == v.dtype and u.shape == v.shape and np.array_equal(u, v), (i, f.name)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    out = tmp_path / "src"
    write_dataset(out / "a", SIZES, frames=5)
    all_bad = seed_arrays(3, (12, 12), seed=9)
    all_bad["gazeVector"][:] = np.inf  # no usable frame (and it sorts first): it still keeps its number
    write_video(out / "0" / "all_bad.npz", all_bad)
    (out / "README.txt").write_text("not a video")  # ignored, as by FaceFrames
    return out


def test_round_trip_every_field_and_skip(src: Path, tmp_path: Path) -> None:
    index = pack(src, tmp_path / "packed", progress=False)
    npz, packed = FaceFrames(src), FaceFrames(tmp_path / "packed")
    assert_same_frames(npz, packed)
    assert len(packed.skipped) == 2 + 2 + 3 and index["frames"] == len(npz) == 4 * 5 - 4
    listed = {(v["path"], f, kind) for v in index["videos"] for f, kind, _ in v["skipped"]}
    assert ("0/all_bad.npz", 2, "non-finite") in listed and ("a/v001.npz", 2, "degenerate-bbox") in listed
    # Pixels for skipped frames are not written: each shard holds exactly its kept frames.
    assert (tmp_path / "packed" / "images_20x20.u8").stat().st_size == (5 - 2) * 20 * 20 * 3
    assert not (tmp_path / "packed" / "images_12x12.u8").exists()
    with pytest.raises(FaceDataError, match="non-finite"):
        FaceFrames(tmp_path / "packed", policy="error")


def test_resume_after_a_crash(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "packed"
    broken = src / "a" / "v002.npz"
    good = broken.read_bytes()
    broken.write_bytes(good[: len(good) // 2])  # the third video fails: packing stops there
    with pytest.raises(FaceDataError, match="v002"):
        pack(src, dst, progress=False)
    assert len(_journal(dst)) == 3 and not (dst / INDEX).exists()  # all_bad, v000, v001
    with pytest.raises(FaceDataError, match="not finished"):
        FaceFrames(dst)
    # A crash in the middle of the next video: half-written pixels and a torn journal line.
    with open(dst / "images_24x32.u8", "ab") as f:
        f.write(b"\x07" * 1000)
    with open(dst / JOURNAL, "a") as f:
        f.write('{"path": "a/v0')
    broken.write_bytes(good)
    pack(src, dst, progress=False)
    assert_same_frames(FaceFrames(src), FaceFrames(dst))
    assert len(_journal(dst)) == 5


def test_rerun_is_a_no_op_and_adds_new_videos(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "packed"
    pack(src, dst, progress=False)
    before = {p.name: p.stat().st_size for p in dst.iterdir()}
    pack(src, dst, progress=False)
    assert {p.name: p.stat().st_size for p in dst.iterdir()} == before
    write_video(src / "a" / "v000b.npz", seed_arrays(2, (20, 20), seed=5))  # sorts between v000 and v001
    pack(src, dst, progress=False)
    assert_same_frames(FaceFrames(src), FaceFrames(dst))


def test_changed_source_is_refused(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "packed"
    pack(src, dst, progress=False)
    write_video(src / "a" / "v000.npz", seed_arrays(7, (24, 32), seed=3))
    with pytest.raises(FaceDataError, match="changed or gone"):
        pack(src, dst, progress=False)


@pytest.mark.parametrize("name, field", [("images_24x32.u8", "images"), ("landmarks3d.f32", "landmarks3d")])
def test_verify_finds_a_flipped_byte(src: Path, tmp_path: Path, name: str, field: str) -> None:
    dst = tmp_path / "packed"
    pack(src, dst, progress=False)
    verify_packed(dst)
    with open(dst / name, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(FaceDataError, match=f"field '{field}'.*checksum"):
        verify_packed(dst)


def test_cli(src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "packed"
    pack_main([str(src), str(dst), "--quiet"])
    assert "5 videos, 16 frames packed, 7 skipped" in capsys.readouterr().out
    pack_main(["--verify", str(dst)])
    assert "matches" in capsys.readouterr().out
    assert json.loads((dst / INDEX).read_text())["source"] == str(src)


def _journal(dst: Path) -> list[dict]:
    return [json.loads(line) for line in (dst / JOURNAL).read_text().splitlines()]
