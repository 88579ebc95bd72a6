"""Packed format: npz videos converted once into raw, memory-mappable files.

Layout of a packed directory::

    index.json            the finished index (written last; its presence marks a packed directory)
    journal.jsonl         one line per packed video, appended as packing goes (resume state)
    images_{H}x{W}.u8     every kept frame of that size, (n, H, W, 3) uint8 RGB back to back
    {label}.f32           every kept frame's label, frame-first float32, for the label kinds the data set
                          has: bbox (M, 4), landmarks2d (M, K, 2), landmarks3d (M, K, 3), head_pose (M, 3),
                          gaze (M, 3); the kinds and K (one for a whole pack) in the index's "labels" shapes
                          and in each video's entry (missing labels, NaN, are kept as NaN)
    label.{name}.f32|i64  a label of your own (packed with ``--labels``), (M, ...) float32 or int64; its shape
                          and dtype in the index's "custom"

Each video's entry (in both files) gives its source path (relative to the source directory), frame
count, frame size, first row in its image shard and in the label files, skipped frames with their
reasons, and CRC-32 checksums of the bytes written. Skipped frames (see
:func:`~gpuaug.load.video.frame_problems`) are listed, not written.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from gpuaug.batch import Window, batch_windows, copy_windows, window_layout, word_bytes
from gpuaug.buffers import pixel_buffer, scratch
from gpuaug.crop import crop_boxes
from gpuaug.errors import FaceDataError
from gpuaug.load.exclude import exclude_frames, read_flags
from gpuaug.load.npz_source import index_video, list_videos
from gpuaug.load.sample import VideoIndex
from gpuaug.load.video import FaceVideo, FrameProblem, read_video
from gpuaug.sample import LABEL_FIELDS, FaceSample, label_shapes

FORMAT = "gpuaug-packed"
#: v2: the label files of the kinds a data set has (v1 packs, read as they are, hold all five, 68 points).
VERSION = 2
READABLE_VERSIONS = (1, 2)
INDEX = "index.json"
JOURNAL = "journal.jsonl"
#: Landmarks per frame of a pack whose entries do not say (packed before other layouts were taken).
SEED_LANDMARKS = 68
#: Label name (as in FaceSample / FaceVideo) -> per-frame shape (float32) of a pack of K landmarks.
LabelShapes = dict[str, tuple[int, ...]]
#: A label of your own's name -> (per-frame shape, dtype name).
CustomShapes = dict[str, tuple[tuple[int, ...], str]]


class LabelFile(NamedTuple):
    """A per-frame label file of a pack: the sample field it fills (a kind, or "labels.<name>" for a label of
    your own), its per-frame shape and its dtype."""

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype


#: The label files' dtypes as torch's.
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.int64): torch.int64}


def label_files(shapes: LabelShapes, custom: CustomShapes) -> dict[str, LabelFile]:
    """File name -> :class:`LabelFile` of a pack with these kinds (float32) and labels of your own (float32, or
    int64 for integer ones)."""
    files = {f"{k}.f32": LabelFile(k, tuple(shape), np.dtype(np.float32)) for k, shape in shapes.items()}
    for name, (shape, dtype) in custom.items():
        whole = np.dtype(dtype).kind in "iub"
        files[f"label.{name}.{'i64' if whole else 'f32'}"] = LabelFile(
            f"labels.{name}", tuple(shape), np.dtype(np.int64 if whole else np.float32))
    return files


def _landmarks(entry: dict) -> int:
    """A video entry's landmark count."""
    return int(entry.get("landmarks", SEED_LANDMARKS))


def _kinds(entry: dict) -> tuple[str, ...]:
    """A video entry's label kinds (an entry packed before kinds were optional has them all)."""
    return tuple(entry.get("kinds", LABEL_FIELDS))


def pack_shapes(kinds: Sequence[str], landmarks: int) -> LabelShapes:
    """The label files of a pack of these kinds and K: name -> per-frame shape."""
    return {k: v for k, v in label_shapes(landmarks).items() if k in kinds}


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


