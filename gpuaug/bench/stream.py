"""Streaming benchmark: what :class:`~gpuaug.StreamLoader` copies and how fast, against the machine's own copy
speed and against augmenting batches that are already there.

On the end-to-end data set (packed, frames of 240x320, 360x480 and 480x640, shuffled, batch 256), one run:

- bytes per frame: whole frames, the windows a :class:`~gpuaug.ReadWindow` of the default config reads
  (training draws, and the eval framing), and the per-draw windows (``StreamLoader(augment=)``: each draw's
  own window, :mod:`gpuaug.load.draws`);
- loader alone: frames/s and GB/s of the bytes it copies, config windows, per-draw windows (params drawn and
  matrices computed in the loader) and whole frames, against ``numpy.copyto`` of the same windows from the same
  memory maps, and of as many bytes in one contiguous copy per batch (the same number of threads, recycled
  buffers);
- end to end (read -> augment with labels): the stream loader with config windows, with per-draw windows
  (feeding ``aug.apply(batch, params)``) and with whole frames, the ragged ``DataLoader`` path in the main
  process, and augment only (the same batches already there), in rounds so that a busy moment of a shared
  machine hits every row alike.

The issue's targets are checked on the per-draw windows, the mode the loader guide recommends, read with
``pread`` (the default: a file truncated under the loader is an error) and through memory maps
(``FaceFrames(mapped=True)``: faster, a truncation kills the process).

``python -m gpuaug.bench.stream`` (or ``python -m gpuaug bench --stream``) writes
``bench/results/stream_<device>.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from gpuaug.augment import FaceAugment
from gpuaug.batch import copy_windows
from gpuaug.bench.end_to_end import end_to_end_rates, write_packed
from gpuaug.bench.harness import cpu_seconds, other_cores
from gpuaug.bench.report import run_alone, write_record
from gpuaug.config import AugmentConfig
from gpuaug.load.draws import DRAW_GROUP, draw_group
from gpuaug.load.frames import FaceFrames
from gpuaug.load.resident import epoch_order
from gpuaug.load.stream import StreamLoader
from gpuaug.window import ReadWindow

#: The issue's targets (issue 24), checked in the report.
TARGETS = {"end to end vs augment only": 0.9, "loader vs numpy.copyto of the same windows": 0.7,
           "window bytes vs whole frame": 0.4}
E2E_PATHS = ("stream", "stream, per-draw windows", "stream, per-draw windows, mapped", "stream, whole frames", "ragged",
             "augment only")
#: Shuffled permutations of the data set in one timed pass of the loader-alone rows (the bench's data set is 6
#: batches of 256; 4 make 24 batches, 3 groups of draws).
PASS_EPOCHS = 4
#: Each windowed loader row and the numpy.copyto row of its same windows.
SAME_WINDOWS = {"stream loader, windows": "numpy.copyto, same windows",
                "stream loader, per-draw windows": "numpy.copyto, same per-draw windows"}
#: The per-draw loader reading through memory maps (FaceFrames(mapped=True)): the same windows as the per-draw row
#: (the same sampler and seed), read against the same copy.
MAPPED = "stream loader, per-draw windows, mapped"
REFERENCE = {**SAME_WINDOWS, MAPPED: SAME_WINDOWS["stream loader, per-draw windows"]}


def bytes_per_frame(frames: FaceFrames, config: AugmentConfig, batch_size: int) -> dict[str, float]:
    """Mean bytes per frame over the data set: whole frames, windows for training draws, eval windows, and the
    per-draw windows of one epoch of training draws."""
    idx = np.arange(len(frames))
    out = {"whole frame": float((frames.frame_sizes(idx).prod(1) * 3).mean())}
    chunks = np.array_split(idx, -(-len(idx) // batch_size))
    for name, train in (("window (train)", True), ("window (eval)", False)):
        window = ReadWindow(config, train)
        out[name] = sum(frames.batch(chunk, window=window).pixels.numel() for chunk in chunks) / len(idx)
    drawing = StreamLoader(frames, batch_size, augment=FaceAugment(config))
    out["window (per draw)"] = sum(batch.pixels.numel() for batch, _ in drawing) / len(idx)
    return out


class Permutations:
    """A sampler: ``count`` seeded permutations of range(``n``) back to back as one epoch (those of epochs
    ``count * e ..`` of ``StreamLoader(shuffle=True)``), so a loader-alone pass is one long epoch: it fills and
    drains its read-ahead once, as the copy reference's one pass does, and runs across groups of draws, as a
    training run's long epochs do."""

    def __init__(self, n: int, count: int, seed: int = 0) -> None:
        self.n, self.count, self.seed, self.epoch = n, count, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        cpu = torch.device("cpu")
        orders = [epoch_order(self.n, self.count * self.epoch + i, self.seed, 0, cpu) for i in range(self.count)]
        return iter(torch.cat(orders).tolist())

    def __len__(self) -> int:
        return self.n * self.count


