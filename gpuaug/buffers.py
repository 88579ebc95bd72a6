"""Host memory the library recycles: the cheapest memory for how it will be used.

A ragged batch of 256 mixed-size frames is ~140 MB, a rendered batch 17-50 MB, the CPU render's working
planes 100-134 MB, a batch of heatmap targets 71-285 MB. Allocated fresh for every batch, most of their cost
is the kernel mapping, faulting in and zeroing new pages (glibc hands blocks this large straight back to the
OS when they are freed), not the work done in them. So the library keeps them:

- :class:`BufferPool`: buffers handed out to callers (pixel buffers, rendered images), each reused only once
  no tensor, view or array refers to it any more, so a batch in use is never overwritten;
- :func:`scratch`: working memory a computation uses and drops before it returns, one set per thread.

:func:`release_buffers` hands the pools and the calling thread's scratch back.
"""

from __future__ import annotations

import math
import threading

import torch
import torch.utils.data

_HEADROOM = 1.25  # sizes vary (ragged batches, a short last batch): a buffer fits requests this much larger


def _use_count(t: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


_UNUSED = _use_count(torch.empty(1))  # a buffer referenced by nothing but its pool


def typed(buf: torch.Tensor, size: tuple[int, ...], dtype: torch.dtype = torch.uint8,
          stride: tuple[int, ...] | None = None) -> torch.Tensor:
    """A tensor of ``size`` (contiguous unless ``stride``) and ``dtype`` at the start of ``buf``'s storage:
    a tensor of its own, not a view, so every request looks alike to ``torch.compile``'s guards."""
    if stride is None:
        stride = tuple(math.prod(size[i + 1:]) for i in range(len(size)))
    return torch.empty(0, dtype=dtype).set_(buf.untyped_storage(), 0, size, stride)


class BufferPool:
    """Up to ``capacity`` CPU buffers, each handed out again only once nothing but the pool refers to it;
    page-locked ones with ``pin_memory`` (a caller keeps a buffer referenced until a copy from it is done)."""

    def __init__(self, capacity: int, pin_memory: bool = False) -> None:
        self.capacity = capacity
        self.pin_memory = pin_memory
        self._buffers: list[torch.Tensor] = []
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> torch.Tensor:
        """(nbytes,) uint8 tensor, uninitialised, at the head of a free recycled buffer if one fits, else of a
        new one (kept if there is room, or in place of a free one too small).

        The tensor is made under the pool's lock, so no other thread can see its buffer as free. A buffer
        that was moved to shared memory (a batch pickled to another process) is dropped, never reused: the
        other process may still be reading it.
        """
        with self._lock:
            self._buffers = [b for b in self._buffers if not b.is_shared()]
            for buf in self._buffers:
                if buf.numel() >= nbytes and _use_count(buf) == _UNUSED:
                    return typed(buf, (nbytes,))
            buf = torch.empty(int(nbytes * _HEADROOM), dtype=torch.uint8, pin_memory=self.pin_memory)
            free = [i for i, b in enumerate(self._buffers) if _use_count(b) == _UNUSED]
            if len(self._buffers) >= self.capacity and free:
                del self._buffers[free[0]]
            if len(self._buffers) < self.capacity:
                self._buffers.append(buf)
            return typed(buf, (nbytes,))

    def clear(self) -> None:
        """Forget every buffer (those still in use stay with their users)."""
        with self._lock:
            self._buffers.clear()


# Pixel buffers: a batch in use, one being built, and room for prefetching.
pixel_pool = BufferPool(4)
# Rendered images: the batch a model is training on, the next one, and room for a caller that keeps a few.
render_pool = BufferPool(4)
# Training targets (heatmaps: 71 MB of bf16 at B = 256, K = 68, 64 x 64), kept as the rendered images are.
target_pool = BufferPool(4)
_scratch = threading.local()


def pixel_buffer(nbytes: int, pin_memory: bool = False) -> torch.Tensor:
    """(nbytes,) uint8 CPU tensor, uninitialised.

    ``pin_memory``: page-locked (torch's caching host allocator recycles those itself). In a DataLoader
    worker: shared memory, so handing the batch to the main process copies nothing (what
    ``default_collate`` does). Otherwise the head of a buffer from :data:`pixel_pool`.
    """
    if pin_memory:
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    if torch.utils.data.get_worker_info() is not None:
        return torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(nbytes))
    return pixel_pool.take(nbytes)


def scratch(name: str, size: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uninitialised contiguous CPU working memory ``name`` of ``size``, this thread's own: the same memory
    on every call, so whatever it held before is overwritten. For computations that drop it before they
    return."""
    buffers: dict[str, torch.Tensor] = _scratch.__dict__.setdefault("buffers", {})
    nbytes = torch.Size(size).numel() * dtype.itemsize
    if name not in buffers or buffers[name].numel() < nbytes:
        buffers[name] = torch.empty(nbytes, dtype=torch.uint8)  # exact: a render's sizes rarely grow
    return typed(buffers[name], size, dtype)


def release_buffers() -> None:
    """Hand the recycled buffers and the calling thread's scratch memory back (tensors in use keep theirs;
    another thread's scratch goes when that thread ends or calls this)."""
    pixel_pool.clear()
    render_pool.clear()
    target_pool.clear()
    _scratch.__dict__.pop("buffers", None)
