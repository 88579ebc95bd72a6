"""Packed format: npz videos converted once into raw, memory-mappable files.

Layout of a packed directory::

    index.json            the finished index (written last; its presence marks a packed directory)
    journal.jsonl         one line per packed video, appended as packing goes (resume state)
    images_{H}x{W}.u8     every kept frame of that size, (n, H, W, 3) uint8 RGB back to back
    {label}.f32           every kept frame's label, frame-first float32: bbox (M, 4), landmarks2d
                          (M, 68, 2), landmarks3d (M, 68, 3), head_pose (M, 3), gaze (M, 3)

Each video's entry (in both files) gives its source path (relative to the source directory), frame
count, frame size, first row in its image shard and in the label files, skipped frames with their
reasons, and CRC-32 checksums of the bytes written. Skipped frames (see
:func:`~gpuaug.load.video.frame_problems`) are listed, not written.
"""

from __future__ import annotations

import argparse
import json
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from gpuaug.batch import Window, batch_windows, copy_windows, window_layout, word_bytes
from gpuaug.buffers import pixel_buffer
from gpuaug.errors import FaceDataError
from gpuaug.load.npz_source import index_video, list_videos
from gpuaug.load.sample import VideoIndex
from gpuaug.load.video import FrameProblem, read_video
from gpuaug.sample import FaceSample, label_shapes

FORMAT = "gpuaug-packed"
VERSION = 1
INDEX = "index.json"
JOURNAL = "journal.jsonl"
#: Label name (as in FaceSample / FaceVideo) -> per-frame shape; stored as float32.
LABEL_SHAPES: dict[str, tuple[int, ...]] = label_shapes(68)


def is_packed(path: str | Path) -> bool:
    """Whether ``path`` is a packed directory; raise if packing it was started but not finished."""
    path = Path(path)
    if (path / INDEX).is_file():
        return True
    if (path / JOURNAL).is_file():
        raise FaceDataError(path, "packing was not finished; run `python -m gpuaug pack` again to resume")
    return False


def _shard(frame_size: Sequence[int]) -> tuple[str, int]:
    """Image shard file name and bytes per frame for frames of (H, W)."""
    h, w = frame_size
    return f"images_{h}x{w}.u8", int(h) * int(w) * 3


def _kept(entry: dict) -> int:
    return entry["count"] - len(entry["skipped"])


def _rows(directory: Path, name: str, dtype: type, row_shape: tuple[int, ...]) -> np.memmap:
    """A packed file as a read-only (n, *row_shape) memory map."""
    return np.memmap(directory / name, dtype=dtype, mode="r").reshape(-1, *row_shape)


def _video_index(source: str, entry: dict) -> VideoIndex:
    path = str(Path(source) / entry["path"])
    skipped = tuple(FrameProblem(path, f, kind, detail) for f, kind, detail in entry["skipped"])
    bad = {p.frame for p in skipped}
    frames = np.array([f for f in range(entry["count"]) if f not in bad], dtype=np.int64)
    return VideoIndex(path, (entry["frame_size"][0], entry["frame_size"][1]), frames, skipped)


def read_index(directory: str | Path) -> dict:
    """The ``index.json`` of a packed directory, checked for format and version."""
    path = Path(directory) / INDEX
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise FaceDataError(path, f"expected a {FORMAT} v{VERSION} index, got {index.get('format')} "
                                  f"v{index.get('version')}")
    return index


