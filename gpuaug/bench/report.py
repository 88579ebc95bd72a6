"""Benchmark results -> JSON, a markdown table and a bar chart, named after the devices."""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch


def write_record(out: Path, kind: str, device: str, result: dict, markdown: Callable[[dict], str]) -> list[Path]:
    """One run's record: ``<kind>_<device slug>.json`` and its ``.md`` table under ``out``; prints the table and
    returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{kind}_{slug(device)}"
    text = markdown(result)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(text)
    print(text)
    return [stem.with_suffix(".json"), stem.with_suffix(".md")]


def environment(args: argparse.Namespace, device: str, load_before: Sequence[float], **extra: object) -> dict:
    """A record's "environment": the device, frame and output sizes, torch and its threads, the load average
    before the run, the time, the repeats (``args``: ``gpuaug bench``'s options), and ``extra``."""
    return {"device": device, "height": args.height, "width": args.width, "out_size": args.out_size,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_before": [round(x, 2) for x in load_before], "timestamp": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "repeats": args.repeats, "warmup": args.warmup, **extra}


def run_per_device(args: argparse.Namespace, devices: Sequence[torch.device],
                   device_name: Callable[[torch.device], str], kind: str,
                   measure: Callable[[torch.device], tuple[list[dict], dict]], markdown: Callable[[dict], str],
                   note: str) -> list[Path]:
    """A benchmark's record on each device: ``measure(device)`` gives its rows and the environment fields of its
    own; writes ``<kind>_<device>.{json,md}`` under ``args.out`` (:func:`write_record`)."""
    paths = []
    for device in devices:
        load_before = os.getloadavg()
        rows, extra = measure(device)
        result = {"environment": environment(args, device_name(device), load_before, **extra), "rows": rows,
                  "note": note}
        paths += write_record(args.out, kind, device_name(device), result, markdown)
    return paths


def rate_row(row: dict, reference: float, digits: int = 2) -> str:
    """A timed row as a markdown table line: name, img/s, ratio to ``reference`` img/s, ms per batch, timed runs,
    other load."""
    return (f"| {row['name']} | {row['img_per_s']:.0f} | {row['img_per_s'] / reference:.{digits}f}x | "
            f"{1e3 * row['median_s']:.1f} | {len(row['seconds'])} | {row['other_cores']:.2f} |")


def run_alone(run: Callable, argv: Sequence[str] | None = None) -> None:
    """A benchmark module's ``run(args, devices, device_name)`` on its own, with ``gpuaug bench``'s options."""
    from gpuaug.bench.cli import device_name, parse_args, resolve_devices

    args = parse_args(argv)
    print("wrote", *map(str, run(args, resolve_devices(args), device_name)))


def slug(text: str) -> str:
    """'cpu AMD EPYC (2 cores)' -> 'cpu-amd-epyc-2-cores'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _mb(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:.0f}"


def _output(env: dict) -> str:
    p = env.get("grayscale_p", 1.0)
    return "grey" if p == 1 else "colour" if p == 0 else f"grey with p={p}"


#: Snippet sections of a record (``--8<-- "record.md:tables"`` in the docs includes one part).
SECTION = "<!-- --8<-- [{}:{}] -->"


def _by_workers(rows: list[dict], key: Callable[[dict], tuple], value: Callable[[dict], str]) -> tuple[list, dict]:
    """Rows pivoted to one line per ``key`` with a column per worker count: (worker counts, key -> cells)."""
    workers = sorted({r["workers"] for r in rows})
    lines: dict[tuple, dict[int, str]] = {}
    for r in rows:
        lines.setdefault(key(r), {})[r["workers"]] = value(r)
    return workers, {k: [cells.get(w, "") for w in workers] for k, cells in lines.items()}


def markdown(result: dict) -> str:
    """The run's record: where and what it ran on, once; one captioned table per question (the augment step's
    contenders, loaders, end to end, the CNN feed; worker counts as columns); then the legend. A device column
    only for a run on several devices. The tables and the legend are snippet sections ("tables", "legend") the
    docs include apart."""
    env = result["environment"]
    devices = env.get("devices") or sorted({r["device"] for r in result["contenders"]})
    several = len(devices) > 1
    lead, rule = ("| device ", "|---") if several else ("", "")
    timed = [r for r in result["contenders"] if not r.get("unavailable")]
    runs = sorted({len(r["seconds"]) for r in timed})
    lines = [
        SECTION.format("start", "tables"),
        f"Ran on {', '.join(devices)}, torch {env['torch']}, {env['torch_threads']} threads, {env['timestamp']}; "
        f"load average before {env['load_before']}, cores busy with other processes during it "
        f"{env['other_cores']:.2f}. Workload: {env['batch']} frames of {env['height']}x{env['width']} RGB uint8 "
        f"-> {env['out_size']}x{env['out_size']} {_output(env)}, with landmarks.",
        "",
        f"**Augment step.** Every contender on the same batch; img/s, and the ratio to gpuaug torch (median of "
        f"{' or '.join(map(str, runs))} timed runs; other processes kept at most "
        f"{max((r['other_cores'] for r in timed), default=0):.2f} cores busy during a row).",
        "",
        f"{lead}| contender | img/s | vs gpuaug torch | ms / batch | peak MB |",
        f"{rule}|---|---:|---:|---:|---:|",
    ]
    for r in result["contenders"]:
        cell = f"| {r['device']} " if several else ""
        if r.get("unavailable"):
            lines.append(f"{cell}| {r['name']} | not available: {r['unavailable']} | | | |")
            continue
        ratio = f"{r['ratio_to_gpuaug']:.2f}x" if r.get("ratio_to_gpuaug") else ""
        lines.append(f"{cell}| {r['name']} | {r['img_per_s']:.0f} | {ratio} | {1e3 * r['median_s']:.0f} | "
                     f"{_mb(r['peak_bytes'])} |")
    if result.get("loader"):
        workers, table = _by_workers(result["loader"], lambda r: (r["kind"], r["order"], r["bytes_per_frame"]),
                                     lambda r: f"{r['frames_per_second']:.0f}")
        lines += ["", "**Loaders.** Frames/s into FaceFrames + DataLoader + gpuaug.collate (no augmentation), by "
                      "storage and read order, per count of worker processes.", "",
                  "| storage | order | KB / frame | " + " | ".join(f"{w} workers" for w in workers) + " |",
                  "|---|---|---:|" + "---:|" * len(workers)]
        lines += [f"| {kind} | {order} | {size / 1024:.0f} | " + " | ".join(cells) + " |"
                  for (kind, order, size), cells in table.items()]
    if result.get("end_to_end"):
        def vs_augment(r: dict) -> str:
            ceiling = next(x for x in result["end_to_end"] if x["path"] == "augment only"
                           and x["device"] == r["device"])
            return f"{r['frames_per_second']:.0f} ({r['frames_per_second'] / ceiling['frames_per_second']:.2f}x)"
        workers, table = _by_workers(result["end_to_end"], lambda r: (r["device"], r["path"]), vs_augment)
        lines += ["", "**End to end.** Frames/s from packed files to augmented batches (read, batch, to the "
                      "device, augment), and in brackets the ratio to augmenting batches already in memory, per "
                      "count of worker processes.", "",
                  f"{lead}| data path | " + " | ".join(f"{w} workers" for w in workers) + " |",
                  f"{rule}|---|" + "---:|" * len(workers)]
        lines += [(f"| {device} " if several else "") + f"| {path} | " + " | ".join(cells) + " |"
                  for (device, path), cells in table.items()]
    if result.get("feed"):
        lines += ["", "**Feeding a CNN.** A ResNet-18-sized model trained from each data path: frames/s, how busy "
                      "it is, and the share of time it waits for data.", "",
                  f"{lead}| fed by | workers | frames/s | busy | data wait |", f"{rule}|---|---:|---:|---:|---:|"]
        for r in result["feed"]:
            cell = f"| {r['device']} " if several else ""
            lines.append(f"{cell}| {r['path']} | {r['workers']} | {r['frames_per_second']:.0f} | "
                         f"{100 * r['busy']:.1f} % | {100 * r['data_wait']:.1f} % |")
    lines += [SECTION.format("end", "tables"), "", SECTION.format("start", "legend"),
              *[f"- {n}" for n in result["notes"]], SECTION.format("end", "legend")]
    return "\n".join(lines) + "\n"


def bar_chart(result: dict, path: Path) -> None:
    """Horizontal bars of img/s per contender and device (log scale), ratio to gpuaug torch annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["contenders"] if not r.get("unavailable")]
    labels = [f"{r['name']} [{r['device'].split()[0]}]" for r in rows]
    values = [r["img_per_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    bars = ax.barh(labels, values, color=["tab:orange" if r["name"].startswith("gpuaug") else "tab:blue"
                                          for r in rows])
    for bar, r in zip(bars, rows, strict=True):
        ratio = f" ({r['ratio_to_gpuaug']:.2f}x)" if r.get("ratio_to_gpuaug") else ""
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {r['img_per_s']:.0f}{ratio}",
                va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(1, 4 * max(values, default=1))  # bars start at 1 img/s; room for the labels on the right
    ax.invert_yaxis()
    env = result["environment"]
    ax.set_xlabel("images / s (log scale), ratio to gpuaug torch on the same device")
    ax.set_title(f"batch {env['batch']}, {env['height']}x{env['width']} -> {env['out_size']}x{env['out_size']} "
                 f"{_output(env)}"
                 f" with landmarks; load {env['load_before']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(result: dict, out_dir: Path) -> list[Path]:
    """``bench_<devices>.json``, ``.md`` and ``.png`` under ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = result["environment"]
    # The default workload (batch 256, grey) keeps the plain name; other runs get their own files.
    variant = (f"_b{env['batch']}" if env["batch"] != 256 else "") + (
        "" if env.get("grayscale_p", 1.0) == 1 else f"_{_output(env).replace(' ', '').replace('=', '')}") + (
        f"_{env['out_dtype']}" if env.get("out_dtype", "float32") != "float32" else "")
    stem = out_dir / f"bench_{slug('+'.join(env['devices']))}{variant}"
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(result, indent=2) + "\n")
    paths[1].write_text(markdown(result))
    bar_chart(result, paths[2])
    return paths
