"""``StreamLoader``: whole batches read by threads into recycled buffers, a few in flight, no worker processes.

Why threads: reading a packed batch is copying bytes from the page cache (numpy's copies run without the GIL),
so threads of the training process read at memory speed, while ``DataLoader`` workers would hand every batch
over through a fresh shared-memory segment (about six times slower on a 2-core machine). Why recycled buffers:
a new 100 MB buffer per batch costs more in page faults than the copy into it, and page-locking one is slower
still. Why windows: the crop needs only the face's part of each frame (:mod:`gpuaug.window`); why draw the
params here (``augment=``): one draw's window is much smaller than the window of every draw
(:mod:`gpuaug.load.draws`).

A batch goes: sampler order -> a thread reads it (labels, then each frame's window: of its draw, made with its
group's by a thread ahead of the group's reads; or the config's window; or the whole frame) into a buffer of
the loader's pool (page-locked when the device is CUDA) -> the caller's thread takes the batches in order and,
on CUDA, starts the non-blocking copies to the device; the host buffer is reused only once that copy is done
(a CUDA event) and nothing refers to it any more.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from gpuaug.augment import FaceAugment
from gpuaug.batch import FaceBatch
from gpuaug.buffers import BufferPool
from gpuaug.clip_params import CropMode
from gpuaug.clips import ClipAugment
from gpuaug.config import AugmentConfig
from gpuaug.load.clips import FaceClips
from gpuaug.load.draws import DRAW_GROUP, Augment, Draws, draw_group, frame_augment
from gpuaug.load.frames import FaceFrames
from gpuaug.load.packed import PackedSource
from gpuaug.load.resident import epoch_order
from gpuaug.params import AugmentParams
from gpuaug.window import ReadWindow

#: What a loader yields: a batch, or with ``augment=`` a batch and the params it was read for.
Item = FaceBatch | tuple[FaceBatch, AugmentParams]


class StreamLoader:
    """Batches of ``data`` (a :class:`~gpuaug.FaceFrames`, or :class:`~gpuaug.load.clips.FaceClips` for clip
    batches) for ``device``, read ahead by ``threads`` threads, ``in_flight`` batches ahead of the caller.

    Order: ``sampler`` (any: ``DistributedSampler`` for one rank's shard; its ``set_epoch`` is called) or, without
    one, every item once per epoch, shuffled by (``seed``, epoch) when ``shuffle`` (the order
    :class:`~gpuaug.ResidentFrames` uses). The last batch is short unless ``drop_last``. The same (seed, epoch)
    gives the same batches, and ``batches(epoch, start=k)`` resumes an epoch at batch k without reading the
    first k (with a sampler: where its order is a function of the epoch, as ``DistributedSampler``'s is).

    Packed data only (``python -m gpuaug pack``): npz videos are decoded, a job for ``DataLoader`` worker
    processes. What is read of each frame:

    - ``augment`` (a :class:`~gpuaug.FaceAugment`, or a :class:`~gpuaug.ClipAugment` for clips): the loader
      draws each batch's params and reads only the window THAT draw samples; it yields ``(batch, params)`` with
      params on the device, to run as ``augment.apply(batch, params)``: bit-identical to the whole frames under
      those params. The draws come in groups of :data:`~gpuaug.load.draws.DRAW_GROUP` batches, each from a
      generator seeded by (``seed``, epoch, the sampler's ``rank`` if it has one, group number)
      (:func:`~gpuaug.load.draws.draw_group`), so an epoch's draws are reproducible, resuming at batch k draws
      the same, and ranks sharing a seed draw independently; the mode (training draws or the eval framing) is
      the frame augmentation's ``training`` flag when a pass starts (call ``aug.eval()`` before a validation
      pass).
    - ``config``: the part of each frame that ANY draw of this config can sample (train draws, or the eval
      framing with ``train=False``; clips: around the clip's box, ``crop`` as in :class:`~gpuaug.ClipAugment`),
      so draw the params as usual; the batches render bit-identical to whole frames.
    - neither: whole frames.

    Both window modes yield :class:`~gpuaug.batch.WindowedBatch` batches.

    An error while reading (e.g. :class:`~gpuaug.errors.FaceDataError` naming a truncated packed file) is
    raised in the caller's thread, at the batch it belongs to.

    Args:
        data: what to read.
        batch_size: items per batch (clips: B clips of T frames each).
        shuffle: a seeded permutation per epoch (see above).
        seed: the permutation's seed, with the epoch; with ``augment``, the draws' seed too.
        sampler: any sampler instead (e.g. ``DistributedSampler``); its ``set_epoch`` is called.
        drop_last: full batches only.
        device: where batches are handed over (CUDA: from page-locked buffers, non-blocking).
        augment: draw the params here and read each draw's window; yield (batch, params) (see above).
        config: read only the window any draw of this config can sample (see above); not with ``augment``.
        train: ``config``: the window of training draws, or of the eval framing (False).
        crop: ``config`` with clips: the clip crop, as in ``ClipAugment``.
        threads: reading threads (each fills a whole batch).
        in_flight: batches read ahead of the one the caller holds.
    """

    def __init__(
        self,
        data: FaceFrames | FaceClips,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        sampler: Sequence[int] | torch.utils.data.Sampler | None = None,
        drop_last: bool = False,
        device: torch.device | str = "cpu",
        augment: Augment | None = None,
        config: AugmentConfig | None = None,
        train: bool = True,
        crop: CropMode = "mean",
        threads: int = 2,
        in_flight: int = 3,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("threads", threads), ("in_flight", in_flight)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        frames = data.frames if isinstance(data, FaceClips) else data
        if not isinstance(frames.source, PackedSource):
            raise ValueError("StreamLoader reads packed data (`python -m gpuaug pack SRC DST` once); npz videos "
                             "are decoded, which wants DataLoader worker processes: DataLoader(frames, "
                             "collate_fn=gpuaug.collate, num_workers=...)")
        if sampler is not None and shuffle:
            raise ValueError("give a sampler or shuffle=True, not both (a sampler shuffles itself)")
        if augment is not None:
            _check_augment(data, augment, config)
        self.data, self.batch_size, self.drop_last = data, batch_size, drop_last
        self.shuffle, self.seed, self.sampler = shuffle, seed, sampler
        self.device = torch.device(device)
        self.threads, self.in_flight = threads, in_flight
        self._frames = frames
        self._length = data.length if isinstance(data, FaceClips) else 1  # frames per item
        self.window = None if config is None else ReadWindow(config, train, self._length, crop)
        self.augment = augment
        # Ranks of a DistributedSampler share its seed (they must, to shard one permutation): the rank keeps
        # their draws apart.
        self._rank = int(getattr(sampler, "rank", 0))
        self.epoch = 0
        self._pin = self.device.type == "cuda"
        # Batches being read, one the caller holds, one whose device copy may still run.
        self._pool = BufferPool(in_flight + 2, pin_memory=self._pin)

    def set_epoch(self, epoch: int) -> None:
        """The epoch ``iter(loader)`` reads (as ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def order(self, epoch: int) -> np.ndarray:
        """(n,) int64 item indices of ``epoch``, in reading order."""
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        if self.shuffle:
            return epoch_order(len(self.data), epoch, self.seed, 0, torch.device("cpu")).numpy()
        return np.arange(len(self.data), dtype=np.int64)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.sampler) if self.sampler is not None else len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Item]:
        return self.batches(self.epoch)

    def _draw(self, chunks: list[np.ndarray], group: int, epoch: int, train: bool) -> Draws:
        """The draws of batches ``group * DRAW_GROUP ..`` of ``epoch`` (``chunks``: its batches' items)."""
        items = np.concatenate(chunks[group * DRAW_GROUP:(group + 1) * DRAW_GROUP])
        frames = self.data.frame_indices(items) if isinstance(self.data, FaceClips) else items
        bbox, sizes = self._frames.boxes(frames)
        return draw_group(self.augment, bbox, sizes, self.seed, epoch, group, self._rank, train)

    def _read(self, indices: np.ndarray, draws: Future[Draws] | None = None, first: int = 0) -> Item:
        """The batch of the items at ``indices``; with ``augment``, and its params (CPU): the rows of its group's
        ``draws`` from frame ``first`` on."""
        if draws is None:
            return self.data.batch(indices, pin_memory=self._pin, window=self.window, buffer=self._pool.take)
        drawn = draws.result().rows(first, first + len(indices) * self._length)
        batch = self.data.batch(indices, pin_memory=self._pin, window=drawn.windows, buffer=self._pool.take)
        return batch, drawn.params

    def batches(self, epoch: int, start: int = 0) -> Iterator[Item]:
        """Epoch ``epoch``'s batches from batch ``start`` on (none when ``start >= len(self)``), on the device,
        in order; with ``augment``, ``(batch, params)`` pairs."""
        if start < 0:
            raise ValueError(f"start must be a batch number >= 0, got {start}")
        order = self.order(epoch)
        chunks = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
            chunks.pop()
        todo = enumerate(chunks[start:], start)
        # The mode of this whole pass, fixed now: the reading threads run ahead of the caller's mode switches.
        train = self.augment is not None and frame_augment(self.augment).training
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="gpuaug-stream")
        reading: deque[Future[Item]] = deque()
        copying: deque[tuple[torch.cuda.Event, Item]] = deque()  # host batches until their copy is done
        draws: dict[int, Future[Draws]] = {}  # group number -> its draws, being made or done

        def submit(number: int, chunk: np.ndarray) -> None:
            if self.augment is None:
                reading.append(pool.submit(self._read, chunk))
                return
            group = number // DRAW_GROUP
            if group not in draws:  # the pass's first group (later ones were queued ahead, below)
                draws[group] = pool.submit(self._draw, chunks, group, epoch, train)
            draws.pop(group - 1, None)  # its reads, all queued already, hold it
            first = sum(len(c) for c in chunks[group * DRAW_GROUP:number]) * self._length  # frames before it
            reading.append(pool.submit(self._read, chunk, draws[group], first))
            # The next group's draws queued behind this group's first read: made while this group's batches are
            # read, so after the pass's first group no read waits for a draw.
            if group + 1 not in draws and (group + 1) * DRAW_GROUP < len(chunks):
                draws[group + 1] = pool.submit(self._draw, chunks, group + 1, epoch, train)

        try:
            for number, chunk in todo:
                submit(number, chunk)
                if len(reading) == self.in_flight:
                    break
            while reading:
                host = reading.popleft().result()  # a reading thread's error is raised here, in the caller
                number, chunk = next(todo, (None, None))
                if chunk is not None:
                    submit(number, chunk)
                yield self._hand_over(host, copying)
        finally:
            for future in (*reading, *draws.values()):
                future.cancel()
            pool.shutdown(wait=True)

    def _hand_over(self, host: Item, copying: deque[tuple[torch.cuda.Event, Item]]) -> Item:
        """``host`` (a batch, or a batch and its params) on the device: as it is on the CPU; on CUDA
        non-blocking copies, ``host`` kept (so its pool buffer is not refilled) until the copy is done."""
        if self.device.type != "cuda":
            return host
        if isinstance(host, tuple):  # (batch, params): the params go as one packed copy (AugmentParams.to)
            batch = (host[0].to(self.device, non_blocking=True), host[1].to(self.device, non_blocking=True))
        else:
            batch = host.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        copying.append((event, host))
        while copying and copying[0][0].query():
            copying.popleft()
        return batch


def _check_augment(data: FaceFrames | FaceClips, augment: Augment, config: AugmentConfig | None) -> None:
    """ValueError unless ``augment`` fits ``data`` (FaceAugment for frames, ClipAugment of the same T for clips)
    and no ``config`` competes with it."""
    if config is not None:
        raise ValueError("give augment= (the loader draws the params, each draw's window) or config= (the window "
                         "of every draw; you draw the params), not both")
    if isinstance(data, FaceClips):
        if not isinstance(augment, ClipAugment) or augment.length != data.length:
            raise ValueError(f"clips of T={data.length} frames need augment=ClipAugment(aug, {data.length}); got "
                             f"{type(augment).__name__}")
    elif not isinstance(augment, FaceAugment):
        raise ValueError(f"frames need augment=FaceAugment(...); got {type(augment).__name__}")