def _loader_pass(loader: StreamLoader, epochs: Sequence[int]) -> tuple[float, int, int]:
    """Seconds, frames and pixel bytes of whole ``epochs`` back to back, nothing consuming the batches (timed from
    the start: the threads read ahead, so a clock started at the first batch would credit them with work done
    before it)."""
    start, frames, nbytes = time.perf_counter(), 0, 0
    for epoch in epochs:
        for item in loader.batches(epoch):
            batch = item[0] if isinstance(item, tuple) else item  # augment=: (batch, params)
            frames += len(batch)
            nbytes += batch.pixels.numel()
    return time.perf_counter() - start, frames, nbytes


Job = tuple[list[np.ndarray], np.ndarray, np.ndarray]  # a batch's frame views, (B, 4) windows, (B,) starts


def _copy_jobs(frames: FaceFrames, loader: StreamLoader, epochs: Sequence[int]) -> list[Job]:
    """Per batch of ``loader``'s ``epochs``: each frame's memory-map view, the window the loader reads of it, and
    where it goes (back to back in batch order)."""
    jobs = []
    for epoch in epochs:
        order = loader.order(epoch)
        chunks = [order[i:i + loader.batch_size] for i in range(0, len(order), loader.batch_size)]
        batches = (item[0] if isinstance(item, tuple) else item for item in loader.batches(epoch))
        jobs += _epoch_jobs(frames, chunks, batches)
    return jobs


def _epoch_jobs(frames: FaceFrames, chunks: list[np.ndarray], batches: Iterable) -> list[Job]:
    jobs = []
    for chunk, batch in zip(chunks, batches, strict=True):
        windows = batch.windows.numpy()
        nbytes = 3 * windows[:, 2] * windows[:, 3]
        jobs.append(([frames.frame_view(i) for i in chunk.tolist()], windows, np.cumsum(nbytes) - nbytes))
    return jobs


def _copyto_pass(jobs: list[Job], threads: int, buffers: list[np.ndarray], contiguous: bool) -> tuple[float, int]:
    """Seconds and bytes for ``threads`` threads copying each batch of ``jobs`` into a recycled buffer with
    ``numpy.copyto`` (:func:`~gpuaug.batch.copy_windows`, the loaders' own copy loop): the same windows from the
    same memory maps, or (``contiguous``) as many bytes in one copy from a buffer of the same size."""
    sizes = [int((3 * windows[:, 2] * windows[:, 3]).sum()) for _, windows, _ in jobs]

    def copy(b: int) -> None:
        flat = buffers[b % len(buffers)]
        if contiguous:
            np.copyto(flat[:sizes[b]], buffers[(b + 1) % len(buffers)][:sizes[b]])
        else:
            copy_windows(*jobs[b][:2], flat, jobs[b][2])

    with ThreadPoolExecutor(threads) as pool:
        begin = time.perf_counter()
        list(pool.map(copy, range(len(jobs))))
        return time.perf_counter() - begin, sum(sizes)


