"""Packed files that change under a running reader: a truncation is a FaceDataError naming the file (never a
SIGBUS), whenever it happens; a file replaced by a new one is not seen by readers that opened the old one; a file
rewritten in place is read as it is now.

The truncation cases run in a child process: before packed reads stopped using memory maps, touching a truncated
file's pages killed the process with SIGBUS, and a test must not take pytest down with it."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from seed_npz import seed_arrays, write_video

import gpuaug
from gpuaug.errors import FaceDataError
from gpuaug.load.packed import pack, verify_packed

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(30, 40), (36, 28), (44, 52)]
FRAME_BYTES = 30 * 40 * 3  # of the file the tests spoil, images_30x40.u8 (15 frames: videos 0, 3 and 6)

# Reads the packed directory argv[1] in mode argv[2], cuts images_30x40.u8 to argv[3] bytes after the first item,
# then reads on (two epochs, so the cut file is read again whatever was read ahead); exit 0 having caught a
# FaceDataError (its message on stdout), 3 when every read succeeded.
CHILD = r"""
import os, sys
import numpy as np
import gpuaug
from gpuaug.errors import FaceDataError

directory, mode, cut = sys.argv[1], sys.argv[2], int(sys.argv[3])
frames = gpuaug.FaceFrames(directory, mapped=len(sys.argv) > 4)
config = gpuaug.AugmentConfig(out_size=24)
options = {"whole": {}, "config": {"config": config}, "augment": {"augment": gpuaug.FaceAugment(config)}}


def items():
    if mode == "sample":  # FaceFrames[i]: one frame at a time
        for epoch in range(2):
            yield from (frames[i] for i in range(len(frames)))
    elif mode == "batch":  # FaceFrames.batch, as DataLoader(frames, collate_fn=gpuaug.collate) calls it
        for epoch in range(2):
            yield from (frames.batch(np.arange(i, min(i + 4, len(frames)))) for i in range(0, len(frames), 4))
    else:
        loader = gpuaug.StreamLoader(frames, 4, threads=1, in_flight=1, **options[mode])
        for epoch in range(2):
            yield from loader.batches(epoch)


read = 0
try:
    for item in items():
        if read == 0:
            os.truncate(os.path.join(directory, "images_30x40.u8"), cut)
        read += 1
except FaceDataError as exc:
    print(f"caught after {read} items: {exc}")
    sys.exit(0)
