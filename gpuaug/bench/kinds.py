"""Label kinds benchmark: what the step costs by the labels a batch carries and its landmark count, one run.

Rows, on the same frames (the workload's B frames through the default step): every label kind with K = 68
(the face multitask data set's layout, the reference row); 2D landmarks and a box with K = 68; the same with
K = 106 (LaPa, RTMPose's face6 layout); every kind with K = 106; 2D landmarks alone with K = 98 (WFLW); head
pose alone (no box, no landmarks: the crop is the whole frame). A layout other than 68 takes the workload's
68 points in turn (point i is point i mod 68): where the points lie does not change the work. Rows are timed interleaved
(:func:`~gpuaug.bench.clips.interleaved_seconds`), so a shared machine's swings hit all alike.

``python -m gpuaug.bench.kinds`` (or ``python -m gpuaug bench --kinds``) writes
``bench/results/kinds_<device>.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

from gpuaug.augment import FaceAugment
from gpuaug.bench.clips import interleaved_seconds
from gpuaug.bench.report import rate_row, run_alone, run_per_device
from gpuaug.bench.step import Step
from gpuaug.bench.workload import Workload, make_workload
from gpuaug.labels.flip_tables import resolve_flip_table

ALL = ("bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze")
REFERENCE = "every kind, K = 68 (ibug68)"
#: Row name -> (flip table, label kinds the batch carries).
ROWS: dict[str, tuple[str, tuple[str, ...]]] = {
    REFERENCE: ("ibug68", ALL),
    "2D landmarks + box, K = 68 (ibug68)": ("ibug68", ("bbox", "landmarks2d")),
    "2D landmarks + box, K = 106 (lapa106)": ("lapa106", ("bbox", "landmarks2d")),
    "every kind, K = 106 (lapa106)": ("lapa106", ALL),
    "2D landmarks only, K = 98 (wflw98)": ("wflw98", ("landmarks2d",)),
    "head pose only (whole frame)": ("ibug68", ("head_pose",)),
}


def build_steps(work: Workload, device: torch.device) -> dict[str, Step]:
    """Every row's step: a FaceAugment of the row's layout on the workload's frames with the row's kinds."""
    steps = {}
    for name, (table, kinds) in ROWS.items():
        k = len(resolve_flip_table(table))
        index = torch.arange(k) % work.batch.landmarks2d.shape[1]  # the workload's points in turn
        labels = {kind: getattr(work.batch, kind) for kind in ALL}
        labels |= {kind: labels[kind][:, index] for kind in ("landmarks2d", "landmarks3d")}
        batch = replace(work.batch, **{kind: labels[kind] if kind in kinds else None for kind in ALL}).to(device)
        aug = FaceAugment(replace(work.config, flip_table=table)).to(device)
        steps[name] = partial(aug, batch, torch.Generator().manual_seed(0))
    return steps


def kind_rates(work: Workload, device: torch.device, repeats: int, warmup: int) -> list[dict]:
    """img/s of every row, timed interleaved."""
    runs = {name: (step, repeats) for name, step in build_steps(work, device).items()}
    rows = [{"name": name, **timed} for name, timed in interleaved_seconds(runs, device, repeats, warmup).items()]
    for row in rows:
        row["median_s"] = statistics.median(row["seconds"])
        row["img_per_s"] = len(work) / row["median_s"]
    return rows


def markdown(result: dict) -> str:
    """One table: each row's rate against the reference row (every kind, K = 68)."""
    env = result["environment"]
    rate = {r["name"]: r["img_per_s"] for r in result["rows"]}
    head = (f"B={env['batch']} frames {env['height']}x{env['width']} -> {env['out_size']}x{env['out_size']} grey "
            f"float32; {env['device']}, torch {env['torch']}, {env['torch_threads']} threads; {env['timestamp']}; "
            f"load average before {env['load_before']}.")
    lines = [head, "", "| labels the batch carries | img/s | vs every kind, K = 68 | ms / batch | timed runs | "
             "other load |", "|---|---:|---:|---:|---:|---:|"]
    lines += [rate_row(r, rate[REFERENCE], digits=3) for r in result["rows"]]
    lines += ["", f"- {result['note']}"]
    return "\n".join(lines) + "\n"


NOTE = ("Each row: FaceAugment with the row's flip table on the same frames, the batch carrying only the row's "
        "label kinds (the others None); the whole step (params, matrices, labels, render). Layouts other than "
        "68 take the 68 points in turn. The crop follows the kinds: without a box it frames the landmarks' "
        "extent (tighter than the box here), with neither the whole frame (a larger source area for the render "
        "to filter), so those rows differ in pixel work as well as in labels. Rows timed interleaved, median per "
        "row; other load: cores other processes kept busy during its runs.")


def run(args: argparse.Namespace, devices: Sequence[torch.device], device_name: Callable[[torch.device], str]
        ) -> list[Path]:
    """The label kinds benchmark on each device; writes ``kinds_<device>.{json,md}`` under ``args.out``."""
    def measure(device: torch.device) -> tuple[list[dict], dict]:
        work = make_workload(args.batch, args.height, args.width, args.out_size)
        return kind_rates(work, device, args.repeats, args.warmup), {"batch": args.batch}

    return run_per_device(args, devices, device_name, "kinds", measure, markdown, NOTE)


def main(argv: Sequence[str] | None = None) -> None:
    """The label kinds benchmark alone; takes ``gpuaug bench``'s options (sizes, repeats, devices, --out)."""
    run_alone(run, argv)


if __name__ == "__main__":
    main()
