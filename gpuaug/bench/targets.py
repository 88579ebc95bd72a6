"""Target benchmark: training targets built in gpuaug's step against mmpose's per-sample numpy codecs, one run.

Rows, on the same batch (B frames through the default step, K = 68 landmarks of the output crop): the numpy
codecs as mmpose's data loader runs them, one sample at a time (:mod:`gpuaug.bench.mmpose_codecs`); the same
targets from :mod:`gpuaug.targets` for the whole batch; the step alone and the step building them. Every row is
timed interleaved (:func:`~gpuaug.bench.clips.interleaved_seconds`), so a shared machine's swings hit all alike.

``python -m gpuaug.bench.targets`` (or ``python -m gpuaug bench --targets``) writes
``bench/results/targets_<device>.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import fields
from functools import partial
from pathlib import Path

import numpy as np
import torch

from gpuaug.augment import FaceAugment
from gpuaug.bench import mmpose_codecs
from gpuaug.bench.clips import interleaved_seconds
from gpuaug.bench.report import rate_row, run_alone, run_per_device
from gpuaug.bench.step import Step
from gpuaug.bench.workload import Workload, make_workload
from gpuaug.labels.transform import Labels
from gpuaug.targets import HeatmapTarget, SimCCTarget
from gpuaug.targets.spec import TargetSpec

SIGMA, SIMCC_SIGMA, SPLIT = 2.0, 5.66, 2.0  # heatmaps: sigma 2 heatmap px; SimCC as RTMPose-face: 5.66 bins, split 2
STEP = "gpuaug step alone (FaceAugment)"


def _numpy_rows(size: int, heatmap: int) -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    """mmpose's encoders on one sample's (K, 2) keypoints and (K,) visibility."""
    crop, maps = (size, size), (heatmap, heatmap)
    return {
        f"mmpose MSRAHeatmap {heatmap}x{heatmap} (numpy, per sample)":
            lambda p, v: mmpose_codecs.msra_encode(p, v, crop, maps, SIGMA, unbiased=False),
        f"mmpose UDPHeatmap {heatmap}x{heatmap} (numpy, per sample)":
            lambda p, v: mmpose_codecs.udp_encode(p, v, crop, maps, SIGMA),
        f"mmpose SimCCLabel split {SPLIT:g} (numpy, per sample)":
            lambda p, v: mmpose_codecs.simcc_encode(p, v, crop, SPLIT, SIMCC_SIGMA, normalize=True),
    }


def _gpuaug_targets(heatmap: int) -> dict[str, tuple[TargetSpec, bool]]:
    """Name -> (spec, whether a row times the step building it too: 64 x 64 bf16 heatmaps as issue 22 asks, and
    SimCC)."""
    hm = f"{heatmap}x{heatmap}"
    return {
        f"gpuaug HeatmapTarget msra {hm} float32": (HeatmapTarget(heatmap, SIGMA, "msra"), False),
        f"gpuaug HeatmapTarget msra {hm} bfloat16": (HeatmapTarget(heatmap, SIGMA, "msra", "bfloat16"), True),
        f"gpuaug HeatmapTarget udp {hm} bfloat16": (HeatmapTarget(heatmap, SIGMA, "udp", "bfloat16"), False),
        f"gpuaug SimCCTarget split {SPLIT:g} float32": (SimCCTarget(SPLIT, SIMCC_SIGMA), True),
    }


def build_steps(work: Workload, device: torch.device, heatmap: int) -> dict[str, tuple[Step, str]]:
    """Every row's step and its kind ("targets" alone, or "step" with the augmentation)."""
    aug = FaceAugment(work.config).to(device)
    batch = work.batch.to(device)
    out = aug(batch, torch.Generator().manual_seed(0))
    size = work.config.out_size
    points, weights = out.landmarks2d.cpu().numpy(), out.visible.float().cpu().numpy()

    def per_sample(encode: Callable[[np.ndarray, np.ndarray], object]) -> list:
        return [encode(points[i], weights[i]) for i in range(len(points))]

    steps: dict[str, tuple[Step, str]] = {
        name: (partial(per_sample, encode), "targets") for name, encode in _numpy_rows(size, heatmap).items()}
    labels = Labels(**{f.name: getattr(out, f.name) for f in fields(Labels)})
    specs = _gpuaug_targets(heatmap)
    for name, (spec, _) in specs.items():
        steps[name] = (partial(spec.build, labels, out.valid, out.occluded, size), "targets")
    steps[STEP] = (partial(aug, batch, torch.Generator().manual_seed(0)), "step")
    for name, (spec, in_step) in specs.items():
        if in_step:
            with_targets = FaceAugment(work.config, targets=[spec]).to(device)
            steps[f"step + {name.removeprefix('gpuaug ')}"] = (
                partial(with_targets, batch, torch.Generator().manual_seed(0)), "step")
    return steps