class PackedSource:
    """Reads a packed directory through memory maps (opened per process, on first use)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        index = read_index(self.directory)
        self.entries: list[dict] = index["videos"]
        self.videos: list[VideoIndex] = [_video_index(index["source"], e) for e in self.entries]
        # (S, 2) int64 (H, W) of each image shard; per video (V,) int64: its shard (a row of _shard_sizes),
        # its first row in that shard and its first row in the label files.
        shards = sorted({tuple(e["frame_size"]) for e in self.entries})
        self._shard_sizes = np.array(shards, dtype=np.int64).reshape(-1, 2)
        number = {size: s for s, size in enumerate(shards)}
        self._video_shard = np.array([number[tuple(e["frame_size"])] for e in self.entries], dtype=np.int64)
        self._video_shard_row = np.array([e["shard_row"] for e in self.entries], dtype=np.int64)
        self._video_row = np.array([e["row"] for e in self.entries], dtype=np.int64)
        # File name -> frames the index says it holds (a shorter file is truncated, or not this index's).
        self._needed: dict[str, int] = {f"{k}.f32": 0 for k in LABEL_SHAPES}
        for e in self.entries:
            shard = _shard(e["frame_size"])[0]
            self._needed[shard] = max(self._needed.get(shard, 0), e["shard_row"] + _kept(e))
            for k in LABEL_SHAPES:
                self._needed[f"{k}.f32"] = max(self._needed[f"{k}.f32"], e["row"] + _kept(e))
        self._maps: dict[str, np.memmap] = {}

    def __getstate__(self) -> dict:
        # Pickling a memmap copies its data: workers re-open the files instead.
        return {**self.__dict__, "_maps": {}}

    def _map(self, name: str, dtype: type, row_shape: tuple[int, ...]) -> np.memmap:
        """File ``name`` mapped (once per process); FaceDataError naming it when it cannot be mapped or holds
        fewer frames than the index says (rows past its end would otherwise read as the last one)."""
        if name not in self._maps:
            path = self.directory / name
            try:
                rows = _rows(self.directory, name, dtype, row_shape)
            except (OSError, ValueError) as exc:  # missing, empty, or not a whole number of frames
                raise FaceDataError(path, f"cannot be read as frames of {row_shape} {np.dtype(dtype).name}: "
                                          f"{exc}; re-pack, or check it with `python -m gpuaug pack --verify`") from exc
            if len(rows) < self._needed.get(name, 0):
                raise FaceDataError(path, f"holds {len(rows)} frames but {INDEX} needs {self._needed[name]}: the "
                                          "file is truncated or the index belongs to other files; re-pack")
            self._maps[name] = rows
        return self._maps[name]

    def _images(self, shard: int) -> np.memmap:
        """Image shard number ``shard`` as (n, frame bytes) uint8."""
        name, frame_bytes = _shard(self._shard_sizes[shard])
        return self._map(name, np.uint8, (frame_bytes,))

    def _labels(self, name: str) -> np.memmap:
        return self._map(f"{name}.f32", np.float32, LABEL_SHAPES[name])

    def sample(self, video: int, position: int) -> FaceSample:
        """Usable frame number ``position`` of video ``video``; its arrays are copies, so a sample is
        writable and does not keep the files mapped."""
        shard, image_row = self._video_shard[video], self._video_shard_row[video] + position
        image = np.array(self._images(shard)[image_row]).reshape(*self._shard_sizes[shard], 3)
        row = self._video_row[video] + position
        labels = {k: np.array(self._labels(k)[row]) for k in LABEL_SHAPES}
        return FaceSample(image=image, key=(video, int(self.videos[video].frames[position])), **labels)

    def _frames(self, shard: int) -> np.ndarray:
        """Image shard number ``shard`` as an (n, H, W, 3) uint8 read-only plain array view of its memory map
        (indexing a memmap runs a Python-level ``__array_finalize__`` on every result; a plain view does not)."""
        return self._images(shard).view(np.ndarray).reshape(-1, *self._shard_sizes[shard], 3)

    def frame(self, video: int, position: int) -> np.ndarray:
        """Usable frame number ``position`` of video ``video`` as an (H, W, 3) uint8 read-only view of its
        memory map (no copy)."""
        return self._frames(self._video_shard[video])[self._video_shard_row[video] + position]

    def boxes(self, video: np.ndarray, position: np.ndarray) -> np.ndarray:
        """(B, 4) float32 boxes of samples (``video[i]``, ``position[i]``), (B,) int64 each, from the label file
        alone (no pixels read)."""
        out = np.empty((len(video), 4), dtype=np.float32)
        _take(self._labels("bbox"), self._video_row[video] + position, out)
        return out

    def gather(
        self, video: np.ndarray, position: np.ndarray, pin_memory: bool = False, window: Window | None = None,
        buffer: Callable[[int], torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Samples (``video[i]``, ``position[i]``), (B,) int64 each, copied once from the memory maps into
        one ragged buffer: every :class:`~gpuaug.FaceBatch` field but ``keys``, in sample order.

        The buffer holds the frames grouped by shard and in file order within one (reading each file
        forwards); ``offsets`` point each sample at its frame. Whole frames: one vectorised copy per shard.
        ``window`` (:data:`~gpuaug.batch.Window`: the windows, or a :class:`~gpuaug.window.ReadWindow`): only
        each frame's window, one copy per frame, and a ``windows`` field (:class:`~gpuaug.batch.WindowedBatch`).
        ``pin_memory``: every tensor page-locked. ``buffer(nbytes)``: where the pixels go (default
        :func:`~gpuaug.buffers.pixel_buffer`).
        """
        shard = self._video_shard[video]
        image_row = self._video_shard_row[video] + position
        sizes = self._shard_sizes[shard]  # (B, 2) (H, W)
        row = self._video_row[video] + position
        labels = {k: torch.empty((len(row), *shape), dtype=torch.float32, pin_memory=pin_memory)
                  for k, shape in LABEL_SHAPES.items()}
        for k, out in labels.items():
            _take(self._labels(k), row, out.numpy())
        order = np.lexsort((image_row, shard))  # buffer order: by shard, then by row
        allocate = buffer or (lambda nbytes: pixel_buffer(nbytes, pin_memory))
        fields = {"sizes": sizes}
        if window is None:
            windows = np.concatenate([np.zeros_like(sizes), sizes], 1)
            starts, fields["strides"], fields["offsets"], total = window_layout(windows, order)
            pixels = allocate(total)
            flat = pixels.numpy()
            for group in np.split(order, np.flatnonzero(np.diff(shard[order])) + 1):
                first, n, frame_bytes = starts[group[0]], len(group), 3 * int(np.prod(sizes[group[0]]))
                _take(self._images(shard[group[0]]), image_row[group], flat[first:first + n * frame_bytes])
        else:
            fields["windows"] = windows = batch_windows(window, labels["bbox"], sizes)
            starts, fields["strides"], fields["offsets"], total = window_layout(windows, order)
            pixels = allocate(word_bytes(total))
            flat = pixels.numpy()
            views = {int(k): self._frames(k) for k in np.unique(shard)}
            images = [views[k][r] for k, r in zip(shard[order].tolist(), image_row[order].tolist(), strict=True)]
            copy_windows(images, windows[order], flat, starts[order])
        layout = {k: torch.from_numpy(v) for k, v in fields.items()}
        if pin_memory:  # (B,) and (B, 2) int64: small, so pinning a copy costs little
            layout = {k: v.pin_memory() for k, v in layout.items()}
        return {"pixels": pixels, **layout, **labels}


