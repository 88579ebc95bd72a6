"""The label audit: faults planted at known frames of the synthetic data set are found by the check meant for
them, clean frames are not flagged; the report holds a table, a summary and contact sheets; FaceFrames and the
packer leave the flagged frames out with the audit's reasons."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

import gpuaug
from gpuaug.audit.cli import main as audit_main
from gpuaug.audit.run import score_frames
from gpuaug.datasets import read_300w
from gpuaug.labels.flip_tables import FLIP_TABLES
from gpuaug.load.exclude import TABLE, read_flags, video_key
from gpuaug.load.packed import pack
from gpuaug.synth.write import write_dataset

FRAMES = 16


def _plant(directory: Path) -> dict[tuple[str, int], set[str]]:
    """Synthetic videos with one fault each at a known frame; (video path, frame) -> the checks that must flag."""
    paths = write_dataset(directory, videos=7, frames=FRAMES, seed=3)
    planted: dict[tuple[str, int], set[str]] = {}

    def edit(v: int, frame: int, checks: set[str], change) -> None:
        arrays = dict(np.load(paths[v]))
        change(arrays, frame)
        np.savez_compressed(paths[v], **arrays)
        planted[(video_key(paths[v]), frame)] = checks

    def flip_yaw(a, f):
        f = int(np.argmax(np.abs(a["headPose"][0])))  # the most turned frame: a sign error there is large
        assert abs(a["headPose"][0, f]) > 15
        a["headPose"][0, f] *= -1
        planted[(video_key(paths[0]), f)] = {"pose"}

    arrays = dict(np.load(paths[0]))
    flip_yaw(arrays, 0)
    np.savez_compressed(paths[0], **arrays)
    table = list(FLIP_TABLES["ibug68"])
    edit(1, 5, {"pose"}, lambda a, f: [a.__setitem__(k, _swap(a[k], f, table)) for k in ("landmarks2D",
                                                                                        "landmarks3D")])
    edit(2, 7, {"box"}, lambda a, f: a["boundingBox"][..., f].__iadd__(
        1.5 * (a["boundingBox"][2, 0, f] - a["boundingBox"][0, 0, f])))
    edit(4, 12, {"xy3d"}, lambda a, f: a["landmarks3D"][:, :2, f].__iadd__(12.0))
    edit(5, 8, {"empty"}, lambda a, f: a["colorImages"][..., f].__setitem__(Ellipsis, 90))
    edit(5, 4, {"duplicate"}, lambda a, f: a["colorImages"][..., f].__setitem__(Ellipsis, a["colorImages"][..., 3]))

    def jump(a, f):
        width = a["boundingBox"][2, 0, f] - a["boundingBox"][0, 0, f]
        for k in ("boundingBox", "landmarks2D", "landmarks3D"):
            a[k][:, 0, f] += 1.0 * width  # the whole face's labels move right for one frame, and back
    edit(3, 10, {"jump"}, jump)
    planted[(video_key(paths[3]), 11)] = {"jump"}  # coming back is a jump too
    return planted


def _swap(points: np.ndarray, frame: int, table: list[int]) -> np.ndarray:
    points = points.copy()
    points[..., frame] = points[table, :, frame]
    return points


def test_planted_faults_found_and_clean_frames_pass(tmp_path: Path) -> None:
    planted = _plant(tmp_path / "data")
    audit_main([str(tmp_path / "data"), "--out", str(tmp_path / "report"), "--quiet", "--batch", "20"])
    with open(tmp_path / "report" / TABLE, newline="") as f:
        rows = {(video_key(r["video"]), int(r["frame"])): r for r in csv.DictReader(f)}
    assert len(rows) == 7 * FRAMES
    flagged = {key for key, r in rows.items() if r["flagged"] == "1"}
    assert flagged == set(planted), (flagged ^ set(planted), {k: rows[k]["reasons"] for k in flagged ^ set(planted)})
    for key, checks in planted.items():
        assert {c for c in checks if rows[key][f"{c}_flag"] == "1"} == checks, rows[key]["reasons"]
    sheets = {p.name for p in (tmp_path / "report").glob("worst_*.png")}
    assert {"worst_pose.png", "worst_box.png", "worst_xy3d.png", "worst_jump.png"} <= sheets
    assert f"frames audited, {len(planted)} flagged" in (tmp_path / "report" / "summary.txt").read_text()


def test_clean_synthetic_data_flags_nothing(tmp_path: Path, device: str) -> None:
    write_dataset(tmp_path, videos=3, frames=12, seed=1)
    scores = score_frames(gpuaug.FaceFrames(tmp_path), batch_size=7, device=device)
    assert not scores.flagged.any()
    assert np.nanmax(scores.scores["pose"]) < 0.01 and np.isnan(scores.scores["jump"]).sum() == 3


def test_exclude_leaves_flagged_frames_out(tmp_path: Path) -> None:
    """FaceFrames(exclude=) and pack(exclude=) leave out exactly the flagged frames, with the audit's reasons;
    the frames kept read the same samples as without the exclusion."""
    planted = _plant(tmp_path / "data")
    audit_main([str(tmp_path / "data"), "--out", str(tmp_path / "report"), "--quiet"])
    full = gpuaug.FaceFrames(tmp_path / "data")
    kept = gpuaug.FaceFrames(tmp_path / "data", exclude=tmp_path / "report")
    assert len(kept) == len(full) - len(planted)
    audit = [p for p in kept.skipped if p.kind == "audit"]
    assert {(video_key(p.path), p.frame) for p in audit} == set(planted) and "audit" in kept.skip_report()
    video, frame = kept.source_frames()
    index = {key: i for i, key in enumerate(zip(*full.source_frames(), strict=True))}
    for i in range(0, len(kept), 5):
        a, b = kept[i], full[index[(video[i], frame[i])]]
        assert a.key == b.key == (video[i], frame[i]) and np.array_equal(a.image, b.image)
    batch = kept.batch(np.arange(len(kept)))
    assert len(batch) == len(kept)
    pack(tmp_path / "data", tmp_path / "packed", progress=False, exclude=tmp_path / "report" / TABLE)
    packed = gpuaug.FaceFrames(tmp_path / "packed")
    assert len(packed) == len(kept) and np.array_equal(packed.source_frames()[1], kept.source_frames()[1])


def test_read_flags_refuses_other_tables(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(gpuaug.FaceDataError, match="not an audit table"):
        read_flags(tmp_path / "x.csv")
    with pytest.raises(gpuaug.FaceDataError, match="no audit table"):
        read_flags(tmp_path)


def test_audit_reads_other_formats(tmp_path: Path) -> None:
    """``--format`` audits a public set as it ships: 98 WFLW points have no mean face, so the pose and layout
    checks do not apply (NaN), the box check does."""
    from test_datasets import _wflw

    annotation, _ = _wflw(tmp_path)
    audit_main([str(annotation), "--format", "wflw", "--images", str(tmp_path / "WFLW_images"), "--out",
                str(tmp_path / "report"), "--quiet"])
    with open(tmp_path / "report" / TABLE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(r["pose"] == "" and r["layout"] == "" and r["box"] != "" for r in rows)
    assert len({r["video"] for r in rows}) == 3  # two faces of one image are two rows of their own


def test_exclusion_streams_and_images_load_in_workers(tmp_path: Path) -> None:
    """A packed set opened with exclude= streams exactly its kept frames (the stream loader's windows and
    labels equal whole-frame batches of the same indices); an image set loads through DataLoader workers."""
    from test_datasets import _w300

    planted = _plant(tmp_path / "data")
    audit_main([str(tmp_path / "data"), "--out", str(tmp_path / "report"), "--quiet"])
    pack(tmp_path / "data", tmp_path / "packed", progress=False)
    kept = gpuaug.FaceFrames(tmp_path / "packed", exclude=tmp_path / "report")
    assert len(kept) == 7 * FRAMES - len(planted)
    aug = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=32))
    seen = 0
    for batch, params in gpuaug.StreamLoader(kept, 16, augment=aug):
        index = np.arange(seen, seen + len(batch))
        a, b = aug.apply(batch, params), aug.apply(kept.batch(index), params)
        assert torch.equal(a.images, b.images) and torch.equal(a.landmarks2d, b.landmarks2d)
        assert torch.equal(batch.keys, kept.batch(index).keys)
        seen += len(batch)
    assert seen == len(kept)
    _w300(tmp_path / "w300")
    images = read_300w(tmp_path / "w300")
    loader = torch.utils.data.DataLoader(images, batch_size=3, num_workers=2, collate_fn=gpuaug.collate)
    (batch,) = list(loader)
    assert len(batch) == 3 and batch.landmarks2d.shape == (3, 68, 2)
