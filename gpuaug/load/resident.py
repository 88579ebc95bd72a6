"""``ResidentFrames``: one rank's share of a data set held whole in one flat buffer on a device; a batch is
an index select into it (no pixel copy, no host sync on CUDA)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from math import prod

import numpy as np
import torch
from tqdm.auto import tqdm

from gpuaug.batch import FaceBatch
from gpuaug.distributed import rank_generator
from gpuaug.load.frames import FaceFrames
from gpuaug.sample import LABEL_FIELDS, label_shapes


def meta_bytes(kinds: Sequence[str], landmarks: int) -> int:
    """Device bytes per frame besides its pixels, for the label ``kinds`` a data set has and its ``landmarks`` (K)
    points: float32 labels; int64 offset, stride, size (2) and key (2)."""
    return 4 * sum(prod(shape) for kind, shape in label_shapes(landmarks).items() if kind in kinds) + 8 * 6
#: Host bytes read per loading step (a pinned staging buffer on CUDA).
_CHUNK_BYTES = 256 * 2**20
# Extra key of the epoch order's random stream: batch numbers (the other stream keys in use, besides the stream
# loader's draws' own key, gpuaug.load.draws.DRAW_STREAM) never reach it, so the order never shares a stream with
# FaceAugment's params.
_ORDER_STREAM = 2**40


def shard_indices(n: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """(n_r,) int64 data set indices of rank ``rank`` of ``world_size``: rank, rank + W, rank + 2 W, ...
    (``DistributedSampler``'s split without shuffling, without padding)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank} of {world_size}")
    return np.arange(rank, n, world_size, dtype=np.int64)


def required_bytes(frames: FaceFrames, rank: int = 0, world_size: int = 1) -> int:
    """Device bytes :class:`ResidentFrames` needs for this rank's frames: H * W * 3 per frame plus
    :func:`meta_bytes` (from the index; no pixels read).

    Args:
        frames: the data set.
        rank: this process's rank.
        world_size: the number of ranks (each holds its shard)."""
    return _held_bytes(frames, shard_indices(len(frames), rank, world_size))


def _held_bytes(frames: FaceFrames, indices: np.ndarray) -> int:
    """Device bytes for holding the frames at ``indices`` (see :func:`required_bytes`)."""
    sizes = frames.frame_sizes(indices)
    return int((sizes[:, 0] * sizes[:, 1] * 3).sum()) + len(sizes) * meta_bytes(frames.kinds, frames.landmarks)


def epoch_order(n: int, epoch: int, seed: int, rank: int, device: torch.device) -> torch.Tensor:
    """(n,) int64 on ``device``: a permutation of range(n), the same for the same (seed, epoch, rank). Drawn on
    the CPU, copied to the device once without waiting."""
    perm = torch.randperm(n, generator=rank_generator(seed, epoch, rank, _ORDER_STREAM))
    if device.type == "cuda":
        perm = perm.pin_memory()  # so the copy below is asynchronous
    return perm.to(device, non_blocking=True)


def epoch_batches(held: int, total: int, world_size: int, batch_size: int, drop_last: bool) -> int:
    """Batches per epoch for a rank holding ``held`` of ``total`` items: every held item once (ranks can differ
    by one batch when ``world_size`` does not divide ``total``), or with ``drop_last`` full batches only, as
    many on every rank (what DDP needs): those of the smallest shard."""
    if drop_last:
        return total // world_size // batch_size
    return -(-held // batch_size)


class ResidentFrames:
    """Rank ``rank``'s frames of ``frames`` (:func:`shard_indices`), loaded once onto ``device``.

    The frames' bytes lie back to back in one flat uint8 tensor; offsets, strides, sizes, labels and keys
    are (n_r, ...) tensors on the same device. A batch (:meth:`batches`, ``resident[index]``) is a
    :class:`~gpuaug.FaceBatch` whose ``pixels`` is that whole buffer and whose other fields are index
    selects: nothing is copied per batch but the small per-sample fields, and on CUDA nothing waits for the
    device. Shards of the ranks are disjoint and together hold every frame.

    Memory: :func:`required_bytes` on ``device`` (the frames' H * W * 3 bytes plus :func:`meta_bytes` per
    frame), checked against the free memory before loading on CUDA (``MemoryError``); on the CPU the
    allocation itself fails. Loading also stages up to about 256 MiB on the host (pinned for CUDA). On
    ``"cpu"`` the buffer is ordinary memory for CPU augmentation: do not ``.to("cuda")`` its batches (each
    would copy the whole buffer); hold the frames on the GPU instead.

    Args:
        frames: the data set; packed data loads fastest (:meth:`FaceFrames.batch`).
        device: where the frames are held.
        rank: this process's rank (e.g. ``torch.distributed.get_rank()``).
        world_size: how many processes share the data set (e.g. ``torch.distributed.get_world_size()``).
        progress: a progress bar while loading; None (default) shows it on a terminal only.
        indices: hold these data set indices instead of the rank's shard (e.g. the frames of a rank's clips,
            :class:`~gpuaug.load.resident_clips.ResidentClips`); ``rank`` still keys the epoch order.

    Attributes:
        indices: (n_r,) int64 CPU: data set index of each held frame; ``resident[i]`` is ``frames[indices[i]]``.
        data: every held frame as one :class:`~gpuaug.FaceBatch` on ``device``.
    """

    def __init__(
        self,
        frames: FaceFrames,
        device: torch.device | str,
        rank: int = 0,
        world_size: int = 1,
        progress: bool | None = None,
        indices: np.ndarray | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.rank, self.world_size, self._total = rank, world_size, len(frames)
        held = shard_indices(len(frames), rank, world_size) if indices is None else np.asarray(indices, np.int64)
        if not len(held):
            raise ValueError(f"rank {rank} of {world_size} holds no frame: the data set has {len(frames)}")
        if self.device.type == "cuda":
            needed, (free, _) = _held_bytes(frames, held), torch.cuda.mem_get_info(self.device)
            if needed > free:
                raise MemoryError(f"holding rank {rank}'s frames on {self.device} needs {needed / 2**30:.2f} GiB, "
                                  f"{free / 2**30:.2f} GiB are free; use more ranks or fewer frames")
        self.indices = torch.from_numpy(held)
        self.data = _load(frames, held, self.device, progress)

    def __len__(self) -> int:
        """Frames held by this rank."""
        return len(self.indices)

    def __getitem__(self, index: torch.Tensor | Sequence[int] | slice) -> FaceBatch:
        """The held frames at positions ``index`` (B,) (data set indices ``indices[index]``), in that order.

        A host index (list, numpy, CPU tensor) is bounds-checked on the host, so an out-of-range position is
        an ``IndexError`` here, not a device-side assert that would end the CUDA context. A device tensor is
        used as it is (checking it would wait for the device)."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.int64).reshape(-1)
            if index.device.type == "cpu":
                bad = (index < -len(self)) | (index >= len(self))
                if bad.any():
                    raise IndexError(f"position {int(index[bad][0])} out of range for {len(self)} held frames")
            index = index.to(self.device, non_blocking=True)
        return self.data.select(index)

    def order(self, epoch: int, seed: int = 0) -> torch.Tensor:
        """(n_r,) int64 on the device: a permutation of the held positions, the same for the same
        (seed, epoch, rank). Drawn on the CPU, copied to the device once without waiting."""
        return epoch_order(len(self), epoch, seed, self.rank, self.device)

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches per epoch: every held frame once (``drop_last=False``; ranks can differ by one batch when
        ``world_size`` does not divide the data set), or full batches only, as many on every rank (what DDP
        needs): those of the smallest shard."""
        return epoch_batches(len(self), self._total, self.world_size, batch_size, drop_last)

    def batches(self, epoch: int, batch_size: int, seed: int = 0, drop_last: bool = False) -> Iterator[FaceBatch]:
        """One epoch of :meth:`num_batches` batches in :meth:`order`; the last may be short unless ``drop_last``."""
        order = self.order(epoch, seed)
        for b in range(self.num_batches(batch_size, drop_last)):
            yield self.data.select(order[b * batch_size:(b + 1) * batch_size])


def _load(frames: FaceFrames, indices: np.ndarray, device: torch.device, progress: bool | None) -> FaceBatch:
    """The frames at ``indices`` as one FaceBatch on ``device``, read in chunks of about ``_CHUNK_BYTES``."""
    nbytes = frames.frame_sizes(indices).prod(axis=1) * 3
    starts = np.cumsum(nbytes) - nbytes  # each frame's place in the buffer, in index order
    pixels = torch.empty(int(nbytes.sum()), dtype=torch.uint8, device=device)
    pin = device.type == "cuda"
    chunks = np.split(np.arange(len(indices)), np.flatnonzero(np.diff(starts // _CHUNK_BYTES)) + 1)
    names = [f.name for f in fields(FaceBatch)  # the labels it has; labels of your own below
             if f.name not in ("pixels", "labels") and (f.name not in LABEL_FIELDS or f.name in frames.kinds)]
    parts: list[dict[str, torch.Tensor]] = []  # per-sample fields only: each chunk's pixels are freed after use
    with tqdm(total=pixels.numel(), unit="B", unit_scale=True, desc=f"loading frames to {device}",
              disable=None if progress is None else not progress) as bar:
        for chunk in chunks:
            part = frames.batch(indices[chunk], pin_memory=pin)
            first = int(starts[chunk[0]])  # the chunk's frames fill [first, first + its bytes), in any order
            pixels[first:first + part.pixels.numel()].copy_(part.pixels, non_blocking=pin)
            parts.append({name: getattr(part, name) for name in names} | {"offsets": part.offsets + first}
                         | {f"labels.{k}": v for k, v in part.labels.items()})
            bar.update(part.pixels.numel())
    held = {name: torch.cat([p[name] for p in parts]).to(device) for name in parts[0]}
    custom = {name.removeprefix("labels."): held.pop(name) for name in list(held) if name.startswith("labels.")}
    data = FaceBatch(pixels=pixels, labels=custom, **held)
    if pin:
        # torch's caching host allocator would keep the pinned staging blocks (hundreds of MB) for good: drop
        # the last references to them, wait for the copies, and hand the free blocks back.
        del part, parts
        torch.cuda.current_stream(device).synchronize()
        if hasattr(torch._C, "_host_emptyCache"):
            torch._C._host_emptyCache()
    return data
