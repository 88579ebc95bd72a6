"""Readers of public face data sets as they ship (300W, WFLW, 300W-LP / AFLW2000): small files in each layout
written here, read back in gpuaug's conventions, packed, streamed; malformed files named with their line; the
300W-LP angles held to 3DDFA's rotation and to the head axes Hopenet / 6DRepNet draw."""

from __future__ import annotations

from math import cos, sin
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gpuaug
from gpuaug.datasets import WFLW_ATTRIBUTES, pose_from_3ddfa, read_300w, read_300wlp, read_pts, read_wflw
from gpuaug.errors import FaceDataError
from gpuaug.labels.rotation import pose_to_matrix
from gpuaug.pack_cli import main as pack_main
from gpuaug.synth.face_model import mean_face

RNG = np.random.default_rng(0)


def _image(path: Path, h: int = 60, w: int = 80) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _points(k: int = 68) -> np.ndarray:
    return (RNG.uniform(15, 45, (k, 2)) * [1.2, 1.0]).astype(np.float32)


def _write_pts(path: Path, points: np.ndarray) -> None:
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    path.write_text(f"version: 1\nn_points:  {len(points)}\n{{\n{body}\n}}\n")


def _w300(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Three images in two folders with .pts files (1-based, as the sets ship): path -> (pixels, 0-based points)."""
    out = {}
    for rel in ("helen/a.jpg", "helen/b.png", "ibug/c.png"):
        pixels = _image(root / rel)
        points = _points()
        _write_pts((root / rel).with_suffix(".pts"), points + 1)
        out[rel] = (pixels, points)
    return out


def test_300w_reads_pts_beside_images(tmp_path: Path) -> None:
    written = _w300(tmp_path)
    frames = read_300w(tmp_path)
    assert len(frames) == 3 and frames.kinds == ("landmarks2d",) and frames.landmarks == 68
    for i, rel in enumerate(sorted(written, key=lambda r: (tmp_path / r).with_suffix(".pts"))):
        sample = frames[i]
        pixels, points = written[rel]
        if rel.endswith(".png"):  # lossless: the pixels as written
            assert np.array_equal(sample.image, pixels)
        np.testing.assert_allclose(sample.landmarks2d, points, atol=1e-3)  # 1-based in the file, 0-based here
        assert sample.bbox is None and sample.key == (i, 0)
    out = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=32))(gpuaug.collate([frames[0], frames[1]]))
    assert out.valid.all() and out.landmarks2d.shape == (2, 68, 2)


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nn_points: 68\n{\n1 2\n3 4\n", r"line 5: the file ends before '\}' \(truncated\?\): 2 of 68"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 4 5\n}\n", r"line 5: expected 'x y', got '3 4 5'"),
    ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", "n_points says 3, the file lists 2"),
    ("version: 1\n1 2\n", r"no '\{' opening the points"),
])
def test_malformed_pts_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.pts"
    path.write_text(text)
    with pytest.raises(FaceDataError, match=message) as info:
        read_pts(path)
    assert info.value.path == str(path)


def test_300w_missing_image_and_mixed_layouts(tmp_path: Path) -> None:
    _write_pts(tmp_path / "lonely.pts", _points())
    with pytest.raises(FaceDataError, match=r"lonely\.pts.*no image beside it"):
        read_300w(tmp_path)
    (tmp_path / "lonely.pts").unlink()
    _w300(tmp_path)
    _image(tmp_path / "menpo/profile.jpg")
    _write_pts(tmp_path / "menpo/profile.pts", _points(39))  # menpo's profile faces: 39 points
    with pytest.raises(FaceDataError, match=r"profile\.jpg.*39 landmarks per frame.*68"):
        read_300w(tmp_path)


def _wflw_line(points: np.ndarray, box: list[int], flags: list[int], image: str) -> str:
    return " ".join([*(f"{v:.4f}" for v in points.reshape(-1)), *map(str, box), *map(str, flags), image])


def _wflw(root: Path) -> tuple[Path, list[tuple[np.ndarray, list[int], list[int], str]]]:
    faces = [(_points(98), [10, 8, 60, 52], [0, 1, 0, 0, 1, 0], "0--Parade/0_Parade_1.jpg"),
             (_points(98), [12, 9, 58, 50], [1, 0, 0, 1, 0, 1], "0--Parade/0_Parade_1.jpg"),  # a second face
             (_points(98), [5, 5, 70, 55], [0, 0, 1, 0, 0, 0], "1--Handshaking/1_Hand_2.jpg")]
    for image in {f[3] for f in faces}:
        _image(root / "WFLW_images" / image)
    annotation = root / "list_98pt_rect_attr_train.txt"
    annotation.write_text("\n".join(_wflw_line(*f) for f in faces) + "\n")
    return annotation, faces


def test_wflw_reads_points_box_and_attributes(tmp_path: Path) -> None:
    annotation, faces = _wflw(tmp_path)
    frames = read_wflw(annotation, tmp_path / "WFLW_images")
    assert len(frames) == 3 and frames.kinds == ("bbox", "landmarks2d") and frames.landmarks == 98
    assert frames.label_names == tuple(s.name for s in WFLW_ATTRIBUTES)
    for i, (points, box, flags, _) in enumerate(faces):
        s = frames[i]
        np.testing.assert_allclose(s.landmarks2d, points, atol=1e-4)
        assert s.bbox.tolist() == box and [int(s.labels[a.name]) for a in WFLW_ATTRIBUTES] == flags
    batch = gpuaug.collate([frames[i] for i in range(3)])
    aug = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=32, flip_table="wflw98"), labels=WFLW_ATTRIBUTES)
    out = aug(batch, torch.Generator().manual_seed(0))
    assert out.valid.all() and torch.equal(out.labels["occlusion"], torch.tensor([1, 0, 0]))  # a flip keeps flags


def test_wflw_bad_line_names_file_and_line(tmp_path: Path) -> None:
    annotation, faces = _wflw(tmp_path)
    lines = annotation.read_text().splitlines()
    lines[1] = _wflw_line(faces[1][0].reshape(-1)[:195], *faces[1][1:])  # 195 numbers for 196
    annotation.write_text("\n".join(lines))
    with pytest.raises(FaceDataError, match=r"line 2: expected 207 fields .* got 206"):
        read_wflw(annotation, tmp_path / "WFLW_images")
    lines[1] = _wflw_line(*faces[1][:3], "nowhere.jpg")
    annotation.write_text("\n".join(lines))
    with pytest.raises(FaceDataError, match=r"nowhere\.jpg.*line 2"):
        read_wflw(annotation, tmp_path / "WFLW_images")


# --- 300W-LP / AFLW2000-3D -------------------------------------------------------------------------------------

def rotation_3ddfa(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """3DDFA's RotationMatrix (as face3d's angle2matrix_3ddfa transcribes it, "the same as in 3DDFA"): radians."""
    rx = np.array([[1, 0, 0], [0, cos(pitch), sin(pitch)], [0, -sin(pitch), cos(pitch)]])
    ry = np.array([[cos(yaw), 0, -sin(yaw)], [0, 1, 0], [sin(yaw), 0, cos(yaw)]])
    rz = np.array([[cos(roll), sin(roll), 0], [-sin(roll), cos(roll), 0], [0, 0, 1]])
    return rx @ ry @ rz


def draw_axis_ends(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The head axes' image ends (x, y down) that Hopenet's and 6DRepNet's ``draw_axis`` draw for 300W-LP angles in
    degrees (sixdrepnet/utils.py), unit size: rows X, Y, Z (Z out of the screen: the face's forward)."""
    pitch, yaw, roll = np.deg2rad(pitch), -np.deg2rad(yaw), np.deg2rad(roll)
    return np.array([
        [cos(yaw) * cos(roll), cos(pitch) * sin(roll) + cos(roll) * sin(pitch) * sin(yaw)],
        [-cos(yaw) * sin(roll), cos(pitch) * cos(roll) - sin(pitch) * sin(yaw) * sin(roll)],
        [sin(yaw), -cos(yaw) * sin(pitch)],
    ])