print(f"no error in {read} items")
sys.exit(3)
"""


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """7 noise videos of three frame sizes, 5 frames each (35 frames), packed."""
    root = tmp_path_factory.mktemp("truncation")
    for v in range(7):
        write_video(root / "npz" / f"v{v}.npz", seed_arrays(5, SIZES[v % 3], seed=v))
    pack(root / "npz", root / "packed", progress=False)
    return root / "packed"


def _copy(packed: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(packed, copy)
    return copy


def _run_child(directory: Path, mode: str, cut: int, mapped: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", CHILD, str(directory), mode, str(cut), *["mapped"] * mapped],
                          capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)


@pytest.mark.parametrize("mode, cut", [
    ("whole", 0), ("config", FRAME_BYTES + 100), ("augment", 5 * FRAME_BYTES + 7), ("batch", 2 * FRAME_BYTES),
    ("sample", 4096),
])
def test_truncation_while_reading_is_a_face_data_error(packed: Path, tmp_path: Path, mode: str, cut: int) -> None:
    """The image file cut (to nothing, mid-frame, at a frame boundary, at a page boundary) after the first item:
    the reader raises FaceDataError naming the file, the bytes it needed and the bytes the file holds now, and
    the process lives (it used to die of SIGBUS: exit code 135 from a shell, -7 here)."""
    copy = _copy(packed, tmp_path)
    child = _run_child(copy, mode, cut)
    assert child.returncode == 0, f"exit {child.returncode}\n{child.stdout}\n{child.stderr[-3000:]}"
    message = child.stdout
    assert str(copy / "images_30x40.u8") in message and "truncated" in message, message
    assert f"holds {cut} bytes" in message, message


def test_mapped_reads_are_the_same_batches_and_die_on_truncation(packed: Path, tmp_path: Path) -> None:
    """FaceFrames(mapped=True): the same batches (whole frames, windows, a StreamLoader with per-draw windows) from
    memory maps; and what its docs warn of: a file truncated under it kills the process with SIGBUS (-7); npz
    files are refused."""
    indices, window = [0, 3, 9, 21, 34], gpuaug.ReadWindow(gpuaug.AugmentConfig(out_size=24))
    read, mapped = gpuaug.FaceFrames(packed), gpuaug.FaceFrames(packed, mapped=True)
    for a, b in ((read.batch(indices), mapped.batch(indices)),
                 (read.batch(indices, window=window), mapped.batch(indices, window=window))):
        assert type(a) is type(b) and torch.equal(a.images, b.images) and torch.equal(a.offsets, b.offsets)
    aug = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=24))
    for (a, pa), (b, pb) in zip(gpuaug.StreamLoader(read, 8, augment=aug), gpuaug.StreamLoader(mapped, 8, augment=aug),
                                strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(pa.angle, pb.angle)  # (pad bytes: any)
    child = _run_child(_copy(packed, tmp_path), "augment", 0, mapped=True)
    assert child.returncode == -7, f"exit {child.returncode}\n{child.stdout}\n{child.stderr[-3000:]}"
    with pytest.raises(ValueError, match=r"mapped=True.*pack"):
        gpuaug.FaceFrames(packed.parent / "npz", mapped=True)


def test_file_replaced_under_a_reader_keeps_the_old_data(packed: Path, tmp_path: Path) -> None:
    """A file replaced by a new one (renamed over it, as re-packing elsewhere and moving it would), or deleted:
    a FaceFrames that has read already keeps reading the files it opened (the old data, labels included); a new
    FaceFrames reads the new files."""
    copy = _copy(packed, tmp_path)
    frames = gpuaug.FaceFrames(copy)
    everything = np.arange(len(frames))
    before = frames.batch(everything)
    for name in ("images_30x40.u8", "bbox.f32"):
        new = copy / (name + ".new")
        new.write_bytes(bytes((copy / name).stat().st_size))  # all zeros
        os.replace(new, copy / name)
    (copy / "images_36x28.u8").unlink()
    after = frames.batch(everything)
    assert torch.equal(after.pixels, before.pixels) and torch.equal(after.bbox, before.bbox)
    assert torch.equal(frames.batch(everything, window=gpuaug.ReadWindow(gpuaug.AugmentConfig(out_size=24))).bbox,
                       before.bbox)
    (copy / "images_36x28.u8").write_bytes((packed / "images_36x28.u8").read_bytes())  # a reader opens every file
    fresh = gpuaug.FaceFrames(copy)
    assert not fresh[0].image.any() and not fresh[0].bbox.any()  # video 0 is 30x40: the new, zeroed files


def test_file_rewritten_in_place_is_read_as_it_is_now(packed: Path, tmp_path: Path) -> None:
    """Bytes overwritten in place (same file, same length) are read as they are at the time of the read: pixels
    are read per batch, not kept; the labels were read whole at first use, so they stay as they were."""
    copy = _copy(packed, tmp_path)
    frames = gpuaug.FaceFrames(copy)
    before = frames.batch([0, 1])
    with open(copy / "images_30x40.u8", "r+b") as f:
        f.write(bytes(FRAME_BYTES))  # frame 0 of video 0: zeros
    after = frames.batch([0, 1])
    assert not after.frame(0).any() and torch.equal(after.frame(1), before.frame(1))
    assert torch.equal(after.bbox, before.bbox)


def test_truncated_before_first_use_is_found_at_first_use(packed: Path, tmp_path: Path) -> None:
    """A file already short when first read: FaceDataError naming it, from the length check at first use."""
    copy = _copy(packed, tmp_path)
    frames = gpuaug.FaceFrames(copy)
    os.truncate(copy / "landmarks3d.f32", 100)
    with pytest.raises(FaceDataError, match=r"landmarks3d\.f32.*truncated"):
        frames.batch([0])
    with pytest.raises(FaceDataError, match=r"landmarks3d\.f32"):
        verify_packed(copy)


def test_a_reader_pickles_without_its_open_files(packed: Path) -> None:
    """A FaceFrames that has read pickles (DataLoader workers under spawn) without its open files or labels; the
    copy opens its own and reads the same."""
    frames = gpuaug.FaceFrames(packed)
    first = frames.batch([0, 7, 14])
    clone = pickle.loads(pickle.dumps(frames))
    assert len(pickle.dumps(frames)) < 100_000
    second = clone.batch([0, 7, 14])
    assert torch.equal(first.pixels, second.pixels) and torch.equal(first.landmarks3d, second.landmarks3d)


def test_reads_without_preadv_give_the_same_batches(packed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a platform lacks ``os.preadv``, the reads fall back to ``os.pread`` and a copy: the same batches (whole
    frames, windows, single samples), and a short read is still a FaceDataError."""
    import gpuaug.load.packed as packed_module

    indices, window = [0, 3, 9, 21, 34], gpuaug.ReadWindow(gpuaug.AugmentConfig(out_size=24))
    fast = gpuaug.FaceFrames(packed)
    expected = [fast.batch(indices), fast.batch(indices, window=window), fast[9]]
    monkeypatch.setattr(packed_module, "_preadv", packed_module._pread_fallback)
    slow = gpuaug.FaceFrames(packed)
    got = [slow.batch(indices), slow.batch(indices, window=window), slow[9]]
    for a, b in zip(expected[:2], got[:2], strict=True):
        assert torch.equal(a.pixels, b.pixels) and torch.equal(a.landmarks2d, b.landmarks2d)
    assert np.array_equal(expected[2].image, got[2].image) and np.array_equal(expected[2].gaze, got[2].gaze)
    file = slow.source._open()["images_30x40.u8"]
    with pytest.raises(FaceDataError, match=r"images_30x40\.u8: holds 54000 bytes now.*truncated"):
        file.read_into(memoryview(bytearray(FRAME_BYTES)), 15 * FRAME_BYTES - 100)
