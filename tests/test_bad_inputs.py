"""Bad inputs, generated here: each gets a FaceDataError naming file, field, expected and got, or a
counted skip (an error under policy="error"); a fuzz of shapes and values never crashes otherwise and
never loses a frame silently."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seed_npz import seed_arrays, write_video
from torch.utils.data import DataLoader

from gpuaug import AugmentConfig, FaceAugment, FaceDataError, FaceFrames, collate, read_video

Arrays = dict[str, np.ndarray]


def _set(field: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[Arrays], None]:
    def spoil(a: Arrays) -> None:
        a[field] = make(a[field])

    return spoil


def _drop(field: str) -> Callable[[Arrays], None]:
    def spoil(a: Arrays) -> None:
        del a[field]

    return spoil


def _put(field: str, index: tuple, value: float) -> Callable[[Arrays], None]:
    def spoil(a: Arrays) -> None:
        a[field][index] = value

    return spoil


def _all_fields(make: Callable[[np.ndarray], np.ndarray]) -> Callable[[Arrays], None]:
    def spoil(a: Arrays) -> None:
        a.update({k: make(v) for k, v in a.items()})

    return spoil


# name -> (spoil the arrays in place, field named in the error or None, message pattern)
ERRORS = {
    "missing images": (_drop("colorImages"), "colorImages", r"missing \(the file has \['boundingBox'"),
    "float images": (_set("colorImages", lambda x: x / 255.0), "colorImages", "expected dtype uint8, got float64"),
    "object labels": (_set("gazeVector", lambda x: x.astype(object)), "gazeVector", "got an object array"),
    "string labels": (_set("headPose", lambda x: x.astype(str)), "headPose", "real numeric dtype, got <U"),
    "bool labels": (_set("landmarks2D", lambda x: x > 0), "landmarks2D", "real numeric dtype, got bool"),
    "grey images": (_set("colorImages", lambda x: x[:, :, 0]), "colorImages",
                    r"expected rank 4 \(H, W, 3, N\), got shape \(24, 32, 4\)"),
    "scalar label": (_set("headPose", lambda x: np.float32(0)), "headPose",
                     r"expected rank 2 \(3, N\), got shape \(\)"),
    "67 landmarks": (_set("landmarks3D", lambda x: x[:67]), "landmarks3D",
                     r"has 67 points per frame, but landmarks2D has 68"),
    "no landmarks": (lambda a: a.update(landmarks2D=a["landmarks2D"][:0], landmarks3D=a["landmarks3D"][:0]),
                     "landmarks2D", "zero landmarks"),
    "frames first": (_set("boundingBox", lambda x: np.moveaxis(x, -1, 0)), "boundingBox",
                     r"expected shape \(4, 2, N\), got \(4, 4, 2\)"),
    "zero-size frames": (_set("colorImages", lambda x: x[:0]), "colorImages", "zero-size frames"),
    "frame counts disagree": (_set("gazeVector", lambda x: x[:, :3]), None, "'gazeVector': 3"),
    "zero frames": (_all_fields(lambda x: x[..., :0]), None, "zero frames"),
}

# name -> (spoil, skip kinds expected for frames 0..3 of the 4)
SKIPS = {
    "inf landmark": (_put("landmarks3D", (7, 2, 1), np.inf), {1: "non-finite"}),
    "inf pose": (_put("headPose", (0, 3), -np.inf), {3: "non-finite"}),
    "beyond float32": (_set("gazeVector", lambda x: x.astype(np.float64) * np.array([1, 1e300, 1, 1])),
                       {1: "non-finite"}),
    "zero-size box": (_put("boundingBox", (slice(None), slice(None), 0), 5.0), {0: "degenerate-bbox"}),
    "box outside": (_set("boundingBox", lambda x: x + np.float32([0, 0, 500, 0])), {2: "bbox-outside-frame"}),
}


def _write(tmp_path: Path, spoil: Callable[[Arrays], None], name: str = "video.npz") -> Path:
    arrays = seed_arrays(4)
    spoil(arrays)
    return write_video(tmp_path / name, arrays)


@pytest.mark.parametrize("name", ERRORS)
def test_bad_field_gets_a_clear_error(tmp_path: Path, name: str) -> None:
    spoil, field, pattern = ERRORS[name]
    path = _write(tmp_path, spoil)
    for read in (FaceFrames, read_video):  # the lazy index and the full read agree
        with pytest.raises(FaceDataError, match=pattern) as info:
            read(path)
        assert info.value.path == str(path) and info.value.field == field
        assert str(path) in str(info.value)


@pytest.mark.parametrize("name", SKIPS)
def test_bad_frame_is_a_counted_skip(tmp_path: Path, name: str) -> None:
    spoil, kinds = SKIPS[name]
    path = _write(tmp_path, spoil)
    frames = FaceFrames(path)
    assert {p.frame: p.kind for p in frames.skipped} == kinds and all(p.path == str(path) for p in frames.skipped)
    assert len(frames) == 4 - len(kinds) and str(len(kinds)) in frames.skip_report()
    assert {frames.locate(i)[1] for i in range(len(frames))} == set(range(4)) - set(kinds)
    frame = next(iter(kinds))
    with pytest.raises(FaceDataError, match=f"frame {frame}: {kinds[frame]}") as info:
        FaceFrames(path, policy="error")
    assert info.value.path == str(path)


def _npz_bytes(arrays: Arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _zip_with(member: str, data: bytes) -> bytes:
    """A zip of every seed field, with ``member``'s bytes replaced by ``data``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for field, arr in seed_arrays(4).items():
            npy = io.BytesIO()
            np.save(npy, arr)
            z.writestr(f"{field}.npy", data if field == member else npy.getvalue())
    return buf.getvalue()