def _needed_rows(entries: Sequence[dict], files: Sequence[str]) -> dict[str, int]:
    """File name -> frames that ``entries`` put in it (every label file of ``files``, even with none)."""
    needed = dict.fromkeys(files, 0)
    for e in entries:
        shard = _shard(e["frame_size"])[0]
        needed[shard] = max(needed.get(shard, 0), e["shard_row"] + _kept(e))
        for name in files:
            needed[name] = max(needed[name], e["row"] + _kept(e))
    return needed


class _PackedFile:
    """One packed data file, open for reading and read with ``pread`` (never memory-mapped): a read past the
    file's end comes back short, so a file truncated after it was opened is a :class:`FaceDataError` naming it
    whenever that happens (a memory map's pages past the new end would kill the process with SIGBUS instead).

    ``row_bytes``: bytes per frame; ``rows``: frames the index says the file holds, checked at opening.
    """

    def __init__(self, path: Path, row_bytes: int, rows: int) -> None:
        self.path, self.row_bytes, self.rows = path, row_bytes, rows
        try:
            self.fd: int | None = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise FaceDataError(path, f"cannot be opened: {exc}; re-pack, or check it with `python -m gpuaug pack "
                                      "--verify`") from exc
        size = os.fstat(self.fd).st_size
        if size < rows * row_bytes:
            os.close(self.fd)
            self.fd = None
            raise FaceDataError(path, f"holds {size} bytes but {INDEX} needs {rows} frames of {row_bytes} bytes "
                                      f"({rows * row_bytes}): the file is truncated or the index belongs to other "
                                      "files; re-pack")

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        if getattr(self, "fd", None) is not None:
            _close(self.fd)

    def read_into(self, out: memoryview, offset: int) -> None:
        """File bytes ``offset .. offset + len(out)`` into ``out`` (a writable byte view), or FaceDataError."""
        try:
            n = _preadv(self.fd, [out], offset)
            if n != len(out):  # at the file's end, or a read that stopped early (one read moves at most 2 GiB)
                done = n
                while n > 0 and done < len(out):
                    n = _preadv(self.fd, [out[done:]], offset + done)
                    done += n
                if done < len(out):
                    size = os.fstat(self.fd).st_size
                    raise FaceDataError(
                        self.path, f"holds {size} bytes now, but a read needed bytes {offset}..{offset + len(out)} "
                                   f"(it held at least {self.rows} frames of {self.row_bytes} bytes when opened): the "
                                   "file was truncated while being read; re-pack, and leave a packed directory "
                                   "unchanged while it is read")
        except OSError as exc:  # e.g. EIO (a memory map would have raised SIGBUS here too)
            raise FaceDataError(self.path, f"reading bytes {offset}..{offset + len(out)} failed: {exc}") from exc

    def read_rows(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Frames ``rows`` (n,) int64 into ``out`` (contiguous, n * row_bytes bytes, any shape and dtype): one read
        per run of consecutive rows (in a sequential order, a batch's frames of one size are one read)."""
        if not len(rows):
            return
        view, rb = memoryview(out.reshape(-1).view(np.uint8)), self.row_bytes
        cuts = np.flatnonzero(np.diff(rows) != 1) + 1
        firsts, ends = [0, *cuts.tolist()], [*cuts.tolist(), len(rows)]
        for a, b, row in zip(firsts, ends, rows[firsts].tolist(), strict=True):
            self.read_into(view[a * rb:b * rb], row * rb)


def _pread_fallback(fd: int, buffers: Sequence[memoryview], offset: int) -> int:
    """``os.preadv(fd, [out], offset)`` where a platform lacks it: ``os.pread``, then a copy into ``out``."""
    out = buffers[0]
    data = os.pread(fd, len(out), offset)
    out[:len(data)] = data
    return len(data)


#: ``os.preadv`` (reads straight into the caller's buffer, without the GIL), or its stand-in.
_preadv: Callable[[int, Sequence[memoryview], int], int] = getattr(os, "preadv", _pread_fallback)


def _video_index(source: str, entry: dict, kinds: tuple[str, ...], custom: CustomShapes) -> VideoIndex:
    path = str(Path(source) / entry["path"])
    skipped = tuple(FrameProblem(path, f, kind, detail) for f, kind, detail in entry["skipped"])
    bad = {p.frame for p in skipped}
    frames = np.array([f for f in range(entry["count"]) if f not in bad], dtype=np.int64)
    return VideoIndex(path, (entry["frame_size"][0], entry["frame_size"][1]), frames, skipped,
                      _landmarks(entry) if any(k in kinds for k in ("landmarks2d", "landmarks3d")) else 0, kinds,
                      custom)


def read_index(directory: str | Path) -> dict:
    """The ``index.json`` of a packed directory, checked for format and version."""
    path = Path(directory) / INDEX
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT or index.get("version") not in READABLE_VERSIONS:
        raise FaceDataError(path, f"expected a {FORMAT} index of version {' or '.join(map(str, READABLE_VERSIONS))}, "
                                  f"got {index.get('format')} v{index.get('version')}")
    return index


class PackedSource:
    """Reads a packed directory: pixels with ``pread`` into the caller's buffer (or copied from memory maps with
    ``mapped=True``), labels from memory.

    Files are opened per process, all at once, on first use, and their lengths checked against the index then.
    Pixels are read for every batch from the open files (no memory map), so a file truncated later, even in the
    middle of a batch, is a :class:`FaceDataError` naming it and the bytes it holds, never a SIGBUS. The label
    files are read whole into memory at the first batch (1.4 KB a frame; single samples read their rows alone
    until then). A file replaced after opening (a new file renamed over it, or deleted) is not seen: the open
    files keep giving the old data; one rewritten in place gives its pixels as they are at each read.

    ``mapped=True`` copies the pixels of each batch from memory maps of the image files instead: faster for
    windows (only the window's bytes are touched; ``pread`` reads a narrow window's whole rows, then copies its
    columns), at a price: a file truncated after it was mapped kills the process with SIGBUS when a copy touches
    a page past its new end, which nothing in Python can catch. For data that nothing writes while it is read.
    :meth:`frame` maps a file in either mode (a view without a copy).
    """

    def __init__(self, directory: str | Path, mapped: bool = False) -> None:
        self.directory = Path(directory)
        self.mapped = mapped
        index = read_index(self.directory)
        self.entries: list[dict] = index["videos"]
        kinds = tuple(k for k in LABEL_FIELDS if k in index["labels"])
        custom = {name: (tuple(c["shape"]), c["dtype"]) for name, c in index.get("custom", {}).items()}
        self.videos: list[VideoIndex] = [_video_index(index["source"], e, kinds, custom) for e in self.entries]
        # (S, 2) int64 (H, W) of each image shard; per video (V,) int64: its shard (a row of _shard_sizes),
        # its first row in that shard and its first row in the label files.
        shards = sorted({tuple(e["frame_size"]) for e in self.entries})
        self._shard_sizes = np.array(shards, dtype=np.int64).reshape(-1, 2)
        self._shard_names = [_shard(size)[0] for size in shards]
        number = {size: s for s, size in enumerate(shards)}
        self._video_shard = np.array([number[tuple(e["frame_size"])] for e in self.entries], dtype=np.int64)
        self._video_shard_row = np.array([e["shard_row"] for e in self.entries], dtype=np.int64)
        self._video_row = np.array([e["row"] for e in self.entries], dtype=np.int64)
        #: Label name -> per-frame shape, as the index says: the kinds the data set has, K landmarks.
        self.label_shapes: LabelShapes = {k: tuple(index["labels"][k]) for k in LABEL_FIELDS if k in index["labels"]}
        self.kinds = tuple(self.label_shapes)
        custom = {name: (tuple(c["shape"]), c["dtype"]) for name, c in index.get("custom", {}).items()}
        self.label_names = tuple(custom)
        self.label_files = label_files(self.label_shapes, custom)
        # File name -> frames the index says it holds (a shorter file is truncated, or not this index's).
        self._needed = _needed_rows(self.entries, tuple(self.label_files))
        self._setup()

    def _setup(self) -> None:
        """Per-process state: nothing opened, read or mapped yet."""
        self._files: dict[str, _PackedFile] | None = None  # every file holding a frame, opened together
        self._label_arrays: dict[str, np.ndarray] | None = None  # label name -> (n, *shape) float32, read whole
        self._maps: dict[str, np.ndarray] = {}  # image shard -> (n, H, W, 3) memory map, for frame() alone
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # Open files, labels read and maps are this process's: another process (a DataLoader worker) opens its own.
        return {k: v for k, v in self.__dict__.items() if k not in ("_files", "_label_arrays", "_maps", "_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()

    def _open(self) -> dict[str, _PackedFile]:
        """Every file holding a frame, opened together on first use (so a file replaced after that is replaced
        for none of them) and its length checked; FaceDataError naming a missing or short one."""
        if self._files is None:
            with self._lock:
                if self._files is None:
                    self._files = {name: _PackedFile(self.directory / name, _row_bytes(name, self.label_files), rows)
                                   for name, rows in self._needed.items() if rows > 0}
        return self._files

    def _labels(self) -> dict[str, np.ndarray]:
        """Label key (a kind, or "labels.<name>") -> every frame's label, (n, *shape), read whole on first use."""
        if self._label_arrays is None:
            files = self._open()
            with self._lock:
                if self._label_arrays is None:
                    arrays = {}
                    for name, f in self.label_files.items():
                        arrays[f.key] = np.empty((self._needed[name], *f.shape), dtype=f.dtype)
                        if len(arrays[f.key]):
                            files[name].read_into(memoryview(arrays[f.key]).cast("B"), 0)
                    self._label_arrays = arrays
        return self._label_arrays

    def sample(self, video: int, position: int) -> FaceSample:
        """Usable frame number ``position`` of video ``video``; its arrays are copies, so a sample is
        writable and refers to no file."""
        files = self._open()
        shard, image_row = self._video_shard[video], self._video_shard_row[video] + position
        image = np.empty((*self._shard_sizes[shard], 3), dtype=np.uint8)
        files[self._shard_names[shard]].read_rows(np.array([image_row]), image)
        row = self._video_row[video] + position
        if self._label_arrays is not None:
            labels = {k: v[row].copy() for k, v in self._label_arrays.items()}
        else:  # one frame: its rows alone, not the whole files
            labels = {}
            for name, f in self.label_files.items():
                labels[f.key] = np.empty(f.shape, dtype=f.dtype)
                files[name].read_rows(np.array([row]), labels[f.key])
        custom = {k.removeprefix("labels."): labels.pop(k) for k in list(labels) if k.startswith("labels.")}
        return FaceSample(image=image, key=(video, int(self.videos[video].frames[position])), labels=custom, **labels)

    def frame(self, video: int, position: int) -> np.ndarray:
        """Usable frame number ``position`` of video ``video`` as an (H, W, 3) uint8 read-only view of its file's
        memory map (no copy). A mapped read: touching the view after its file was truncated past it kills the
        process with SIGBUS (any memory map does); :meth:`sample` reads a copy safely."""
        shard = int(self._video_shard[video])
        return self._frames(shard)[self._video_shard_row[video] + position]

    def _frames(self, shard: int) -> np.ndarray:
        """Image shard number ``shard`` as an (n, H, W, 3) uint8 read-only memory map (mapped once per process,
        after the length check of opening)."""
        name = self._shard_names[shard]
        if name not in self._maps:
            self._open()  # the length check
            shape = (self._needed[name], *self._shard_sizes[shard], 3)
            # A plain array view: indexing a memmap runs a Python-level __array_finalize__ on every result.
            self._maps[name] = np.memmap(self.directory / name, np.uint8, "r", shape=shape).view(np.ndarray)
        return self._maps[name]

    def boxes(self, video: np.ndarray, position: np.ndarray) -> np.ndarray:
        """(B, 4) float32 crop boxes (:func:`~gpuaug.crop.crop_boxes`: the box, else the annotated landmarks'
        extent, else the whole frame) of samples (``video[i]``, ``position[i]``), (B,) int64 each, from the labels
        alone (no pixels read)."""
        labels, row = self._labels(), self._video_row[video] + position
        read = {}
        for k in ("bbox", "landmarks2d"):
            if k in labels:
                read[k] = torch.empty((len(row), *self.label_shapes[k]), dtype=torch.float32)
                _take(labels[k], row, read[k].numpy())
        return crop_boxes(torch.from_numpy(self._shard_sizes[self._video_shard[video]]), **read).numpy()

    def gather(
        self, video: np.ndarray, position: np.ndarray, pin_memory: bool = False, window: Window | None = None,
        buffer: Callable[[int], torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Samples (``video[i]``, ``position[i]``), (B,) int64 each, read once into one ragged buffer: every
        :class:`~gpuaug.FaceBatch` field but ``keys``, in sample order.

        The buffer holds the frames grouped by shard and in file order within one (reading each file
        forwards); ``offsets`` point each sample at its frame. Whole frames: one ``pread`` per run of consecutive
        frames, straight into the buffer. ``window`` (:data:`~gpuaug.batch.Window`: the windows, or a
        :class:`~gpuaug.window.ReadWindow`): only each frame's window, and a ``windows`` field
        (:class:`~gpuaug.batch.WindowedBatch`): a window as wide as its frame is read straight into the buffer,
        another one's rows (whole frame rows) into this thread's scratch memory, then its columns copied.
        ``pin_memory``: every tensor page-locked. ``buffer(nbytes)``: where the pixels go (default
        :func:`~gpuaug.buffers.pixel_buffer`). A file truncated since it was opened: FaceDataError naming it
        (``mapped``: SIGBUS, see the class docstring).
        """
        files, all_labels = self._open(), self._labels()
        shard = self._video_shard[video]
        image_row = self._video_shard_row[video] + position
        sizes = self._shard_sizes[shard]  # (B, 2) (H, W)
        row = self._video_row[video] + position
        labels = {f.key: torch.empty((len(row), *f.shape), dtype=TORCH_DTYPES[f.dtype], pin_memory=pin_memory)
                  for f in self.label_files.values()}
        for k, out in labels.items():
            _take(all_labels[k], row, out.numpy())
        custom = {k.removeprefix("labels."): labels.pop(k) for k in list(labels) if k.startswith("labels.")}
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
                out = flat[first:first + n * frame_bytes]
                if self.mapped:
                    _take(self._frames(shard[group[0]]).reshape(-1, frame_bytes), image_row[group], out)
                else:
                    files[self._shard_names[shard[group[0]]]].read_rows(image_row[group], out)
        else:
            boxes = crop_boxes(torch.from_numpy(sizes), labels.get("bbox"), labels.get("landmarks2d"))
            fields["windows"] = windows = batch_windows(window, boxes, sizes)
            starts, fields["strides"], fields["offsets"], total = window_layout(windows, order)
            pixels = allocate(word_bytes(total))
            if self.mapped:
                maps = {int(k): self._frames(k) for k in np.unique(shard)}
                images = [maps[k][r] for k, r in zip(shard[order].tolist(), image_row[order].tolist(), strict=True)]
                copy_windows(images, windows[order], pixels.numpy(), starts[order])
            else:
                _read_windows([files[self._shard_names[k]] for k in shard[order].tolist()], image_row[order],
                              sizes[order], windows[order], pixels.numpy(), starts[order])
        layout = {k: torch.from_numpy(v) for k, v in fields.items()}
        if pin_memory:  # (B,) and (B, 2) int64: small, so pinning a copy costs little
            layout = {k: v.pin_memory() for k, v in layout.items()}
        return {"pixels": pixels, **layout, **labels, "labels": custom}


def _read_windows(files: Sequence[_PackedFile], rows: np.ndarray, sizes: np.ndarray, windows: np.ndarray,
                  flat: np.ndarray, starts: np.ndarray) -> None:
    """The window ``windows[i]`` [top, left, height, width] of frame ``rows[i]`` of ``files[i]`` (its frames
    (H, W) ``sizes[i]``) into ``flat[starts[i]:]``, rows back to back, in the order given.

    A frame's window rows are one span of the file; a window as wide as the frame is read straight into ``flat``,
    another's span into scratch memory (this thread's, reused) and its columns copied from there with
    ``numpy.copyto`` (without the GIL, as ``pread`` is): a ``pread`` per window row, or one scattering into
    ``flat`` and a junk buffer, costs more than the span's extra bytes (measured: docs/loader.md, "Packed files
    that change under a reader").
    """
    widths = sizes[:, 1]
    narrow = windows[:, 3] < widths
    span = int((windows[narrow, 2] * widths[narrow]).max(initial=0)) * 3
    stage = scratch("packed-window-rows", (span,), torch.uint8).numpy()
    staged, out = memoryview(stage), memoryview(flat)
    for file, row, frame_w, (top, left, h, w), start in zip(files, rows.tolist(), widths.tolist(), windows.tolist(),
                                                            starts.tolist(), strict=True):
        offset = file.row_bytes * row + 3 * frame_w * top
        if w == frame_w:
            file.read_into(out[start:start + 3 * h * w], offset)
        else:
            file.read_into(staged[:3 * h * frame_w], offset)
            np.copyto(flat[start:start + 3 * h * w].reshape(h, w, 3),
                      stage[:3 * h * frame_w].reshape(h, frame_w, 3)[:, left:left + w])


def _take(rows: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    """``rows[index]`` written straight into ``out`` (any array of as many elements), no temporary."""
    # mode="clip": with mode="raise" numpy copies through a temporary; the indices are in range anyway.
    np.take(rows, index, axis=0, out=out.reshape(len(index), *rows.shape[1:]), mode="clip")


def _checksums(images: np.ndarray, labels: dict[str, np.ndarray]) -> dict[str, int]:
    arrays = {"images": images, **labels}
    return {k: zlib.crc32(np.ascontiguousarray(v)) for k, v in arrays.items()}


def _verify(directory: Path, entries: Sequence[dict], files_of: dict[str, LabelFile]) -> None:
    """Re-read each video's bytes (with ``pread``, so a file truncated meanwhile is a FaceDataError, not a
    SIGBUS) and compare with the checksums taken from its source arrays."""
    needed = _needed_rows(entries, tuple(files_of))
    files: dict[str, _PackedFile] = {}

    def crc(name: str, first: int, n: int) -> int:
        """CRC-32 of frames ``first .. first + n`` of file ``name``, read about 32 MB at a time."""
        if name not in files:  # opened once; FaceDataError if shorter than the entries need
            files[name] = _PackedFile(directory / name, _row_bytes(name, files_of), needed[name])
        file, value = files[name], 0
        step = max(1, (32 << 20) // file.row_bytes)
        out = np.empty(min(n, step) * file.row_bytes, dtype=np.uint8)
        for row in range(first, first + n, step):
            part = out[:min(step, first + n - row) * file.row_bytes]
            file.read_rows(np.arange(row, row + len(part) // file.row_bytes), part)
            value = zlib.crc32(part, value)
        return value

    for e in entries:
        n = _kept(e)
        if n == 0:  # nothing was written (and maybe no file was made)
            continue
        written = {"images": crc(_shard(e["frame_size"])[0], e["shard_row"], n)}
        for name, f in files_of.items():
            written[f.key] = crc(name, e["row"], n)
        for name, value in written.items():
            if value != e["crc32"][name]:
                raise FaceDataError(directory, f"{e['path']}: packed data does not match its checksum", name)


def verify_packed(directory: str | Path) -> None:
    """Check every video of a packed directory against its checksums; raise FaceDataError on a mismatch."""
    index = read_index(directory)
    custom = {name: (tuple(c["shape"]), c["dtype"]) for name, c in index.get("custom", {}).items()}
    _verify(Path(directory), index["videos"], label_files({k: tuple(v) for k, v in index["labels"].items()}, custom))


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

    def __init__(self, dst: Path, entries: Sequence[dict], shapes: LabelShapes, custom: CustomShapes) -> None:
        self.dst, self.shapes, self.custom = dst, shapes, custom
        self.files = label_files(shapes, custom)
        self.rows = _needed_rows(entries, tuple(self.files))  # file -> rows committed
        self.frames = sum(map(_kept, entries))  # frames committed: the next video's first label row
        for name in os.listdir(dst):  # cut what a crash left after the last journalled video
            if name.endswith((".u8", ".f32")):
                os.truncate(dst / name, self.rows.get(name, 0) * _row_bytes(name, self.files))
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

    def add(self, item: PackItem) -> dict:
        path, index = item.path, item.index()
        kinds, landmarks = tuple(self.shapes), _shape_landmarks(self.shapes)
        if index.custom != self.custom:
            raise FaceDataError(path, f"has the labels of your own {index.custom}, but this pack holds {self.custom}")
        if index.kinds != kinds:
            raise FaceDataError(path, f"has the labels {', '.join(index.kinds) or 'none'}, but this pack holds "
                                      f"{', '.join(kinds) or 'none'}: one pack holds one set of label kinds")
        if index.landmarks != landmarks:
            raise FaceDataError(path, f"has {index.landmarks} landmarks per frame, but this pack holds "
                                      f"{landmarks}: one pack holds one layout")
        video = item.read()
        images = video.images[index.frames]
        labels = {k: getattr(video, k)[index.frames].astype(np.float32) for k in kinds}
        labels |= {f"labels.{k}": v[index.frames] for k, v in video.labels.items()}
        entry = {
            "path": item.rel,
            "count": len(video),
            "frame_size": list(index.frame_size),
            "landmarks": index.landmarks,
            "kinds": list(kinds),
            "custom": sorted(self.custom),
            "skipped": [[p.frame, p.kind, p.detail] for p in index.skipped],
            "source_bytes": item.size,
            "crc32": _checksums(images, labels),
            "shard_row": self._append(_shard(index.frame_size)[0], images),
        }
        for name, f in self.files.items():  # every label file holds the same rows, one per kept frame
            self._append(name, labels[f.key])
        entry["row"], self.frames = self.frames, self.frames + len(images)
        self.journal.write(json.dumps(entry) + "\n")
        self.journal.flush()
        os.fsync(self.journal.fileno())
        return entry

    def close(self) -> None:
        self.journal.close()


def _row_bytes(name: str, files: dict[str, LabelFile]) -> int:
    """Bytes per frame of a packed data file, from its name (a label file: its :class:`LabelFile`)."""
    if name in files:
        return files[name].dtype.itemsize * int(np.prod(files[name].shape))
    h, w = name[len("images_"):-len(".u8")].split("x")
    return int(h) * int(w) * 3


def _shape_landmarks(shapes: LabelShapes) -> int:
    """K of a pack's label shapes (0 without landmarks)."""
    return next((shapes[k][0] for k in ("landmarks2d", "landmarks3d") if k in shapes), 0)


class PackItem(NamedTuple):
    """One video to pack: its name in the index (``rel``, unique), the file errors name, its source's bytes (a
    resumed pack checks them), and how to index and read it."""

    rel: str
    path: Path
    size: int
    index: Callable[[], VideoIndex]
    read: Callable[[], FaceVideo]


def npz_items(src: Path, labels: Sequence[str] = ()) -> list[PackItem]:
    """The npz videos under ``src`` as :class:`PackItem` (``labels``: their labels of your own to pack too)."""
    if not src.is_dir():
        raise FaceDataError(src, "expected a directory of .npz videos")
    return [PackItem(p.relative_to(src).as_posix(), p, p.stat().st_size, partial(index_video, p, tuple(labels)),
                     partial(read_video, p, tuple(labels))) for p in list_videos(src)]


def _pack_layout(first: PackItem, done: dict[str, dict], dst: Path) -> tuple[LabelShapes, CustomShapes]:
    """The label files of a pack: the kinds, K and labels of your own of its first video (read from its labels); a
    resumed pack's videos must have the same. :meth:`_Writer.add` refuses a video of other kinds, another K or
    other labels, naming it."""
    index = first.index()
    layout = (index.kinds, index.landmarks, sorted(index.custom))
    for e in done.values():
        if (_kinds(e), _landmarks(e), e.get("custom", [])) != layout:
            raise FaceDataError(dst, f"holds videos packed with other labels than {first.path} has now (kinds, "
                                     "landmarks, labels of your own); pack into a new directory")
    return pack_shapes(index.kinds, index.landmarks), index.custom


def pack(src: str | Path, dst: str | Path, progress: bool = True, labels: Sequence[str] = (),
         exclude: str | Path | None = None) -> dict:
    """Pack a directory of npz videos into ``dst``; resume if ``dst`` holds an unfinished (or older) pack.

    ``labels``: npz fields holding labels of your own to pack too (each video must have them). ``exclude``: a
    label audit's report (``python -m gpuaug audit``): its flagged frames are not packed, and are listed with the
    skipped frames and their reasons (videos packed before, in a resumed pack, keep what they had). Videos already in
    ``dst`` are kept (their source must not have changed size); the rest are appended,
    then verified against their checksums, then ``index.json`` is written. Returns the index.
    Raises :class:`FaceDataError` for an unreadable video (fix or remove it and run again to resume).

    Args:
        src: a directory of npz videos (searched recursively).
        dst: the packed directory (made if missing; a resumed pack keeps what it holds).
        progress: a progress bar.
        labels: npz fields holding labels of your own to pack too.
        exclude: a label audit's report folder or table: its flagged frames are left out.
    """
    return pack_items(npz_items(Path(src), labels), Path(src), Path(dst), progress, exclude)


def _excluded(index: Callable[[], VideoIndex], flags: dict[tuple[str, int], str]) -> VideoIndex:
    return exclude_frames(index(), flags)


def pack_items(items: Sequence[PackItem], src: Path, dst: Path, progress: bool = True,
               exclude: str | Path | None = None) -> dict:
    """Pack ``items`` (npz videos, or the one-frame videos of annotated images) from ``src`` into ``dst``, resuming
    and excluding as :func:`pack` says."""
    from tqdm.auto import tqdm

    if exclude is not None:
        flags = read_flags(exclude)
        items = [item._replace(index=partial(_excluded, item.index, flags)) for item in items]

    dst.mkdir(parents=True, exist_ok=True)
    done = {e["path"]: e for e in _read_journal(dst)}
    sizes = {item.rel: item.size for item in items}
    for rel, e in done.items():
        if sizes.get(rel) != e["source_bytes"]:
            raise FaceDataError(src / rel, f"changed or gone since it was packed into {dst}; pack into a new "
                                           "directory")
    shapes, custom = _pack_layout(items[0], done, dst)
    writer = _Writer(dst, list(done.values()), shapes, custom)
    new = []
    with tqdm(total=len(items), initial=len(done), desc="packing", unit="video", disable=not progress) as bar:
        try:
            for item in items:
                if item.rel not in done:
                    done[item.rel] = writer.add(item)
                    new.append(done[item.rel])
                    bar.update()
        finally:
            writer.close()
    _verify(dst, new, label_files(shapes, custom))
    videos = [done[item.rel] for item in items]
    index = {"format": FORMAT, "version": VERSION, "source": str(src), "frames": sum(map(_kept, videos)),
             "labels": {k: list(v) for k, v in shapes.items()},
             "custom": {k: {"shape": list(shape), "dtype": dtype} for k, (shape, dtype) in custom.items()},
             "videos": videos}
    tmp = dst / (INDEX + ".tmp")
    tmp.write_text(json.dumps(index))
    os.replace(tmp, dst / INDEX)  # atomic: readers see the old index or the new one
    return index
