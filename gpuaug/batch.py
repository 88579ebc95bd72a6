"""``FaceBatch`` and ``collate``: frames of mixed sizes in one flat pixel buffer, plus their labels.

A batch's frames live back to back in one flat uint8 buffer; each sample has the offset of its first byte,
its row stride in bytes and its true (H, W). Two layouts share this one form:

- ragged (the default): rows of ``3 W`` bytes, no padding; one copy per byte from the source frames;
- padded: every frame in an ``Hmax x Wmax`` slot (rows of ``3 Wmax`` bytes), what ``collate`` did before;
  kept for comparison and for code that wants a dense ``(B, Hmax, Wmax, 3)`` tensor.

Kernels address a tap as ``pixels[offset + y * stride + 3 x + channel]``, so they read either layout, and a
data set held whole on a device (:mod:`gpuaug.load.resident`) hands out batches that point into its buffer.
A :class:`WindowedBatch` holds only a window of each frame (:mod:`gpuaug.window`) under the same addressing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np
import torch

from gpuaug.buffers import pixel_buffer
from gpuaug.checks import check_samples
from gpuaug.crop import crop_boxes
from gpuaug.errors import BatchError
from gpuaug.inputs import ArrayLike, BoxFormat, Channels, boxes_xyxy, frames_hwc, warn_normalised
from gpuaug.sample import LABEL_FIELDS, FaceSample, label_kinds
from gpuaug.transfer import move

Layout = Literal["ragged", "padded"]
#: What a loader reads of each frame: (B, 4) int64 windows [top, left, height, width], or a callable that makes
#: them from the batch's (B, 4) float32 crop boxes (:func:`~gpuaug.crop.crop_boxes`) and (B, 2) int64 frame sizes
#: (:class:`~gpuaug.window.ReadWindow`).
Window = np.ndarray | Callable[[torch.Tensor, np.ndarray], np.ndarray]


def batch_windows(window: Window, boxes: torch.Tensor, sizes: np.ndarray) -> np.ndarray:
    """(B, 4) int64 windows of a batch with (B, 4) crop boxes ``boxes`` and (B, 2) int64 frame sizes (H, W)
    ``sizes``: ``window`` itself when it is the windows, else ``window(boxes, sizes)``.

    Given windows are checked, since a copy and the offsets computed from a window outside its frame would read
    the wrong bytes without an error: ValueError unless they are (B, 4) integers, each at least 1 x 1 and inside
    its frame."""
    if not isinstance(window, np.ndarray):
        return window(boxes, sizes)
    if window.shape != (len(sizes), 4) or not np.issubdtype(window.dtype, np.integer):
        raise ValueError(f"windows must be ({len(sizes)}, 4) integers [top, left, height, width], one per frame; got "
                         f"{window.dtype} of shape {window.shape}")
    first, extent = window[:, :2], window[:, 2:]
    bad = ((first < 0) | (extent < 1) | (first + extent > sizes)).any(1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"window {window[i].tolist()} [top, left, height, width] of sample {i} is not a non-empty "
                         f"part of its {sizes[i][0]}x{sizes[i][1]} frame")
    return window.astype(np.int64, copy=False)


@dataclass
class FaceBatch:
    """A batch of raw frames and the labels its data set has. Build one with :func:`collate`,
    :meth:`from_images` or :meth:`from_padded`.

    Labels are by keyword, float32 in source-pixel coordinates (pixel centres at integers); None when the data
    set does not have that kind (it costs nothing in the step and comes out None). A NaN marks a missing label
    (a point not annotated, a sample without its box, pose or gaze); the crop frames the box, else the
    annotated landmarks, else the whole frame (:func:`~gpuaug.crop.crop_boxes`).

    Args:
        pixels: (N,) uint8, the frames' RGB bytes back to back.
        offsets: (B,) int64, index in ``pixels`` of each frame's pixel (0, 0).
        strides: (B,) int64, bytes per row (3 W ragged, 3 Wmax padded).
        sizes: (B, 2) int64, each frame's true (H, W).
        keys: (B, 2) int64 (video, frame).
        bbox: (B, 4) [x0, y0, x1, y1].
        landmarks2d: (B, K, 2).
        landmarks3d: (B, K, 3): x, y pixels, z depth in pixel units.
        head_pose: (B, 3) [yaw, pitch, roll] degrees.
        gaze: (B, 3) [x right, y up, z toward the camera].
        labels: labels of your own by name, (B, D) float32 or (B,) int64 (:mod:`gpuaug.labels.custom`).
    """

    pixels: torch.Tensor
    offsets: torch.Tensor
    strides: torch.Tensor
    sizes: torch.Tensor
    keys: torch.Tensor = field(kw_only=True)
    bbox: torch.Tensor | None = field(default=None, kw_only=True)
    landmarks2d: torch.Tensor | None = field(default=None, kw_only=True)
    landmarks3d: torch.Tensor | None = field(default=None, kw_only=True)
    head_pose: torch.Tensor | None = field(default=None, kw_only=True)
    gaze: torch.Tensor | None = field(default=None, kw_only=True)
    labels: dict[str, torch.Tensor] = field(default_factory=dict, kw_only=True)

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    @property
    def kinds(self) -> tuple[str, ...]:
        """The label fields this batch has (not None), in :data:`~gpuaug.sample.LABEL_FIELDS` order."""
        return label_kinds(self)

    def crop_boxes(self) -> torch.Tensor:
        """(B, 4) float32: the box each sample is cropped around (:func:`~gpuaug.crop.crop_boxes`)."""
        return crop_boxes(self.sizes, self.bbox, self.landmarks2d)

    @classmethod
    def from_padded(cls, images: torch.Tensor, sizes: torch.Tensor, **labels: torch.Tensor) -> FaceBatch:
        """A batch over a dense (B, Hmax, Wmax, 3) uint8 tensor (no copy when it is contiguous); frame i is
        ``images[i, :sizes[i, 0], :sizes[i, 1]]``. ``labels``: ``keys`` and the label fields the data set has.
        Other shapes, channel orders, float images and box formats: :meth:`from_images`."""
        if images.dim() != 4 or images.shape[3] != 3 or images.dtype != torch.uint8:
            raise BatchError("images", f"from_padded takes (B, H, W, 3) uint8, found {tuple(images.shape)} "
                                       f"{images.dtype}; FaceBatch.from_images takes (B, 3, H, W) with "
                                       "channels='chw', float images in [0, 1] and lists of frames")
        b, h, w, _ = images.shape
        slot = torch.arange(b, dtype=torch.int64, device=images.device)
        return cls(pixels=images.contiguous().reshape(-1), offsets=slot * (h * w * 3),
                   strides=torch.full((b,), 3 * w, dtype=torch.int64, device=images.device), sizes=sizes, **labels)

    @classmethod
    def from_images(
        cls,
        images: ArrayLike | Sequence[ArrayLike],
        *,
        channels: Channels = "hwc",
        box_format: BoxFormat = "xyxy",
        keys: ArrayLike | None = None,
        labels: dict[str, ArrayLike] | None = None,
        **kinds: ArrayLike | None,
    ) -> FaceBatch:
        """A batch from frames as users hold them: a list of (H, W, 3) or (H, W) frames (numpy or torch, sizes
        may differ: a ragged batch), or one dense (B, H, W, 3) or (B, 3, H, W) tensor; ``channels`` names the
        order, "hwc" (default) or "chw" (torch's), and a shape that does not fit it raises naming the shape and
        the order. uint8 frames are taken as they are; float frames must lie in [0, 1] and become
        ``round(x * 255)`` (the inverse of ``x / 255``); grey frames get their one channel repeated.

        ``kinds``: the label fields the data set has (``bbox``, ``landmarks2d``, ``landmarks3d``, ``head_pose``,
        ``gaze``; (B, ...) arrays, pixels of the frame as given), on the frames' device as float32; ``bbox`` in
        ``box_format``: "xyxy" [x0, y0, x1, y1], "xywh" [x0, y0, width, height] or "cxcywh" [centre x, centre
        y, width, height]. Boxes or 2D landmarks whose coordinates all lie in [0, 1] on frames larger than a few
        pixels get a warning (normalised coordinates? pass pixels). ``keys`` (B, 2) (default (0, i)). ``labels``:
        labels of your own by name, (B, ...): float32, or int64 for integer and bool arrays.
        """
        unknown = set(kinds) - set(LABEL_FIELDS)
        if unknown:
            raise TypeError(f"unknown label fields {sorted(unknown)}; the kinds are {LABEL_FIELDS}")
        frames = frames_hwc(images, channels)
        if isinstance(frames, torch.Tensor):  # dense: every frame the tensor's size
            b, h, w, _ = frames.shape
            sizes = torch.tensor([[h, w]] * b, dtype=torch.int64)
            pixels, strides = frames.contiguous().reshape(-1), torch.full((b,), 3 * w, dtype=torch.int64)
            offsets = torch.arange(b, dtype=torch.int64) * (h * w * 3)
        else:
            b = len(frames)
            sizes = torch.tensor([tuple(f.shape[:2]) for f in frames], dtype=torch.int64)
            pixels = torch.cat([f.contiguous().reshape(-1) for f in frames])
            nbytes = sizes[:, 0] * sizes[:, 1] * 3
            offsets, strides = nbytes.cumsum(0) - nbytes, 3 * sizes[:, 1]
        device = pixels.device
        given = {k: v for k, v in kinds.items() if v is not None}
        if "bbox" in given:
            given["bbox"] = boxes_xyxy(given["bbox"], box_format)
        fields = {k: torch.as_tensor(v, dtype=torch.float32).to(device) for k, v in given.items()}
        for name in ("bbox", "landmarks2d"):
            if name in fields:
                warn_normalised(name, fields[name], sizes)
        keys = (torch.stack([torch.zeros(b, dtype=torch.int64), torch.arange(b)], 1) if keys is None
                else torch.as_tensor(keys, dtype=torch.int64))
        own = {k: own_label(torch.as_tensor(v)).to(device) for k, v in (labels or {}).items()}
        return cls(pixels=pixels, offsets=offsets.to(device), strides=strides.to(device), sizes=sizes.to(device),
                   keys=keys.to(device), labels=own, **fields)

    def held(self) -> torch.Tensor:
        """(B, 4) int64 [top, left, height, width] of the part of each frame the buffer holds: all of it."""
        zeros = torch.zeros_like(self.sizes)
        return torch.cat([zeros, self.sizes], 1)

    @property
    def images(self) -> torch.Tensor:
        """(B, Hmax, Wmax, 3) uint8, each frame at the top left and zeros beyond its size (and beyond its
        window in a :class:`WindowedBatch`) (a new tensor; reads the sizes on the host)."""
        h, w = (int(v) for v in self.sizes.amax(0).tolist()) if len(self) else (0, 0)
        dev = self.device
        y = torch.arange(h, device=dev)[None, :, None, None]
        x = torch.arange(w, device=dev)[None, None, :, None]
        c = torch.arange(3, device=dev)[None, None, None, :]
        index = self.offsets[:, None, None, None] + y * self.strides[:, None, None, None] + 3 * x + c
        top, left, height, width = (v[:, None, None, None] for v in self.held().unbind(1))
        inside = (y >= top) & (y < top + height) & (x >= left) & (x < left + width)
        return torch.where(inside, self.pixels[index.clamp(0, max(self.pixels.numel() - 1, 0))], 0)

    def frame(self, i: int) -> torch.Tensor:
        """Frame ``i`` as an (H, W, 3) uint8 view of ``pixels``."""
        h, w = (int(v) for v in self.sizes[i].tolist())
        offset, stride = int(self.offsets[i]), int(self.strides[i])
        return self.pixels.as_strided((h, w, 3), (stride, 3, 1), offset)

    def select(self, index: torch.Tensor | slice | Sequence[int]) -> FaceBatch:
        """The samples at ``index`` (in that order), sharing this batch's pixel buffer (no pixel copy)."""
        return self._map(lambda t: t[index], skip=("pixels",))

    def _map(self, fn, skip: tuple[str, ...] = ()) -> FaceBatch:
        """``fn`` of every tensor field but those in ``skip`` (absent labels stay None), and of each label of your
        own."""
        out = {f.name: fn(getattr(self, f.name)) for f in fields(self)
               if f.name not in (*skip, "labels") and getattr(self, f.name) is not None}
        return replace(self, labels={k: fn(v) for k, v in self.labels.items()}, **out)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> FaceBatch:
        """Every tensor moved to ``device`` (``non_blocking`` only for copies to an accelerator: see
        :func:`gpuaug.transfer.move`)."""
        return self._map(lambda t: move(t, device, non_blocking))

    def pin_memory(self) -> FaceBatch:
        """Page-locked copy, so ``DataLoader(pin_memory=True)`` and non-blocking H2D copies work."""
        return self._map(lambda t: t.pin_memory())


@dataclass
class WindowedBatch(FaceBatch):
    """A :class:`FaceBatch` whose buffer holds only a window of each frame (what a loader reads for a config:
    :class:`~gpuaug.window.ReadWindow`), addressed as if the whole frame were there.

    windows (B, 4) int64 [top, left, height, width]: the rows and columns held, row-major with row stride
    ``strides`` (3 * width when ragged). ``offsets`` is where pixel (0, 0) of the whole frame would be,
    ``window start - top * stride - 3 * left`` (possibly negative or inside another frame's bytes), so
    ``offset + y * stride + 3 x`` is pixel (y, x) for every pixel of the window, and ``sizes``, labels and
    matrices stay those of the whole frame: a backend renders it with unchanged maths, and bit-identical to
    the whole frames as long as the window holds every tap the matrix reads with a nonzero weight (taps the
    render weighs 0 read any byte the buffer has: they add nothing). ``images`` and :meth:`frame` give zeros
    outside the window.
    """

    windows: torch.Tensor

    def held(self) -> torch.Tensor:
        return self.windows

    def frame(self, i: int) -> torch.Tensor:
        """Frame ``i`` as an (H, W, 3) uint8 tensor, zeros outside its window (a new tensor)."""
        return self.select([i]).images[0]


def _frame_bytes(samples: Sequence[FaceSample], layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sizes (B, 2), offsets (B,), strides (B,) and total bytes of ``samples`` laid out as ``layout``."""
    sizes = np.array([s.image.shape[:2] for s in samples], dtype=np.int64).reshape(-1, 2)
    if layout == "ragged":
        nbytes = sizes[:, 0] * sizes[:, 1] * 3
        offsets = np.concatenate([[0], np.cumsum(nbytes)[:-1]]).astype(np.int64)
        return sizes, offsets, 3 * sizes[:, 1], int(nbytes.sum())
    if layout == "padded":
        h, w = sizes.max(axis=0)
        slot = int(h * w * 3)
        return sizes, np.arange(len(samples), dtype=np.int64) * slot, np.full(len(samples), 3 * w), slot * len(samples)
    raise ValueError(f"unknown layout {layout!r}; choose 'ragged' or 'padded'")


def window_layout(windows: np.ndarray, order: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(B, 4) int64 windows [top, left, height, width] -> (starts, strides, offsets) (B,) int64 and the total
    bytes of the windows back to back in ``order`` (default: sample order): the ragged layout of a
    :class:`WindowedBatch` (``offsets``: where each frame's pixel (0, 0) would be). Allocate
    :func:`word_bytes` of the total."""
    nbytes = windows[:, 2] * windows[:, 3] * 3
    order = np.arange(len(windows)) if order is None else order
    starts = np.empty_like(nbytes)
    starts[order] = np.cumsum(nbytes[order]) - nbytes[order]
    strides = 3 * windows[:, 3]
    return starts, strides, starts - windows[:, 0] * strides - 3 * windows[:, 1], int(nbytes.sum())


def word_bytes(nbytes: int) -> int:
    """``nbytes`` rounded up to whole 32-bit words: the CPU render reads such a buffer as words
    (:func:`~gpuaug.backends.gather.pixel_words`), about 1.4x faster than bytes; the pad is never read."""
    return -(-nbytes // 4) * 4


def copy_windows(images: Sequence[np.ndarray], windows: np.ndarray, flat: np.ndarray, starts: np.ndarray) -> None:
    """The window ``windows[i]`` [top, left, height, width] of each (H, W, 3) uint8 ``images[i]`` into
    ``flat[starts[i]:]``, rows back to back, in the order given. One ``numpy.copyto`` per frame (it copies
    without the GIL) and nothing else in the loop: a batch's windows differ in shape, so this is the raw copy the
    loaders do (their Python per frame is a few microseconds of a copy's tens)."""
    for image, (top, left, h, w), start in zip(images, windows.tolist(), starts.tolist(), strict=True):
        np.copyto(flat[start:start + h * w * 3].reshape(h, w, 3), image[top:top + h, left:left + w])


def own_label(value: torch.Tensor) -> torch.Tensor:
    """A label of your own as a batch holds it: float32 for floats, int64 for integers and bools (a class index
    is never rounded through a float)."""
    return value.to(torch.float32 if value.is_floating_point() else torch.int64)


def stack_label(values: Sequence[np.ndarray]) -> torch.Tensor:
    """The values of one label of your own, one per sample -> (B, ...) tensor (:func:`own_label`)."""
    return own_label(torch.from_numpy(np.stack([np.asarray(v) for v in values])))


def collate(
    samples: Sequence[FaceSample] | FaceBatch, layout: Layout = "ragged", pin_memory: bool = False,
    window: Window | None = None,
) -> FaceBatch:
    """Samples -> a :class:`FaceBatch` (one copy of each frame's bytes): a ``DataLoader``'s ``collate_fn``.

    Raises :class:`~gpuaug.errors.BatchError` naming the sample and field for a malformed sample or one with a
    bad value (an inf, nothing to crop around).

    Args:
        samples: :class:`~gpuaug.FaceSample` objects of one data set (the same label kinds), or a FaceBatch,
            which is passed through (padded first when ``layout="padded"``).
        layout: "ragged" (default) packs frames back to back; "padded" zero-pads each to the largest H and W.
        pin_memory: allocate the pixel buffer page-locked (for non-blocking copies to a GPU).
        window: ragged only (:data:`Window`, e.g. a :class:`~gpuaug.window.ReadWindow`): copy only each
            frame's window, into a :class:`WindowedBatch`.
    """
    if isinstance(samples, FaceBatch):  # FaceFrames.__getitems__ built it already (ragged)
        if window is not None:
            raise ValueError("this batch was read already, whole frames: read windows with "
                             "FaceFrames.batch(indices, window=...) or gpuaug.StreamLoader")
        if layout == "ragged":
            return samples
        labels = {name: getattr(samples, name) for name in (*samples.kinds, "keys", "labels")}
        return FaceBatch.from_padded(samples.images, samples.sizes, **labels)
    check_samples(samples)
    labels = {name: torch.from_numpy(np.stack([getattr(s, name) for s in samples]).astype(np.float32))
              for name in label_kinds(samples[0])}
    labels["labels"] = {name: stack_label([s.labels[name] for s in samples]) for name in samples[0].labels}
    keys = torch.tensor([s.key for s in samples], dtype=torch.int64).reshape(-1, 2)
    if window is not None:
        if layout != "ragged":
            raise ValueError(f"window reads are ragged; got layout={layout!r}")
        sizes = np.array([s.image.shape[:2] for s in samples], dtype=np.int64)
        windows = batch_windows(window, crop_boxes(torch.from_numpy(sizes), labels.get("bbox"),
                                                   labels.get("landmarks2d")), sizes)
        starts, strides, offsets, total = window_layout(windows)
        pixels = pixel_buffer(word_bytes(total), pin_memory)
        flat = pixels.numpy()
        copy_windows([np.asarray(s.image) for s in samples], windows, flat, starts)
        return WindowedBatch(pixels=pixels, offsets=torch.from_numpy(offsets), strides=torch.from_numpy(strides),
                             sizes=torch.from_numpy(sizes), keys=keys, windows=torch.from_numpy(windows), **labels)
    sizes, offsets, strides, total = _frame_bytes(samples, layout)
    pixels = pixel_buffer(total, pin_memory)
    if layout == "padded":
        pixels.zero_()
    flat = pixels.numpy()
    for s, o, st in zip(samples, offsets, strides, strict=True):
        h, w = s.image.shape[:2]
        np.lib.stride_tricks.as_strided(flat[o:], (h, w, 3), (int(st), 3, 1), writeable=True)[...] = s.image
    return FaceBatch(
        pixels=pixels,
        offsets=torch.from_numpy(offsets),
        strides=torch.from_numpy(strides.astype(np.int64)),
        sizes=torch.from_numpy(sizes),
        keys=keys,
        **labels,
    )