GOOD = _npz_bytes(seed_arrays(4))
FILES = {  # name -> (file bytes, field or None, message pattern)
    "0-byte file": (b"", None, r"empty file \(0 bytes\)"),
    "text named .npz": (b"frame,x,y\n0,1,2\n", None, "not a zip/npz archive"),
    "truncated zip": (GOOD[: len(GOOD) // 2], None, "not a zip/npz archive"),
    "member not .npy": (_zip_with("headPose", b"3,4,5"), "headPose", "without the .npy header"),
    "image header garbage": (_zip_with("colorImages", b"PK junk"), "colorImages", "unreadable .npy header"),
}


@pytest.mark.parametrize("name", FILES)
def test_bad_file_gets_a_clear_error(tmp_path: Path, name: str) -> None:
    data, field, pattern = FILES[name]
    path = tmp_path / "video.npz"
    path.write_bytes(data)
    with pytest.raises(FaceDataError, match=pattern) as info:
        FaceFrames(path)
    assert info.value.path == str(path) and info.value.field == field


def test_corrupt_pixels_fail_on_read_even_in_a_worker(tmp_path: Path) -> None:
    """The index reads only headers and labels; pixels with a bad CRC fail when decoded, as a FaceDataError
    that survives the trip from a DataLoader worker to the main process."""
    data = bytearray(GOOD)
    at = data.index(b"colorImages.npy") + 400  # inside the pixel data
    data[at] ^= 0xFF
    path = tmp_path / "video.npz"
    path.write_bytes(bytes(data))
    frames = FaceFrames(path)
    with pytest.raises(FaceDataError, match="field 'colorImages': truncated or corrupt data"):
        frames[0]
    with pytest.raises(FaceDataError, match=r"video\.npz: field 'colorImages'"):
        next(iter(DataLoader(frames, batch_size=2, collate_fn=collate, num_workers=1)))


def test_extra_fields_are_ignored(tmp_path: Path) -> None:
    """Extra fields are never read, so even one that would need pickle is harmless."""
    arrays = seed_arrays(4)
    plain = FaceFrames(write_video(tmp_path / "plain.npz", arrays))
    extra = FaceFrames(write_video(tmp_path / "extra.npz", {
        **arrays, "subjectId": np.array(["s01"]), "meta": np.array([{"a": 1}], dtype=object)}))
    for i in range(4):
        assert np.array_equal(plain[i].image, extra[i].image) and np.array_equal(plain[i].gaze, extra[i].gaze)


def test_directory_ignores_other_files(tmp_path: Path) -> None:
    write_video(tmp_path / "a" / "v.npz", seed_arrays(4))
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "a" / "frames.npy").write_bytes(b"\x93NUMPY")
    assert len(FaceFrames(tmp_path)) == 4
    (tmp_path / "no_videos").mkdir()
    (tmp_path / "no_videos" / "list.csv").write_text("a,b\n")
    with pytest.raises(FaceDataError, match=r"directory contains no \.npz files"):
        FaceFrames(tmp_path / "no_videos")
    with pytest.raises(FaceDataError, match="not a zip"):  # named explicitly: read, so it fails
        FaceFrames(tmp_path / "notes.txt")


# ----- fuzz: any shape, dtype and value either fails with FaceDataError or loses no frame silently -----

DTYPES = [np.uint8, np.int16, np.float16, np.float32, np.float64, np.bool_, np.complex64]


@st.composite
def seed_files(draw: st.DrawFn) -> tuple[Arrays, int]:
    n = draw(st.integers(0, 4))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    arrays = seed_arrays(n, (h, w), seed=draw(st.integers(0, 2**16)))
    values = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -3.0, 1e6, 1e30]) | st.floats(-20, 40)
    for field in list(arrays):
        kind = draw(st.sampled_from(["ok"] * 6 + ["dtype", "shape", "count", "missing", "values"]))
        arr = arrays[field]
        if kind == "dtype":
            arrays[field] = arr.astype(draw(st.sampled_from(DTYPES)))
        elif kind == "shape":
            shape = list(arr.shape)
            axis = draw(st.integers(0, len(shape) - 1))
            shape[axis] = draw(st.integers(0, 5))
            arrays[field] = np.zeros(shape[: draw(st.integers(0, len(shape)))] if axis == 0 else shape, arr.dtype)
        elif kind == "count":
            arrays[field] = np.resize(arr, (*arr.shape[:-1], draw(st.integers(0, 5))))
        elif kind == "missing":
            del arrays[field]
        elif kind == "values" and field != "colorImages" and arr.size:
            flat = arr.reshape(-1).copy()
            for i in draw(st.lists(st.integers(0, arr.size - 1), max_size=6)):
                flat[i] = draw(values)
            arrays[field] = flat.reshape(arr.shape)
    return arrays, n


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed_files())
def test_fuzz_read_collate_augment(case: tuple[Arrays, int]) -> None:
    arrays, n = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "fuzz.npz", arrays)
        try:
            frames = FaceFrames(path)
        except FaceDataError as exc:
            assert exc.path == str(path)
            return
        assert len(frames) + len(frames.skipped) == n  # frames in = frames out + frames skipped
        seen = []
        aug = FaceAugment(AugmentConfig(out_size=16))  # one per data set: a file has its own label kinds
        for batch in DataLoader(frames, batch_size=3, collate_fn=collate):
            out = aug(batch, torch.Generator().manual_seed(0))
            assert out.images.shape == (len(batch), 1, 16, 16) and torch.isfinite(out.images).all()
            seen += batch.keys[:, 1].tolist()
        assert sorted(seen + [p.frame for p in frames.skipped]) == list(range(n))