ANGLES = np.deg2rad(np.concatenate([RNG.uniform(-60, 60, (64, 3)), [[0, 40, 0], [25, 0, 0], [0, 0, -30]]]))


def test_300wlp_pose_turns_the_face_as_3ddfa_does() -> None:
    """The mean face posed with gpuaug's rotation of the converted angles lands where 3DDFA's matrix of the file's
    angles puts it in the image (its model frame: y up, z toward the camera; the image flips y)."""
    face = mean_face()  # gpuaug's frame: x right, y down, z away
    model = face * [1.0, -1.0, -1.0]  # the same face in 3DDFA's model frame
    pose = torch.from_numpy(pose_from_3ddfa(ANGLES)).double()
    ours = torch.einsum("bij,kj->bki", pose_to_matrix(pose), torch.from_numpy(face)).numpy()[..., :2]
    for i, (p, y, r) in enumerate(ANGLES):
        theirs = model @ rotation_3ddfa(p, y, r).T
        np.testing.assert_allclose(ours[i], theirs[:, :2] * [1.0, -1.0], atol=1e-4)


def test_300wlp_pose_draws_the_axes_hopenet_draws() -> None:
    """gpuaug's rotation of the converted pose has the head axes (x, y; forward = -z in gpuaug's frame) that
    draw_axis draws for the file's angles."""
    pose = torch.from_numpy(pose_from_3ddfa(ANGLES)).double()
    rotation = pose_to_matrix(pose).numpy()
    axes = np.stack([rotation[:, :2, 0], rotation[:, :2, 1], -rotation[:, :2, 2]], 1)
    expected = np.stack([draw_axis_ends(*np.rad2deg([y, p, r])) for p, y, r in ANGLES])
    np.testing.assert_allclose(axes, expected, atol=1e-5)
    # About zero: gpuaug's +yaw (toward image right) and +pitch (down) are 300W-LP's -yaw and -pitch.
    np.testing.assert_allclose(pose_from_3ddfa(np.deg2rad([[0, 40, 0], [25, 0, 0], [0, 0, -30]])),
                               [[-40, 0, 0], [0, -25, 0], [0, 0, -30]], atol=1e-4)


