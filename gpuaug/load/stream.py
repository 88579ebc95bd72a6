"""``StreamLoader``: whole batches read by threads into recycled buffers, a few in flight, no worker processes.

Why threads: reading a packed batch is copying bytes from the page cache (numpy's copies run without the GIL),
so threads of the training process read at memory speed, while ``DataLoader`` workers would hand every batch
over through a fresh shared-memory segment (about six times slower on a 2-core machine). Why recycled buffers:
a new 100 MB buffer per batch costs more in page faults than the copy into it, and page-locking one is slower
still. Why windows: the crop needs only the face's part of each frame (:mod:`gpuaug.window`).

A batch goes: sampler order -> a thread reads it (labels, then each frame's window or whole frame) into a
buffer of the loader's pool (page-locked when the device is CUDA) -> the caller's thread takes the batches in
order and, on CUDA, starts the non-blocking copy to the device; the host buffer is reused only once that copy
is done (a CUDA event) and nothing refers to it any more.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from gpuaug.batch import FaceBatch
from gpuaug.buffers import BufferPool
from gpuaug.clip_params import CropMode
from gpuaug.config import AugmentConfig
from gpuaug.load.clips import FaceClips
from gpuaug.load.frames import FaceFrames
from gpuaug.load.packed import PackedSource
from gpuaug.load.resident import epoch_order
from gpuaug.window import ReadWindow


class StreamLoader:
    """Batches of ``data`` (a :class:`~gpuaug.FaceFrames`, or :class:`~gpuaug.load.clips.FaceClips` for clip
    batches) for ``device``, read ahead by ``threads`` threads, ``in_flight`` batches ahead of the caller.

    Order: ``sampler`` (any: ``DistributedSampler`` for one rank's shard; its ``set_epoch`` is called) or, without
    one, every item once per epoch, shuffled by (``seed``, epoch) when ``shuffle`` (the order
    :class:`~gpuaug.ResidentFrames` uses). The last batch is short unless ``drop_last``. The same (seed, epoch)
    gives the same batches, and ``batches(epoch, start=k)`` resumes an epoch at batch k without reading the
    first k (with a sampler: where its order is a function of the epoch, as ``DistributedSampler``'s is).

    Packed data only (``python -m gpuaug pack``): npz videos are decoded, a job for ``DataLoader`` worker
    processes. ``config``: read only the part of each frame that a draw of this config can sample (train draws,
    or the eval framing with ``train=False``; clips: around the clip's box, ``crop`` as in
    :class:`~gpuaug.ClipAugment`); the batches (:class:`~gpuaug.batch.WindowedBatch`) render
    bit-identical to whole frames under those params. None: whole frames.

    An error while reading (e.g. :class:`~gpuaug.errors.FaceDataError` naming a truncated packed file) is
    raised in the caller's thread, at the batch it belongs to.

    Args:
        data: what to read.
        batch_size: items per batch (clips: B clips of T frames each).
        shuffle: a seeded permutation per epoch (see above).
        seed: the permutation's seed, with the epoch.
        sampler: any sampler instead (e.g. ``DistributedSampler``); its ``set_epoch`` is called.
        drop_last: full batches only.
        device: where batches are handed over (CUDA: from page-locked buffers, non-blocking).
        config: read only the window a draw of this config can sample (see above); None: whole frames.
        train: the window of training draws, or of the eval framing (False).
        crop: clips: the clip crop, as in ``ClipAugment``.
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
        self.data, self.batch_size, self.drop_last = data, batch_size, drop_last
        self.shuffle, self.seed, self.sampler = shuffle, seed, sampler
        self.device = torch.device(device)
        self.threads, self.in_flight = threads, in_flight
        length = data.length if isinstance(data, FaceClips) else 1
        self.window = None if config is None else ReadWindow(config, train, length, crop)
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

    def __iter__(self) -> Iterator[FaceBatch]:
        return self.batches(self.epoch)

    def _read(self, indices: np.ndarray) -> FaceBatch:
        return self.data.batch(indices, pin_memory=self._pin, window=self.window, buffer=self._pool.take)

    def batches(self, epoch: int, start: int = 0) -> Iterator[FaceBatch]:
        """Epoch ``epoch``'s batches from batch ``start`` on, on the device, in order."""
        order = self.order(epoch)
        chunks = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
            chunks.pop()
        todo = iter(chunks[start:])
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="gpuaug-stream")
        reading: deque[Future[FaceBatch]] = deque()
        copying: deque[tuple[torch.cuda.Event, FaceBatch]] = deque()  # host batches until their copy is done
        try:
            for chunk in todo:
                reading.append(pool.submit(self._read, chunk))
                if len(reading) == self.in_flight:
                    break
            while reading:
                host = reading.popleft().result()  # a reading thread's error is raised here, in the caller
                chunk = next(todo, None)
                if chunk is not None:
                    reading.append(pool.submit(self._read, chunk))
                yield self._hand_over(host, copying)
        finally:
            for future in reading:
                future.cancel()
            pool.shutdown(wait=True)

    def _hand_over(self, host: FaceBatch, copying: deque) -> FaceBatch:
        """``host`` on the device: as it is on the CPU; on CUDA a non-blocking copy, ``host`` kept (so its pool
        buffer is not refilled) until the copy is done."""
        if self.device.type != "cuda":
            return host
        batch = host.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        copying.append((event, host))
        while copying and copying[0][0].query():
            copying.popleft()
        return batch