def loader_rates(folder: Path, batch_size: int, repeats: int, threads: int, config: AugmentConfig) -> list[dict]:
    """The loader alone (config windows, per-draw windows, whole frames) and numpy.copyto of each one's same
    windows, and of as many bytes contiguous, per batch with as many threads, in rounds."""
    frames, mapped = FaceFrames(folder), FaceFrames(folder, mapped=True)
    aug = FaceAugment(config)
    reads = {"stream loader, windows": {"config": config}, "stream loader, per-draw windows": {"augment": aug},
             MAPPED: {"augment": aug}, "stream loader, whole frames": {}}
    loaders = {name: StreamLoader(mapped if name == MAPPED else frames, batch_size,
                                  sampler=Permutations(len(frames), PASS_EPOCHS), threads=threads, **read)
               for name, read in reads.items()}
    # Each copy row and the loader whose windows it copies (contiguous: as many bytes as the config windows).
    copies = {**{copy: loader for loader, copy in SAME_WINDOWS.items()},
              "numpy.copyto, contiguous": "stream loader, windows"}
    seconds: dict[str, list[float]] = {name: [] for name in (*loaders, *copies)}
    counts: dict[str, tuple[int, int]] = {}
    buffers: list[np.ndarray] = []
    for r in range(repeats + 1):  # round 0 warms the page cache, the maps and the buffers; not counted
        epochs = [r]  # one long epoch a pass (Permutations)
        for name, loader in loaders.items():
            dt, n, nbytes = _loader_pass(loader, epochs)
            if r:
                seconds[name].append(dt)
            counts[name] = (n, nbytes)
        jobs = {name: _copy_jobs(frames, loaders[name], epochs) for name in SAME_WINDOWS}
        if not buffers:  # one per thread and one more, written through before timing, room for any batch
            nbytes = np.concatenate([3 * w[:, 2] * w[:, 3] for _, w, _ in jobs["stream loader, windows"]])
            buffers = [np.full(int(np.sort(nbytes)[::-1][:batch_size].sum()), 7, np.uint8)
                       for _ in range(threads + 1)]
        for name, loader in copies.items():
            dt, nbytes = _copyto_pass(jobs[loader], threads, buffers, contiguous=name.endswith("contiguous"))
            if r:
                seconds[name].append(dt)
            counts[name] = (counts["stream loader, windows"][0], nbytes)
    rows = []
    for name, secs in seconds.items():
        n, nbytes = counts[name]
        median = statistics.median(secs)
        rows.append({"name": name, "threads": threads, "frames": n, "bytes": nbytes, "seconds": secs,
                     "frames_per_second": n / median, "gb_per_second": nbytes / median / 1e9,
                     # the copy row this row is read against (each windowed loader: its own windows)
                     "same_windows": REFERENCE.get(name, name if name in SAME_WINDOWS.values()
                                                   else "numpy.copyto, same windows")})
    return rows


def end_to_end(folder: Path, device: torch.device, batch_size: int, repeats: int) -> list[dict]:
    """:func:`~gpuaug.bench.end_to_end.end_to_end_rates` for :data:`E2E_PATHS`, interleaved."""
    rates = end_to_end_rates(folder, device, batch_size, (0,), repeats, paths=E2E_PATHS, interleave=True)
    ceiling = next(r for r in rates if r.path == "augment only").frames_per_second
    return [{**r.as_dict(), "vs_augment_only": r.frames_per_second / ceiling} for r in rates]


def draw_costs(frames: FaceFrames, config: AugmentConfig, batch_size: int, repeats: int) -> dict[str, float]:
    """Milliseconds of this thread's CPU time (median of ``repeats`` after a warm-up) to read the boxes, draw the
    params and compute the windows (``draw_group``, what a StreamLoader(augment=) thread does) for one batch of
    ``batch_size`` frames and for one group of DRAW_GROUP batches, in one thread (torch too)."""
    aug, threads = FaceAugment(config), torch.get_num_threads()
    order = np.random.default_rng(0).permutation(len(frames))
    out = {}
    torch.set_num_threads(1)
    try:
        for name, n in (("one batch", batch_size), ("one group", DRAW_GROUP * batch_size)):
            idx = np.resize(order, n)  # a data set smaller than a group: frames repeat
            times = []
            for _ in range(repeats + 1):
                start = time.thread_time()
                draw_group(aug, *frames.boxes(idx), 0, 0, 0)
                times.append(time.thread_time() - start)
            out[name] = 1e3 * statistics.median(times[1:])
    finally:
        torch.set_num_threads(threads)
    return out


def measure(folder: Path, device: torch.device, batch_size: int, repeats: int, threads: int) -> dict:
    """Bytes per frame, the loader alone (CPU) and end to end on ``device``, and each against its target."""
    config = AugmentConfig()
    sizes = bytes_per_frame(FaceFrames(folder), config, batch_size)
    loader = loader_rates(folder, batch_size, repeats, threads, config) if device.type == "cpu" else []
    draws = draw_costs(FaceFrames(folder), config, batch_size, 20)
    e2e = end_to_end(folder, device, batch_size, repeats)
    rate = {r["name"]: r["gb_per_second"] for r in loader}
    e2e_rate = {r["path"]: r["vs_augment_only"] for r in e2e}
    checks = {"window bytes vs whole frame": sizes["window (per draw)"] / sizes["whole frame"],
              "end to end vs augment only": e2e_rate["stream, per-draw windows"],
              "end to end vs augment only, mapped": e2e_rate["stream, per-draw windows, mapped"]}
    if loader:
        reference = rate["numpy.copyto, same per-draw windows"]
        checks["loader vs numpy.copyto of the same windows"] = rate["stream loader, per-draw windows"] / reference
        checks["loader vs numpy.copyto of the same windows, mapped"] = rate[MAPPED] / reference
    return {"bytes_per_frame": sizes, "draw_ms": draws, "loader": loader, "end_to_end": e2e,
            "targets": {k: _target(k, v) for k, v in checks.items()}}