def _mat(path: Path, angles: np.ndarray, pt2d: np.ndarray | None, pt3d: np.ndarray | None, **extra) -> None:
    from scipy.io import savemat

    fields = {"Pose_Para": np.concatenate([angles, [10.0, 20.0, 0.0, 0.002]])[None], **extra}
    if pt2d is not None:
        fields["pt2d"] = pt2d.T.astype(np.float64)
    if pt3d is not None:
        fields["pt3d_68"] = pt3d.T.astype(np.float64)
    savemat(str(path), fields)


def test_300wlp_and_aflw2000_read_in_gpuaug_conventions(tmp_path: Path) -> None:
    pytest.importorskip("scipy")
    written = {}
    for i, rel in enumerate(("AFW/AFW_1_0.jpg", "HELEN_Flip/HELEN_2_1.jpg")):
        _image(tmp_path / "lp" / rel, 90, 90)
        pt2d = _points() + 1
        _mat((tmp_path / "lp" / rel).with_suffix(".mat"), ANGLES[i], pt2d, None, roi=np.zeros((1, 4)))
        written[rel] = (ANGLES[i], pt2d)
    frames = read_300wlp(tmp_path / "lp")
    assert frames.kinds == ("landmarks2d", "head_pose")
    for i, rel in enumerate(sorted(written)):
        angles, pt2d = written[rel]
        np.testing.assert_allclose(frames[i].landmarks2d, pt2d - 1, atol=1e-4)
        np.testing.assert_allclose(frames[i].head_pose, pose_from_3ddfa(angles), atol=1e-5)
    _image(tmp_path / "aflw/image00002.jpg", 90, 90)
    pt3d = np.concatenate([_points() + 1, RNG.uniform(-20, 20, (68, 1))], 1)
    aflw21 = np.where(RNG.uniform(size=(21, 2)) < 0.3, -1.0, RNG.uniform(10, 80, (21, 2)))  # AFLW's 21, -1: none
    _mat(tmp_path / "aflw/image00002.mat", ANGLES[5], aflw21, pt3d)
    aflw = read_300wlp(tmp_path / "aflw")
    assert aflw.kinds == ("landmarks2d", "landmarks3d", "head_pose")
    np.testing.assert_allclose(aflw[0].landmarks3d, np.concatenate([pt3d[:, :2] - 1, -pt3d[:, 2:]], 1), atol=1e-4)
    np.testing.assert_allclose(aflw[0].landmarks2d, pt3d[:, :2] - 1, atol=1e-4)  # the fitted 68, not AFLW's 21