def target_rates(work: Workload, device: torch.device, heatmap: int, repeats: int, slow_repeats: int,
                 warmup: int) -> list[dict]:
    """img/s of every row, timed interleaved; numpy rows ``slow_repeats`` times spread over the rounds."""
    steps = build_steps(work, device, heatmap)
    runs = {name: (step, slow_repeats if "numpy" in name else repeats) for name, (step, _) in steps.items()}
    rows = [{"name": name, "kind": steps[name][1], **timed}
            for name, timed in interleaved_seconds(runs, device, repeats, warmup).items()]
    for row in rows:
        row["median_s"] = statistics.median(row["seconds"])
        row["img_per_s"] = len(work) / row["median_s"]
    return rows


def markdown(result: dict) -> str:
    """Two tables: targets alone (vs mmpose's numpy MSRA heatmaps) and step with targets (vs the step alone)."""
    env = result["environment"]
    rate = {r["name"]: r["img_per_s"] for r in result["rows"]}
    numpy_msra = next(name for name in rate if name.startswith("mmpose MSRAHeatmap"))
    head = (f"B={env['batch']} frames {env['height']}x{env['width']} -> {env['out_size']}x{env['out_size']} grey, "
            f"K=68; heatmaps {env['heatmap']}x{env['heatmap']} sigma {SIGMA:g}, SimCC split {SPLIT:g} sigma "
            f"{SIMCC_SIGMA}; {env['device']}, torch {env['torch']}, {env['torch_threads']} threads; "
            f"{env['timestamp']}; load average before {env['load_before']}.")
    lines = [head, "", "| targets alone | img/s | vs mmpose MSRAHeatmap numpy | ms / batch | timed runs | other load |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [rate_row(r, rate[numpy_msra]) for r in result["rows"] if r["kind"] == "targets"]
    lines += ["", "| augment step | img/s | vs step alone | ms / batch | timed runs | other load |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [rate_row(r, rate[STEP]) for r in result["rows"] if r["kind"] == "step"]
    lines += ["", f"- {result['note']}"]
    return "\n".join(lines) + "\n"


NOTE = ("Targets alone: every row encodes the same output landmarks (the default step's on this batch, weights = "
        "visible). mmpose numpy rows: gpuaug/bench/mmpose_codecs.py, mmpose 1.x's MSRAHeatmap / UDPHeatmap / "
        "SimCCLabel encoders transcribed (codecs/utils/gaussian_heatmap.py, codecs/simcc_label.py), called once per "
        "sample as mmpose's data loader does (GenerateTarget). gpuaug rows: the spec's build on the whole batch "
        "(maps written by one compiled loop into recycled memory on the CPU). Step rows: FaceAugment with and "
        "without the target, the whole step (params, matrices, labels, render, targets). Rows timed interleaved, "
        "median per row; other load: cores other processes kept busy during its runs.")


def run(args: argparse.Namespace, devices: Sequence[torch.device], device_name: Callable[[torch.device], str]
        ) -> list[Path]:
    """The target benchmark on each device; writes ``targets_<device>.{json,md}`` under ``args.out``."""
    def measure(device: torch.device) -> tuple[list[dict], dict]:
        work = make_workload(args.batch, args.height, args.width, args.out_size)
        rows = target_rates(work, device, args.heatmap, args.repeats, args.slow_repeats, args.warmup)
        return rows, {"batch": args.batch, "heatmap": args.heatmap, "slow_repeats": args.slow_repeats}

    return run_per_device(args, devices, device_name, "targets", measure, markdown, NOTE)


def add_args(p: argparse.ArgumentParser) -> None:
    """The target benchmark's own options (shared with ``gpuaug bench --targets``)."""
    p.add_argument("--heatmap", type=int, default=64, help="heatmap side in pixels (default 64)")


def main(argv: Sequence[str] | None = None) -> None:
    """The target benchmark alone; takes ``gpuaug bench``'s options (sizes, repeats, devices, --out)."""
    run_alone(run, argv)


if __name__ == "__main__":
    main()