def _target(name: str, value: float) -> dict:
    """A measured value against its target (a row ending in ", mapped": the same target as the row without)."""
    target = TARGETS[name.removesuffix(", mapped")]
    return {"value": value, "target": target, "met": value <= target if name.startswith("window") else value >= target}


def markdown(result: dict) -> str:
    """The run's tables: bytes per frame, loader alone, end to end, targets."""
    env = result["environment"]
    size = result["bytes_per_frame"]
    lines = [
        f"Packed data set: {env['frames']} frames of 240x320, 360x480 and 480x640, shuffled, batch {env['batch']}; "
        f"{env['device']}, torch {env['torch']}, {env['torch_threads']} threads; loader threads {env['threads']}; "
        f"{env['timestamp']}; load average before the run {env['load_before']}, cores busy with other processes "
        f"during it {env['other_cores']:.2f}.",
        "",
        "| bytes per frame | KB | vs whole frame |", "|---|---:|---:|",
        *[f"| {k} | {v / 1e3:.0f} | {v / size['whole frame']:.2f} |" for k, v in size.items()],
    ]
    draw = result["draw_ms"]
    lines += ["", "| boxes, draws and windows (one thread) | ms | ms a batch |", "|---|---:|---:|",
              f"| one batch | {draw['one batch']:.2f} | {draw['one batch']:.2f} |",
              f"| one group of {DRAW_GROUP} batches | {draw['one group']:.2f} | {draw['one group'] / DRAW_GROUP:.2f} |"]
    if result["loader"]:
        rate = {r["name"]: r["gb_per_second"] for r in result["loader"]}
        lines += ["", "| loader alone | frames/s | GB/s copied | vs copyto, same windows | vs copyto, contiguous |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['name']} | {r['frames_per_second']:.0f} | {r['gb_per_second']:.2f} | "
                  f"{r['gb_per_second'] / rate[r['same_windows']]:.2f}x | "
                  f"{r['gb_per_second'] / rate['numpy.copyto, contiguous']:.2f}x |" for r in result["loader"]]
    lines += ["", "| end to end (read -> augment with labels) | frames/s | vs augment only |", "|---|---:|---:|"]
    lines += [f"| {r['path']} | {r['frames_per_second']:.0f} | {r['vs_augment_only']:.2f}x |"
              for r in result["end_to_end"]]
    lines += ["", "| goal | measured | target | met |", "|---|---:|---:|---|"]
    lines += [f"| {k} | {t['value']:.2f} | {'<=' if k.startswith('window') else '>='} {t['target']} | "
              f"{'yes' if t['met'] else 'no'} |" for k, t in result["targets"].items()]
    lines += ["", f"- {NOTE}"]
    return "\n".join(lines) + "\n"


NOTE = ("Window: the rows and columns any draw of the default AugmentConfig can sample (gpuaug/window.py), "
        "bit-identical output; per draw: the rows and columns of each draw's own matrix, the params drawn in the "
        "loader (StreamLoader(augment=aug), gpuaug/load/draws.py), also bit-identical; the targets are checked on "
        "these, read with pread (the default) and, 'mapped', through memory maps (FaceFrames(mapped=True)). "
        "Loader alone: a pass is one StreamLoader epoch of 4 shuffled permutations of the data set (24 "
        "batches, 3 groups of draws) with nothing consuming the batches, median over rounds after a warm-up "
        "round. numpy.copyto, same windows: the windowed loader's bytes (each frame's window of the same pass, "
        "from the same memory maps) copied with numpy.copyto, a batch per task on as many threads, into recycled "
        "buffers: the raw copy the loader does, nothing else (the target's reference; per-draw windows against "
        "their own); contiguous: as many bytes per batch as the config windows in one copy (the memory's speed). "
        "End to end: each path one pass per round (stream: StreamLoader with config windows; 'per-draw windows': "
        "with augment=, the step aug.apply(batch, params); 'whole frames': without windows; "
        "ragged: DataLoader(frames, collate_fn=gpuaug.collate) in the main process; augment only: the same "
        "ragged batches already on the device), median over rounds, each pass timed from its first batch on.")