def test_300wlp_bad_mat_files(tmp_path: Path) -> None:
    pytest.importorskip("scipy")
    from scipy.io import savemat

    _image(tmp_path / "a.jpg")
    savemat(str(tmp_path / "a.mat"), {"pt2d": np.zeros((2, 68))})
    with pytest.raises(FaceDataError, match=r"a\.mat: field 'Pose_Para': missing .*pt2d"):
        read_300wlp(tmp_path)
    savemat(str(tmp_path / "a.mat"), {"Pose_Para": np.zeros((1, 7)), "pt2d": np.zeros((2, 67))})
    with pytest.raises(FaceDataError, match=r"a\.mat: field 'pt2d': expected .* \(2, 68\)"):
        read_300wlp(tmp_path)
    (tmp_path / "a.mat").write_bytes(b"not a mat file")
    with pytest.raises(FaceDataError, match=r"a\.mat: not a readable \.mat"):
        read_300wlp(tmp_path)


# --- packing -----------------------------------------------------------------------------------------------------

def _same(a: gpuaug.FaceFrames, b: gpuaug.FaceFrames) -> None:
    assert len(a) == len(b) and a.kinds == b.kinds and a.label_names == b.label_names
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert np.array_equal(x.image, y.image) and x.key == y.key
        for k in a.kinds:
            np.testing.assert_array_equal(getattr(x, k), getattr(y, k))
        assert {k: int(v) for k, v in x.labels.items()} == {k: int(v) for k, v in y.labels.items()}


@pytest.mark.parametrize("fmt", ["300w", "wflw", "300wlp"])
def test_pack_each_format_and_stream(tmp_path: Path, fmt: str) -> None:
    """``gpuaug pack --format F`` writes what the reader reads (pixels, labels, attributes, keys); a second run
    resumes with nothing to do; the stream loader augments the pack."""
    if fmt == "300w":
        _w300(tmp_path / "src")
        src, args, reader = tmp_path / "src", [], lambda: read_300w(tmp_path / "src")
    elif fmt == "wflw":
        src, _ = _wflw(tmp_path)
        args, reader = ["--images", str(tmp_path / "WFLW_images")], lambda: read_wflw(src, tmp_path / "WFLW_images")
    else:
        pytest.importorskip("scipy")
        for i in range(3):
            _image(tmp_path / "src" / f"IBUG_{i}.jpg", 90, 90)
            _mat(tmp_path / "src" / f"IBUG_{i}.mat", ANGLES[i], _points() + 1, None)
        src, args, reader = tmp_path / "src", [], lambda: read_300wlp(tmp_path / "src")
    dst = tmp_path / "packed"
    pack_main([str(src), str(dst), "--format", fmt, "--quiet", *args])
    before = (dst / "index.json").read_text()
    pack_main([str(src), str(dst), "--format", fmt, "--quiet", *args])
    assert (dst / "index.json").read_text() == before
    packed = gpuaug.FaceFrames(dst)
    _same(reader(), packed)
    table = {"300w": "ibug68", "wflw": "wflw98", "300wlp": "ibug68"}[fmt]
    aug = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=24, flip_table=table),
                             labels=WFLW_ATTRIBUTES if fmt == "wflw" else ())
    batch, params = next(iter(gpuaug.StreamLoader(packed, 3, augment=aug)))
    assert aug.apply(batch, params).valid.all()
