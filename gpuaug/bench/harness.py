"""Time one step function: warm-up, repeats, median throughput and peak memory."""

from __future__ import annotations

import ctypes
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    """Seconds per step of each timed repeat; items per step; peak memory over the timed steps (bytes);
    mean number of cores other processes kept busy meanwhile (what a shared machine took away).

    memory_kind: ``"cuda max_memory_allocated"`` (device) or ``"rss delta"`` (process resident set above
    its level before the first timed step, heap trimmed first, sampled every 2 ms); pools a library keeps
    from its warm-up are not counted.
    """

    seconds: list[float]
    items: int
    warmup_seconds: float
    peak_bytes: int
    memory_kind: str
    other_cores: float  # CPU cores busy with other processes over the timed runs (contention)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_second(self) -> float:
        """Items per second at the median step time."""
        return self.items / self.median


def trim_heap() -> None:
    """Hand the heap's free memory back to the OS (glibc ``malloc_trim``), so RSS follows live memory.

    Called between warm-up and the timed runs: what a step allocates then shows up as RSS growth instead
    of reusing pages an earlier step (or contender) left behind. No-op off glibc.
    """
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds busy machine-wide, CPU seconds of this process and its reaped children) so far."""
    import psutil

    total = psutil.cpu_times()
    busy = sum(total) - total.idle - getattr(total, "iowait", 0.0)
    own = psutil.Process().cpu_times()
    return busy, own.user + own.system + own.children_user + own.children_system


def other_cores(start: tuple[float, float], wall: float) -> float:
    """Mean cores used by other processes since ``start`` (a :func:`cpu_seconds`), over ``wall`` seconds."""
    busy, own = cpu_seconds()
    return max(0.0, (busy - start[0]) - (own - start[1])) / wall


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def peak_rss(interval: float = 0.002) -> Iterator[Callable[[], int]]:
    """Sample this process's RSS in a thread; yields a function returning the peak rise in bytes."""
    import psutil

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], proc.memory_info().rss)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0] - base
    finally:
        done.set()
        thread.join()


@contextmanager
def peak_cuda(device: torch.device) -> Iterator[Callable[[], int]]:
    """Peak ``max_memory_allocated`` rise over the block, in bytes."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    yield lambda: torch.cuda.max_memory_allocated(device) - base


def time_step(
    step: Callable[[], object], items: int, device: torch.device, repeats: int, warmup: int = 1,
    on_repeat: Callable[[], None] | None = None,
) -> Timing:
    """Run ``step`` ``warmup`` times untimed (compiles, caches, allocators), then ``repeats`` timed."""
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    warmup_seconds = time.perf_counter() - start
    trim_heap()
    cuda = device.type == "cuda"
    seconds: list[float] = []
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    with peak_cuda(device) if cuda else peak_rss() as peak:
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            _sync(device)
            seconds.append(time.perf_counter() - t0)
            if on_repeat is not None:
                on_repeat()
        peak_bytes = peak()
    kind = "cuda max_memory_allocated" if cuda else "rss delta"
    others = other_cores(cpu_start, time.perf_counter() - wall_start)
    return Timing(seconds, items, warmup_seconds, peak_bytes, kind, others)