#: Loader-alone bars of the chart: each loader row and the copy it is read against.
CHART_PAIRS = {**REFERENCE, "stream loader, whole frames": "numpy.copyto, contiguous"}


def chart(result: dict, path: Path) -> None:
    """The run as a picture: on the left (CPU runs) each loader's GB/s beside the ``numpy.copyto`` it is read
    against, the ratio written on the loader's bar; on the right each end-to-end path's frames/s with its ratio
    to augment-only, a line at augment-only and one at the issue's 0.9 of it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loader = {r["name"]: r for r in result["loader"]}
    e2e = result["end_to_end"]
    panels = 2 if loader else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 0.5 * max(len(e2e), 2 * len(CHART_PAIRS)) + 1.8))
    axes = np.atleast_1d(axes)
    if loader:
        ax, y = axes[0], 0.0
        for name, copy in CHART_PAIRS.items():
            mine, ref = loader[name]["gb_per_second"], loader[copy]["gb_per_second"]
            ax.barh(y, mine, height=0.4, color="tab:orange")
            ax.barh(y + 0.4, ref, height=0.4, color="tab:blue")
            ax.text(mine, y, f" {mine:.2f} GB/s ({mine / ref:.2f}x)", va="center", fontsize=8)
            ax.text(ref, y + 0.4, f" {ref:.2f}", va="center", fontsize=8)
            y += 1.2
        ax.set_yticks([1.2 * i + 0.2 for i in range(len(CHART_PAIRS))],
                      [f"{n.removeprefix('stream loader, ')}\n(orange) vs {c.removeprefix('numpy.copyto, ')}"
                       for n, c in CHART_PAIRS.items()], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.45 * max(r["gb_per_second"] for r in loader.values()))
        ax.set_xlabel("GB/s: StreamLoader (orange), numpy.copyto (blue)")
        ax.set_title(f"loader alone, {result['environment']['threads']} threads", fontsize=9)
    ax = axes[-1]
    ceiling = next(r["frames_per_second"] for r in e2e if r["path"] == "augment only")
    values = [r["frames_per_second"] for r in e2e]
    bars = ax.barh([r["path"] for r in e2e], values, color=["tab:blue" if r["path"] == "augment only" else
                                                            "tab:orange" for r in e2e])
    for bar, r in zip(bars, e2e, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {r['frames_per_second']:.0f} ({r['vs_augment_only']:.2f}x)", va="center", fontsize=8)
    ax.axvline(ceiling, color="tab:blue", lw=0.8)
    ax.axvline(TARGETS["end to end vs augment only"] * ceiling, color="grey", lw=0.8, ls="--")
    ax.set_xlim(0, 1.35 * max(values))
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("frames/s, read -> augment (dashed: 0.9 of augment only)")
    env = result["environment"]
    ax.set_title(f"end to end, batch {env['batch']}; {env['device']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace, devices: Sequence[torch.device], device_name: Callable[[torch.device], str]
        ) -> list[Path]:
    """The streaming benchmark on each device; writes ``stream_<device>.{json,md}`` under ``args.out``."""
    paths = []
    with tempfile.TemporaryDirectory(prefix="gpuaug-stream-") as tmp:
        folder = write_packed(Path(tmp), args.e2e_videos, args.e2e_frames)
        for device in devices:
            load_before, cpu_start, wall_start = os.getloadavg(), cpu_seconds(), time.perf_counter()
            result = measure(folder, device, args.e2e_batch, args.e2e_repeats, args.stream_threads)
            result["environment"] = {
                "device": device_name(device), "frames": len(FaceFrames(folder)), "batch": args.e2e_batch,
                "threads": args.stream_threads, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "load_before": [round(x, 2) for x in load_before],
                "other_cores": other_cores(cpu_start, time.perf_counter() - wall_start),
                "timestamp": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "repeats": args.e2e_repeats}
            result["note"] = NOTE
            record = write_record(args.out, "stream", device_name(device), result, markdown)
            picture = record[0].with_suffix(".png")
            chart(result, picture)
            paths += [*record, picture]
    return paths


def add_args(p: argparse.ArgumentParser) -> None:
    """The streaming benchmark's own options (shared with ``gpuaug bench --stream``)."""
    p.add_argument("--stream-threads", type=int, default=2, help="StreamLoader reading threads (default 2)")


def main(argv: Sequence[str] | None = None) -> None:
    """The streaming benchmark alone; takes ``gpuaug bench``'s options (--e2e-videos/-frames/-batch/-repeats,
    devices, --out)."""
    run_alone(run, argv)


if __name__ == "__main__":
    main()