def _take(rows: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    """``rows[index]`` written straight into ``out`` (any array of as many elements), no temporary."""
    # mode="clip": with mode="raise" numpy copies through a temporary; the indices are in range anyway.
    np.take(rows, index, axis=0, out=out.reshape(len(index), *rows.shape[1:]), mode="clip")


def _checksums(images: np.ndarray, labels: dict[str, np.ndarray]) -> dict[str, int]:
    arrays = {"images": images, **labels}
    return {k: zlib.crc32(np.ascontiguousarray(v)) for k, v in arrays.items()}


def _verify(directory: Path, entries: Sequence[dict]) -> None:
    """Re-read each video's bytes and compare with the checksums taken from its source arrays."""
    for e in entries:
        n = _kept(e)
        if n == 0:  # nothing was written (and an empty file cannot be mapped)
            continue
        shard, frame_bytes = _shard(e["frame_size"])
        written = {"images": _rows(directory, shard, np.uint8, (frame_bytes,))[e["shard_row"]:e["shard_row"] + n]}
        for k, shape in LABEL_SHAPES.items():
            written[k] = _rows(directory, f"{k}.f32", np.float32, shape)[e["row"]:e["row"] + n]
        for name, arr in written.items():
            if len(arr) != n or zlib.crc32(np.ascontiguousarray(arr)) != e["crc32"][name]:
                raise FaceDataError(directory, f"{e['path']}: packed data does not match its checksum", name)


def verify_packed(directory: str | Path) -> None:
    """Check every video of a packed directory against its checksums; raise FaceDataError on a mismatch."""
    _verify(Path(directory), read_index(directory)["videos"])


def _read_journal(dst: Path) -> list[dict]:
    """Entries of completely packed videos; a torn last line (crash mid-write) is dropped."""
    if not (dst / JOURNAL).is_file():
        return []
    entries = []
    for line in (dst / JOURNAL).read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return entries


class _Writer:
    """Appends videos to the packed files; a video's data is on disk before its journal line is."""

    def __init__(self, dst: Path, entries: Sequence[dict]) -> None:
        self.dst = dst
        self.rows: dict[str, int] = {f"{k}.f32": 0 for k in LABEL_SHAPES}  # file -> rows committed
        for e in entries:
            shard = _shard(e["frame_size"])[0]
            self.rows[shard] = max(self.rows.get(shard, 0), e["shard_row"] + _kept(e))
            for k in LABEL_SHAPES:
                self.rows[f"{k}.f32"] = max(self.rows[f"{k}.f32"], e["row"] + _kept(e))
        for name in os.listdir(dst):  # cut what a crash left after the last journalled video
            if name.endswith((".u8", ".f32")):
                os.truncate(dst / name, self.rows.get(name, 0) * _row_bytes(name))
        # Rewrite the journal without a torn last line, so that new lines start on a line of their own.
        tmp = dst / (JOURNAL + ".tmp")
        tmp.write_text("".join(json.dumps(e) + "\n" for e in entries))
        os.replace(tmp, dst / JOURNAL)
        self.journal = open(dst / JOURNAL, "a")  # noqa: SIM115 - open across videos, closed in close()

    def _append(self, name: str, data: np.ndarray) -> int:
        """Append rows to a file (flushed to disk); return the first row written."""
        first = self.rows.get(name, 0)
        if not len(data):  # a video without a usable frame creates no file
            return first
        with open(self.dst / name, "ab") as f:
            f.write(np.ascontiguousarray(data).data)
            f.flush()
            os.fsync(f.fileno())
        self.rows[name] = first + len(data)
        return first

    def add(self, rel: str, path: Path) -> dict:
        index = index_video(path)
        video = read_video(path)
        images = video.images[index.frames]
        labels = {k: getattr(video, k)[index.frames].astype(np.float32) for k in LABEL_SHAPES}
        entry = {
            "path": rel,
            "count": len(video),
            "frame_size": list(index.frame_size),
            "skipped": [[p.frame, p.kind, p.detail] for p in index.skipped],
            "source_bytes": path.stat().st_size,
            "crc32": _checksums(images, labels),
            "shard_row": self._append(_shard(index.frame_size)[0], images),
        }
        first_rows = [self._append(f"{k}.f32", v) for k, v in labels.items()]
        entry["row"] = first_rows[0]  # every label file holds the same rows
        self.journal.write(json.dumps(entry) + "\n")
        self.journal.flush()
        os.fsync(self.journal.fileno())
        return entry

    def close(self) -> None:
        self.journal.close()


def _row_bytes(name: str) -> int:
    """Bytes per frame of a packed data file, from its name."""
    if name.endswith(".f32"):
        return 4 * int(np.prod(LABEL_SHAPES[name[:-4]]))
    h, w = name[len("images_"):-len(".u8")].split("x")
    return int(h) * int(w) * 3


def pack(src: str | Path, dst: str | Path, progress: bool = True) -> dict:
    """Pack a directory of npz videos into ``dst``; resume if ``dst`` holds an unfinished (or older) pack.

    Videos already in ``dst`` are kept (their source must not have changed size); the rest are appended,
    then verified against their checksums, then ``index.json`` is written. Returns the index.
    Raises :class:`FaceDataError` for an unreadable video (fix or remove it and run again to resume).
    """
    from tqdm.auto import tqdm

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FaceDataError(src, "expected a directory of .npz videos")
    files = list_videos(src)
    rels = [p.relative_to(src).as_posix() for p in files]
    dst.mkdir(parents=True, exist_ok=True)
    done = {e["path"]: e for e in _read_journal(dst)}
    sizes = {rel: p.stat().st_size for rel, p in zip(rels, files, strict=True)}
    for rel, e in done.items():
        if sizes.get(rel) != e["source_bytes"]:
            raise FaceDataError(src / rel, f"changed or gone since it was packed into {dst}; pack into a new "
                                           "directory")
    writer = _Writer(dst, list(done.values()))
    new = []
    with tqdm(total=len(files), initial=len(done), desc="packing", unit="video", disable=not progress) as bar:
        try:
            for rel, path in zip(rels, files, strict=True):
                if rel not in done:
                    done[rel] = writer.add(rel, path)
                    new.append(done[rel])
                    bar.update()
        finally:
            writer.close()
    _verify(dst, new)
    videos = [done[rel] for rel in rels]
    index = {"format": FORMAT, "version": VERSION, "source": str(src), "frames": sum(map(_kept, videos)),
             "labels": {k: list(v) for k, v in LABEL_SHAPES.items()}, "videos": videos}
    tmp = dst / (INDEX + ".tmp")
    tmp.write_text(json.dumps(index))
    os.replace(tmp, dst / INDEX)  # atomic: readers see the old index or the new one
    return index


def pack_main(argv: Sequence[str] | None = None) -> None:
    """``python -m gpuaug pack SRC_DIR DST``: pack npz videos (resumable), or ``--verify`` a packed DST."""
    parser = argparse.ArgumentParser(prog="gpuaug pack", description=pack_main.__doc__)
    parser.add_argument("src", nargs="?", help="directory of .npz videos (searched recursively)")
    parser.add_argument("dst", help="packed output directory (re-run to resume)")
    parser.add_argument("--verify", action="store_true", help="only re-check DST against its checksums")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.verify:
        verify_packed(args.dst)
        print(f"{args.dst}: every video matches its checksums")
        return
    if args.src is None:
        parser.error("SRC_DIR is required unless --verify")
    index = pack(args.src, args.dst, progress=not args.quiet)
    skipped = sum(len(v["skipped"]) for v in index["videos"])
    print(f"{args.dst}: {len(index['videos'])} videos, {index['frames']} frames packed, {skipped} skipped "
          "(listed in index.json with their reasons)")
