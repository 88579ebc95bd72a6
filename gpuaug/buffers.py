"""Where a batch's pixel buffer is allocated on the host: the cheapest memory for how it will be used.

A ragged batch of 256 mixed-size frames is ~140 MB. Allocated fresh for every batch, most of its cost is the
kernel faulting in and zeroing 35,000 new pages, not the copy into it. So the main process recycles a few
buffers, each reused only once nothing references it any more.
"""

from __future__ import annotations

import threading

import torch
import torch.utils.data

_POOL_BUFFERS = 4  # buffers kept for reuse: a batch in use, one being built, and room for prefetching
_HEADROOM = 1.25  # ragged batches vary in size: a buffer fits batches up to this much larger
_pool: list[torch.Tensor] = []
_lock = threading.Lock()


def _use_count(t: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


_UNUSED = _use_count(torch.empty(1))  # a buffer referenced by nothing but the pool


def pixel_buffer(nbytes: int, pin_memory: bool = False) -> torch.Tensor:
    """(nbytes,) uint8 CPU tensor, uninitialised.

    ``pin_memory``: page-locked (torch's caching host allocator recycles those itself). In a DataLoader
    worker: shared memory, so handing the batch to the main process copies nothing (what
    ``default_collate`` does). Otherwise the head of a recycled buffer that no tensor, view or array refers
    to any more (up to 4 buffers are kept: their memory stays with the process), else of a new one.
    """
    if pin_memory:
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    if torch.utils.data.get_worker_info() is not None:
        return torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(nbytes))
    with _lock:
        for buf in _pool:
            if buf.numel() >= nbytes and _use_count(buf) == _UNUSED:
                return _head(buf, nbytes)
        buf = torch.empty(int(nbytes * _HEADROOM), dtype=torch.uint8)
        free = [i for i, b in enumerate(_pool) if _use_count(b) == _UNUSED]
        if len(_pool) >= _POOL_BUFFERS and free:
            del _pool[free[0]]  # a free buffer too small for this batch: the new one takes its place
        if len(_pool) < _POOL_BUFFERS:
            _pool.append(buf)
        return _head(buf, nbytes)


def _head(buf: torch.Tensor, nbytes: int) -> torch.Tensor:
    """The first ``nbytes`` of ``buf`` as a tensor of its own on the same storage, not a view: every batch's
    pixels are then alike to ``torch.compile``'s guards (a view would compile the render kernel once more)."""
    return torch.empty(0, dtype=torch.uint8).set_(buf.untyped_storage(), 0, (nbytes,), (1,))


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


def keep_freed_memory(limit: int = 2**31 - 1) -> bool:
    """Opt-in for CPU training: make glibc keep freed blocks up to ``limit`` bytes for reuse instead of
    returning them to the OS (``mallopt`` M_MMAP_THRESHOLD and M_TRIM_THRESHOLD, process-wide).

    Every CPU step allocates its output and the render kernel's intermediates afresh (tens of MB); by
    default glibc maps and unmaps such blocks each time, and faulting the pages in again is a large part of
    the step (``python -m gpuaug bench --keep-freed-memory`` measures the difference). The price: the
    process's resident memory stays at its peak. Returns False (and
    changes nothing) where glibc's ``mallopt`` is not available.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, limit)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, limit))
