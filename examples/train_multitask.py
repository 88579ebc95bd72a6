"""Train a small face multitask network (68 landmarks in 2D with their depth, head pose, gaze) on gpuaug batches.

A complete script to copy and adapt::

    python examples/train_multitask.py                  # bundled synthetic videos; a few minutes on 2 CPU cores
    python examples/train_multitask.py --data packed/ --device cuda --epochs 60 --batch 256
    python examples/train_multitask.py --compare        # no augmentation vs gpuaug vs gpuaug with the seed's labels
    python examples/train_multitask.py --compare --threads 1   # as committed: 25 min on a shared 2-core CPU

Data (``--data``): an npz directory or a packed one (``python -m gpuaug pack``); by default synthetic videos
written on first run (``gpuaug.synth.write_dataset``) to ``examples/runs/synth_faces``. The split is by video,
the same for every seed: every 6th video validates, so no validation frame has a near twin in training.

Path: the whole data set held on the training device (``gpuaug.ResidentFrames``) when it needs under half of the
free memory there (``required_bytes``), else whole ragged batches read per step: by ``gpuaug.StreamLoader``'s
threads from packed data, by ``DataLoader(frames, collate_fn=gpuaug.collate)`` from npz; ``--path`` forces one.
``FaceAugment`` augments for training; ``aug.eval()`` gives the centred framing for validation.

Model: four stages of two 3x3 convolutions (24 to 192 channels), pooled to 4x4, a shared 256-unit layer and one
linear head per task: 2D landmarks, their z, head pose and gaze. Losses: L1 on normalised targets (see
:func:`targets`), landmarks and z over the points ``visible`` in the crop, everything over ``valid`` samples only.
bf16 autocast on CUDA; float32 on the CPU.

Metrics (validation videos, in the field's units): landmark NME in SOURCE pixels (predictions mapped back with
``out.to_source``, error per point over the inter-ocular distance between the outer eye corners 36 and 45, as
300W reports it, in %); z error over the inter-ocular distance in output pixels (%); head pose MAE per angle and
gaze angular error, in degrees. Each on the plain validation set (eval framing) and on rotated and flipped copies
of it (eval framing plus fixed rotations of -30, -15, 15, 30 degrees, each with and without a flip; labels exact,
from ``aug.apply``). A "mean face" baseline predicts the training set's mean output-space labels for every image.

``--compare`` trains the same model with the same budget ``--seeds`` times in each of four ways: ``none`` (eval
framing for training too), ``gpuaug`` (``FaceAugment``'s defaults), ``seed-labels`` (gpuaug's pixels with the
labels the seed loader would give the same geometry: :func:`seed_label_rules`, a batched restatement of
``augment_sample`` in ``gpuaug/bench/seed_pipeline.py``, the only code here besides gpuaug's public API, torch,
numpy, tqdm and matplotlib), and ``seed-pose``, the control that tells the seed's two approximations apart: its
pose rule with gpuaug's exact z. It writes one table (markdown + JSON) and a plot of the errors against the
rotation angle to ``--results`` (the repository's ``bench/results/`` by default).

Outputs of a run (``--out``): ``checkpoint.pt``, ``metrics.json``, ``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

import gpuaug
from gpuaug.load.packed import PackedSource
from gpuaug.load.resident import required_bytes
from gpuaug.synth import write_dataset

HERE = Path(__file__).resolve().parent
SYNTH_VIDEOS, SYNTH_FRAMES = 48, 24  # the default data set: 1152 frames, 40 videos train and 8 validate
VAL_EVERY = 6  # every 6th video (5, 11, ...) is a validation video
EYE_CORNERS = (36, 45)  # outer eye corners (iBUG 68), the inter-ocular distance of 300W's NME
EVAL_ANGLES = (-30.0, -15.0, 0.0, 15.0, 30.0)  # degrees, clockwise on screen; each with and without a flip
POSE_UNIT = 90.0  # degrees per unit of the pose head's output
HEADS = {"landmarks2d": (68, 2), "z": (68,), "head_pose": (3,), "gaze": (3,)}
ARMS = {"none": "no augmentation", "gpuaug": "gpuaug", "seed-labels": "gpuaug pixels, seed's label rules",
        "seed-pose": "gpuaug pixels, seed's pose rule, exact z"}
METRICS = {"nme": "NME %", "yaw": "yaw °", "pitch": "pitch °", "roll": "roll °", "gaze": "gaze °", "z_nme": "z %"}

Predict = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="npz or packed directory (default: synthetic videos, written once)")
    p.add_argument("--out", type=Path, help="run outputs (default examples/runs/train, or examples/runs/compare)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle schedule, AdamW)")
    p.add_argument("--size", type=int, default=64, help="output side S of the augmented crops, pixels")
    p.add_argument("--seed", type=int, default=0, help="model init, batch order and augmentation draws")
    p.add_argument("--aug", choices=ARMS, default="gpuaug", help="how training batches are made")
    p.add_argument("--head", choices=LandmarkHead.KINDS, default="regression",
                   help="landmark head: coordinates, heatmaps or SimCC (their targets built by gpuaug in the step)")
    p.add_argument("--compare-heads", action="store_true",
                   help="train each --head --seeds times with gpuaug's augmentation, write a table")
    p.add_argument("--path", choices=("auto", "resident", "loader"), default="auto",
                   help="resident data set or ragged DataLoader (auto: resident when it fits)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(),
                   help="CPU threads (default: every core); on a busy shared CPU 1 can be several times faster, as "
                        "each op waits for its slowest thread")
    p.add_argument("--compare", action="store_true", help="train every --aug arm --seeds times, write a table")
    p.add_argument("--seeds", type=int, default=3, help="--compare: seeds per arm (--seed, --seed + 1, ...)")
    p.add_argument("--results", type=Path, default=HERE.parent / "bench" / "results", help="--compare's table")
    args = p.parse_args(argv)
    args.device = torch.device(args.device)
    args.out = args.out or HERE / "runs" / ("compare" if args.compare else "heads" if args.compare_heads else "train")
    return args


# --- data ----------------------------------------------------------------------------------------------------


def open_data(path: Path | None) -> tuple[gpuaug.FaceFrames, Path]:
    """The data set at ``path``; without one, the synthetic videos (written on first use)."""
    if path is None:
        path = HERE / "runs" / "synth_faces"
        if not any(path.glob("*.npz")):
            write_dataset(path, videos=SYNTH_VIDEOS, frames=SYNTH_FRAMES, seed=0, progress=True)
    frames = gpuaug.FaceFrames(path)
    print(frames.skip_report())
    return frames, path


def split_by_video(frames: gpuaug.FaceFrames) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) int64 data set indices: the frames of every :data:`VAL_EVERY`-th video validate
    (the last video when there are fewer)."""
    video = np.repeat(np.arange(len(frames.videos)), [len(v.frames) for v in frames.videos])
    if len(frames.videos) < 2:
        raise ValueError("a split by video needs at least 2 videos")
    val_videos = np.arange(VAL_EVERY - 1, len(frames.videos), VAL_EVERY)
    is_val = np.isin(video, val_videos if len(val_videos) else [len(frames.videos) - 1])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class Feed:
    """FaceBatches on the training device for any subset of a data set's frames.

    Resident: every frame held on the device once (``ResidentFrames``, rank 0 of 1, so its positions are the
    data set's indices); a batch is an index select, nothing is read or copied per batch. Loader, packed data:
    whole ragged batches read by ``StreamLoader``'s threads into recycled (on CUDA page-locked) buffers, a few
    batches ahead, no worker processes. Loader, npz: a ``DataLoader`` (one copy per byte; shuffled reads decode
    a whole video per frame: pack the data first), with workers only on CUDA: on the CPU the augment step and
    the model use every core, and workers would compete with them.
    """

    def __init__(self, frames: gpuaug.FaceFrames, device: torch.device, batch_size: int, path: str) -> None:
        self.frames, self.device, self.batch_size = frames, device, batch_size
        if path == "auto":
            if device.type == "cuda":
                free = torch.cuda.mem_get_info(device)[0]
            else:
                free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            path = "resident" if required_bytes(frames) < 0.5 * free else "loader"
        self.path = path
        self.resident = gpuaug.ResidentFrames(frames, device) if path == "resident" else None
        self.workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0

    def batches(self, indices: np.ndarray, epoch: int | None = None, seed: int = 0) -> Iterator[gpuaug.FaceBatch]:
        """``indices`` in order (``epoch=None``: every frame, the last batch short) or shuffled for (seed,
        epoch) in full batches only (the training order)."""
        if epoch is not None:
            indices = indices[np.random.default_rng([seed, epoch]).permutation(len(indices))]
            indices = indices[:len(indices) // self.batch_size * self.batch_size]
        if self.resident is not None:
            for start in range(0, len(indices), self.batch_size):
                yield self.resident[torch.from_numpy(indices[start:start + self.batch_size])]
            return
        if isinstance(self.frames.source, PackedSource):  # the given order; the training pass trimmed it
            yield from gpuaug.StreamLoader(self.frames, self.batch_size, sampler=indices, device=self.device)
            return
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(self.frames, indices.tolist()), batch_size=self.batch_size,
            collate_fn=gpuaug.collate, num_workers=self.workers, pin_memory=self.device.type == "cuda")
        for batch in loader:
            yield batch.to(self.device, non_blocking=True)

    def steps(self, indices: np.ndarray) -> int:
        """Training batches per epoch over ``indices``."""
        return len(indices) // self.batch_size


# --- model and loss ------------------------------------------------------------------------------------------


def conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LandmarkHead:
    """How the 2D landmarks are predicted and trained (``--head``).

    ``regression``: (B, 68, 2) coordinates from the pooled features, L1 on (pixels - centre) / S. ``heatmap``:
    (B, 68, S/2, S/2) maps from the stride-4 features of a small feature pyramid, trained on gpuaug's UDP heatmaps
    (sigma 2 heatmap pixels = 4 output pixels; measured: sigma 1 learns far slower in this budget) with a
    weighted squared error, decoded by UDP's DARK step.
    ``simcc``: x and y labels of S * 4 bins each (0.25 output px) from the same features, trained on gpuaug's
    SimCC labels (sigma 3 bins) with the KL divergence from the normalised label, decoded by argmax (mmpose's
    ``SimCCLabel.decode``).
    """

    KINDS = ("regression", "heatmap", "simcc")
    HEATMAP_SIGMA, SIMCC_SPLIT, SIMCC_SIGMA = 2.0, 4.0, 3.0

    def __init__(self, kind: str, size: int) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"--head must be one of {self.KINDS}, got {kind!r}")
        self.kind, self.size = kind, size

    def target(self) -> list:
        """The gpuaug target the step builds for this head (none for regression)."""
        from gpuaug.targets import HeatmapTarget, SimCCTarget

        if self.kind == "heatmap":
            return [HeatmapTarget(size=self.size // 2, sigma=self.HEATMAP_SIGMA, encoding="udp")]
        if self.kind == "simcc":
            return [SimCCTarget(split_ratio=self.SIMCC_SPLIT, sigma=self.SIMCC_SIGMA, normalize=False)]
        return []

    def loss(self, pred: dict[str, torch.Tensor], out: gpuaug.AugmentedBatch) -> torch.Tensor:
        """The landmark loss: weighted by gpuaug's target weights (visible points of valid samples)."""
        if self.kind == "heatmap":
            target = out.targets["heatmap"]
            # Squared error summed over each map, over the target's own mass (pi sigma^2): about 1 at the start.
            error = (pred["heatmaps"].float() - target.heatmaps).square().sum((-2, -1))
            per_point = error / (math.pi * self.HEATMAP_SIGMA**2)
        elif self.kind == "simcc":
            target = out.targets["simcc"]
            # KL divergence of the predicted distribution from the normalised label per axis (mmpose's KLDiscretLoss
            # without its temperature): 0 for a perfect prediction.
            per_point = sum(F.kl_div(F.log_softmax(logits.float(), -1), label / label.sum(-1, keepdim=True).clamp_min(
                1e-12), reduction="none").sum(-1) for logits, label in ((pred["simcc_x"], target.x),
                                                                        (pred["simcc_y"], target.y)))
        else:
            return regression_loss(pred, out, ("landmarks2d",))
        return (per_point * target.weights).sum() / target.weights.sum().clamp(min=1)

    def decode(self, pred: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 68, 2) output pixels from this head's prediction."""
        from gpuaug.targets import decode_heatmaps, decode_simcc

        if self.kind == "heatmap":
            # The modulation blur's kernel for the maps' sigma (OpenCV: sigma = 0.3 ((k - 1) / 2 - 1) + 0.8: k = 11).
            kernel = 2 * round((self.HEATMAP_SIGMA - 0.8) / 0.3 + 1) + 1
            return decode_heatmaps(pred["heatmaps"].float(), (self.size, self.size), "udp", kernel)[0]
        if self.kind == "simcc":
            # Through a softmax: the decoder reads a score <= 0 as "no keypoint", and logits have no sign to trust.
            x, y = (pred[f"simcc_{axis}"].float().softmax(-1) for axis in "xy")
            return decode_simcc(x, y, self.SIMCC_SPLIT)[0]
        return pred["landmarks2d"].float() * self.size + (self.size - 1) / 2


class MultitaskNet(nn.Module):
    """(B, C, S, S) images -> normalised predictions (the units of :func:`targets`): z (B, 68), head_pose (B, 3),
    gaze (B, 3), and the landmark head's output (:class:`LandmarkHead`): landmarks2d (B, 68, 2), or heatmaps
    (B, 68, S/2, S/2), or simcc_x and simcc_y (B, 68, 4 S).

    Four stages of two 3x3 convolutions (the first of each stride 2), pooled to 4x4, a shared hidden layer and a
    linear head per task. The heatmap and SimCC heads read a feature pyramid: stages 2-4 projected to 64
    channels, summed top-down at stride 4. Every convolution is 3x3 or a stride-1 1x1, none is a 1x1 stride-2
    projection: torch 2.13's CPU backward of a 1x1 stride-2 convolution over few (4) input channels in
    channels_last hangs (2 threads) or corrupts the heap (1 thread) on AMD EPYC; the CPU path also keeps the
    contiguous memory format (see :func:`augment_config`).
    """

    def __init__(self, in_channels: int, head: LandmarkHead, widths: Sequence[int] = (24, 48, 96, 192),
                 hidden: int = 256, pyramid: int = 64) -> None:
        super().__init__()
        stages, cin = [], in_channels
        for width in widths:  # each stage halves the side: S = 64 -> 4
            stages.append(nn.Sequential(conv_bn_relu(cin, width, 2), conv_bn_relu(width, width, 1)))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(cin * 16, hidden),
                                  nn.ReLU(inplace=True))
        self.kind, size = head.kind, head.size
        shapes = {name: shape for name, shape in HEADS.items() if name != "landmarks2d" or head.kind == "regression"}
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, math.prod(shape)) for name, shape in shapes.items()})
        if head.kind != "regression":
            self.lateral = nn.ModuleList(nn.Conv2d(w, pyramid, 1) for w in widths[1:])
            self.smooth = conv_bn_relu(pyramid, pyramid, 1)
        if head.kind == "heatmap":
            self.maps = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), conv_bn_relu(pyramid, pyramid, 1),
                                      nn.Conv2d(pyramid, HEADS["landmarks2d"][0], 1))
        elif head.kind == "simcc":
            points, bins = HEADS["landmarks2d"][0], int(size * head.SIMCC_SPLIT)
            self.points = nn.Conv2d(pyramid, points, 1)
            self.simcc = nn.ModuleDict({axis: nn.Linear((size // 4) ** 2, bins) for axis in ("x", "y")})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features, x = [], images
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        pooled = self.pool(x)
        pred = {name: head(pooled).view(-1, *HEADS[name]) for name, head in self.heads.items()}
        if self.kind == "regression":
            return pred
        top = self.lateral[-1](features[-1])
        for lateral, f in zip(reversed(self.lateral[:-1]), reversed(features[1:-1]), strict=True):
            top = lateral(f) + F.interpolate(top, size=f.shape[-2:], mode="nearest")
        top = self.smooth(top)  # stride 4: S/4 x S/4
        if self.kind == "heatmap":
            return {**pred, "heatmaps": self.maps(top)}
        points = self.points(top).flatten(2)
        return {**pred, "simcc_x": self.simcc["x"](points), "simcc_y": self.simcc["y"](points)}


def augment_config(size: int, device: torch.device) -> gpuaug.AugmentConfig:
    """The seed's augmentation chain at S x S; channels-last images on CUDA only (the CPU trap above)."""
    return gpuaug.AugmentConfig(out_size=size, channels_last=device.type == "cuda")


def targets(out: gpuaug.AugmentedBatch) -> dict[str, torch.Tensor]:
    """Labels in the heads' units, about unit range: landmarks (output pixels - centre) / S, z / S (output
    pixels), head pose / 90 degrees, unit gaze."""
    size = out.images.shape[-1]
    return {"landmarks2d": (out.landmarks2d - (size - 1) / 2) / size, "z": out.landmarks3d[..., 2] / size,
            "head_pose": out.head_pose / POSE_UNIT, "gaze": F.normalize(out.gaze, dim=-1)}


def decode(pred: dict[str, torch.Tensor], head: LandmarkHead) -> dict[str, torch.Tensor]:
    """Inverse of :func:`targets` (and the landmark head's decoder): output pixels, degrees, unit gaze (float32)."""
    return {"landmarks2d": head.decode(pred), "z": pred["z"].float() * head.size,
            "head_pose": pred["head_pose"].float() * POSE_UNIT, "gaze": F.normalize(pred["gaze"].float(), dim=-1)}


def regression_loss(pred: dict[str, torch.Tensor], out: gpuaug.AugmentedBatch, names: Sequence[str]) -> torch.Tensor:
    """Sum over the named heads of the mean L1 error: landmarks and z over visible points of valid samples, pose
    and gaze over valid samples. Invalid samples have NaN labels: they are zeroed before the difference, so no
    NaN reaches the gradient."""
    point = out.visible & out.valid[:, None]
    masks = {"landmarks2d": point[..., None], "z": point, "head_pose": out.valid[:, None], "gaze": out.valid[:, None]}
    total = torch.zeros((), device=out.images.device)
    for name, target in targets(out).items():
        if name not in names:
            continue
        mask = masks[name].expand_as(target)
        error = torch.where(mask, pred[name].float() - target.nan_to_num(), 0).abs()
        total = total + error.sum() / mask.sum().clamp(min=1)
    return total


def multitask_loss(pred: dict[str, torch.Tensor], out: gpuaug.AugmentedBatch, head: LandmarkHead) -> torch.Tensor:
    """The landmark head's loss plus the L1 losses of z, head pose and gaze."""
    return head.loss(pred, out) + regression_loss(pred, out, ("z", "head_pose", "gaze"))


def seed_label_rules(batch: gpuaug.FaceBatch, out: gpuaug.AugmentedBatch) -> gpuaug.AugmentedBatch:
    """``out`` with the labels the seed loader gives the same geometry (``augment_sample`` in
    gpuaug/bench/seed_pipeline.py): pixels and 2D landmarks unchanged (the seed moves landmarks exactly);
    under a flip yaw, roll and gaze x negate; under a rotation by theta ``roll += theta``, yaw and pitch kept,
    gaze (x, y) turned in the image plane; z stays in source pixels (the seed never scales it).

    The seed flips, then rotates; gpuaug's matrix rotates by ``angle``, then flips, and F R(a) = R(-a) F, so
    the seed's theta is ``-angle`` for flipped samples. The flip and gaze rules are exact; ``roll += theta`` is
    exact only at yaw = pitch = 0, and the unscaled z is off by the crop's zoom.
    """
    flipped = out.flipped
    theta = torch.deg2rad(torch.where(flipped, -out.params.angle, out.params.angle))
    sign = torch.where(flipped, -1.0, 1.0)
    yaw, pitch, roll = batch.head_pose.unbind(-1)
    head_pose = torch.stack([yaw * sign, pitch, roll * sign + torch.rad2deg(theta)], -1)
    gx, gy, gz = batch.gaze.unbind(-1)
    gx, (c, s) = gx * sign, (torch.cos(theta), torch.sin(theta))
    gaze = torch.stack([c * gx + s * gy, c * gy - s * gx, gz], -1)  # the seed's rot.T @ (x, y): y points up
    z = batch.landmarks3d[..., 2:]
    z = torch.where(flipped[:, None, None], z[:, out.flip_table], z)  # re-indexed like the 2D landmarks
    return replace(out, head_pose=head_pose, gaze=gaze, landmarks3d=torch.cat([out.landmarks3d[..., :2], z], -1))


# --- evaluation ----------------------------------------------------------------------------------------------


def errors(
    pred: dict[str, torch.Tensor], out: gpuaug.AugmentedBatch, batch: gpuaug.FaceBatch
) -> dict[str, torch.Tensor]:
    """Per-sample (B,) errors of decoded predictions: NME (%) in source pixels, z error (%) over the output
    inter-ocular distance, yaw/pitch/roll absolute error and gaze angle (degrees)."""
    a, b = EYE_CORNERS
    truth = batch.landmarks2d
    nme = (out.to_source(pred["landmarks2d"]) - truth).norm(dim=-1).mean(1) / (truth[:, a] - truth[:, b]).norm(dim=-1)
    out_iod = (out.landmarks2d[:, a] - out.landmarks2d[:, b]).norm(dim=-1)
    z_nme = (pred["z"] - out.landmarks3d[..., 2]).abs().mean(1) / out_iod
    pose = ((pred["head_pose"] - out.head_pose + 180) % 360 - 180).abs()  # wrapped to [-180, 180)
    cos = F.cosine_similarity(pred["gaze"], out.gaze, dim=-1).clamp(-1, 1)
    return {"nme": 100 * nme, "yaw": pose[:, 0], "pitch": pose[:, 1], "roll": pose[:, 2],
            "gaze": torch.rad2deg(torch.acos(cos)), "z_nme": 100 * z_nme}


@torch.no_grad()
def evaluate(predict: Predict, feed: Feed, indices: np.ndarray, aug: gpuaug.FaceAugment, angle: float = 0.0,
             flip: bool = False) -> dict[str, float]:
    """Mean errors (see :func:`errors`) over the valid samples of ``indices`` in eval framing, turned by
    ``angle`` degrees and mirrored when ``flip`` (``aug.apply`` with the eval params so changed)."""
    aug.eval()
    sums: dict[str, torch.Tensor] = {}
    count = torch.zeros((), device=feed.device)
    for batch in feed.batches(indices):
        params = aug.sample_params(batch)
        params = replace(params, angle=torch.full_like(params.angle, angle), flip=torch.full_like(params.flip, flip))
        out = aug.apply(batch, params)
        for name, e in errors(predict(out.images), out, batch).items():
            sums[name] = sums.get(name, 0) + torch.where(out.valid, e, 0).sum()
        count += out.valid.sum()
    return {name: float(s / count) for name, s in sums.items()}


def evaluate_all(predict: Predict, feed: Feed, indices: np.ndarray, aug: gpuaug.FaceAugment) -> dict:
    """``plain`` (eval framing), ``rotated`` (mean over the non-zero :data:`EVAL_ANGLES`, each with and without
    a flip) and ``by_angle`` (each angle, mean over flip and no flip)."""
    runs = {(a, f): evaluate(predict, feed, indices, aug, a, f) for a in EVAL_ANGLES for f in (False, True)}

    def mean(keys: list[tuple[float, bool]]) -> dict[str, float]:
        return {name: float(np.mean([runs[k][name] for k in keys])) for name in METRICS}

    return {"plain": runs[0.0, False], "rotated": mean([(a, f) for a, f in runs if a != 0]),
            "by_angle": {str(a): mean([(a, False), (a, True)]) for a in EVAL_ANGLES}}


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA; off on the CPU (float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def model_predictor(model: nn.Module, head: LandmarkHead, device: torch.device) -> Predict:
    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        model.eval()
        with autocast(device):
            return decode(model(images), head)

    return predict


@torch.no_grad()
def mean_face_predictor(feed: Feed, indices: np.ndarray, aug: gpuaug.FaceAugment) -> Predict:
    """The baseline: the mean over ``indices`` (training frames, eval framing) of every output-space label,
    predicted for every image."""
    aug.eval()
    sums, count = {}, 0
    for batch in feed.batches(indices):
        out = aug(batch)
        labels = {"landmarks2d": out.landmarks2d, "z": out.landmarks3d[..., 2], "head_pose": out.head_pose,
                  "gaze": F.normalize(out.gaze, dim=-1)}
        for name, value in labels.items():
            sums[name] = sums.get(name, 0) + value[out.valid].sum(0)
        count += out.valid.sum()
    mean = {name: s / count for name, s in sums.items()}
    mean["gaze"] = F.normalize(mean["gaze"], dim=-1)
    return lambda images: {name: m.expand(len(images), *m.shape) for name, m in mean.items()}


# --- training ------------------------------------------------------------------------------------------------


def train(args: argparse.Namespace, arm: str, seed: int, feed: Feed, split: tuple[np.ndarray, np.ndarray],
          out_dir: Path) -> dict:
    """Train one model, evaluate it and write ``out_dir``/{checkpoint.pt, metrics.json, learning_curve.png};
    returns the metrics."""
    start, device = time.perf_counter(), args.device
    train_idx, val_idx = split
    torch.manual_seed(seed)  # the model's initial weights
    config = augment_config(args.size, device)
    head = LandmarkHead(args.head, args.size)
    aug = gpuaug.FaceAugment(config, targets=head.target()).to(device)  # the head's targets, built in the step
    model = MultitaskNet(config.channels, head).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    steps = feed.steps(train_idx)
    if steps == 0:
        raise ValueError(f"{len(train_idx)} training frames make no batch of {args.batch}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.epochs * steps)
    gen = torch.Generator().manual_seed(seed)  # every augmentation draw
    predict = model_predictor(model, head, device)
    step_losses: list[torch.Tensor] = []
    history = []
    with tqdm(total=args.epochs * steps, desc=f"{arm} seed {seed}", unit="step", dynamic_ncols=True) as bar:
        for epoch in range(args.epochs):
            model.train()
            aug.train(arm != "none")  # "none": the eval framing for training too
            for batch in feed.batches(train_idx, epoch, seed):
                out = aug(batch, gen)
                if arm.startswith("seed"):
                    seed_out = seed_label_rules(batch, out)
                    out = seed_out if arm == "seed-labels" else replace(seed_out, landmarks3d=out.landmarks3d)
                with autocast(device):
                    loss = multitask_loss(model(out.images), out, head)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
                step_losses.append(loss.detach())
                bar.update()
            val = evaluate(predict, feed, val_idx, aug)
            train_loss = float(torch.stack(step_losses[-steps:]).mean())
            history.append({"epoch": epoch + 1, "train_loss": train_loss, **{f"val_{k}": v for k, v in val.items()}})
            bar.set_postfix(loss=f"{train_loss:.3f}", val_nme=f"{val['nme']:.2f}%")
    metrics = {
        "arm": arm, "head": args.head, "seed": seed, "device": str(device), "epochs": args.epochs, "batch": args.batch,
        "size": args.size, "lr": args.lr, "steps": args.epochs * steps, "threads": torch.get_num_threads(),
        "path": feed.path, "train_frames": len(train_idx), "val_frames": len(val_idx),
        "parameters": sum(p.numel() for p in model.parameters()),
        **evaluate_all(predict, feed, val_idx, aug),
        "history": history, "train_loss_steps": [float(v) for v in step_losses],
        "seconds": time.perf_counter() - start,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "augment_config": asdict(config), "arm": arm, "head": args.head,
                "seed": seed, "epochs": args.epochs, "size": args.size}, out_dir / "checkpoint.pt")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    plot_learning_curve(history, metrics["train_loss_steps"], out_dir / "learning_curve.png",
                        f"{arm}, {args.head} head, seed {seed}")
    return metrics


def plot_learning_curve(history: list[dict], step_losses: list[float], path: Path, title: str) -> None:
    """Training loss per step and validation NME / pose error per epoch."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    loss_ax, nme_ax, pose_ax = fig.subplots(1, 3)
    steps_per_epoch = len(step_losses) / len(history)
    loss_ax.plot(np.arange(1, len(step_losses) + 1) / steps_per_epoch, step_losses, lw=0.6, alpha=0.5, label="step")
    epochs = [h["epoch"] for h in history]
    loss_ax.plot(epochs, [h["train_loss"] for h in history], label="epoch mean")
    loss_ax.set(xlabel="epoch", ylabel="training loss (sum of L1)", yscale="log", title=title)
    loss_ax.legend()
    nme_ax.plot(epochs, [h["val_nme"] for h in history])
    nme_ax.set(xlabel="epoch", ylabel="validation NME % (source pixels)", yscale="log")
    for name in ("yaw", "pitch", "roll", "gaze"):
        pose_ax.plot(epochs, [h[f"val_{name}"] for h in history], label=name)
    pose_ax.set(xlabel="epoch", ylabel="validation error, degrees", yscale="log")
    pose_ax.legend()
    fig.savefig(path, dpi=110)


# --- the comparison ------------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    """'cuda NVIDIA H100 ...' or 'cpu AMD EPYC (2 cores)'."""
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"cpu {model} ({os.cpu_count()} cores)"


def summarise(runs: list[dict], baseline: dict, key: str = "arm", groups: Sequence[str] = tuple(ARMS)) -> dict:
    """Per group (the runs' ``key``: arm, or head) and validation set ("plain", "rotated", "by_angle" per
    angle): mean and sample standard deviation over the seeds of every metric; the baseline's values."""
    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}

    table = {}
    for arm in groups:
        mine = [r for r in runs if r[key] == arm]
        if not mine:
            continue
        table[arm] = {
            "seeds": [r["seed"] for r in mine],
            **{split: {m: stats([r[split][m] for r in mine]) for m in METRICS} for split in ("plain", "rotated")},
            "by_angle": {a: {m: stats([r["by_angle"][a][m] for r in mine]) for m in METRICS}
                         for a in mine[0]["by_angle"]},
        }
    return {"arms": table, "mean_face": baseline}


def markdown(result: dict) -> str:
    env, arms, base = result["environment"], result["summary"]["arms"], result["summary"]["mean_face"]
    lines = [
        f"# Training with exact vs approximate labels ({env['device']})",
        "",
        f"Command: `{env['command']}` ({env['date']}, torch {env['torch']}; {env['note']}).",
        "",
        f"Data: {env['data']}; split by video: {env['train_frames']} training frames, {env['val_frames']} "
        f"validation frames (every {VAL_EVERY}th video). Model: {env['parameters']:,} parameters, "
        f"{env['size']}x{env['size']} grey crops, {env['epochs']} epochs of batch {env['batch']} ({env['steps']} "
        f"steps, AdamW one-cycle, peak lr {env['lr']}), the same for every arm; data path: {env['path']}. Wall "
        f"time per run {env['run_seconds_mean']:.0f} s on average (training and evaluation), "
        f"{env['total_seconds'] / 60:.1f} min in all.",
        "",
        "Arms: **no augmentation** trains on the eval framing; **gpuaug** on `FaceAugment`'s defaults (the seed's "
        "chain: colour jitter, grey, crop margin 0-0.2, shift +-0.125, rotation +-15 degrees, flip p = 0.5) with "
        "exact labels; **seed's label rules** on the same pixels with the labels the seed loader's rules give them "
        "(`roll += angle` under rotation, yaw and roll negated under a flip, gaze turned in the image plane, z not "
        "scaled; `seed_label_rules` in examples/train_multitask.py); **seed's pose rule, exact z** is the control: the "
        "seed's rules with gpuaug's z, so the pose columns show what `roll += angle` alone costs.",
        "",
        "Validation: **plain** = eval framing; **rotated** = eval framing turned by -30, -15, 15 and 30 degrees, "
        "each with and without a flip (exact labels). NME: mean point error in source pixels over the outer-eye-"
        "corner distance (%); z: mean z error over the inter-ocular distance, output pixels (%); pose: mean "
        "absolute error per angle; gaze: mean angle between predicted and true gaze. "
        f"Mean ± sample standard deviation over seeds {', '.join(map(str, next(iter(arms.values()))['seeds']))}; "
        "each run in the JSON and below.",
        "",
        "| training | validation | " + " | ".join(METRICS.values()) + " |",
        "|---|---|" + "---:|" * len(METRICS),
    ]
    for split in ("plain", "rotated"):
        lines.append(f"| mean face (baseline) | {split} | "
                     + " | ".join(f"{base[split][m]:.2f}" for m in METRICS) + " |")
        for arm, row in arms.items():
            cells = [f"{row[split][m]['mean']:.2f} ± {row[split][m]['std']:.2f}" for m in METRICS]
            lines.append(f"| {ARMS[arm]} | {split} | " + " | ".join(cells) + " |")
    lines += ["", "Each run (plain / rotated):", "",
              "| training | seed | " + " | ".join(METRICS.values()) + " | seconds |",
              "|---|---:|" + "---:|" * (len(METRICS) + 1)]
    for run in result["runs"]:
        cells = [f"{run['plain'][m]:.2f} / {run['rotated'][m]:.2f}" for m in METRICS]
        lines.append(f"| {ARMS[run['arm']]} | {run['seed']} | " + " | ".join(cells) + f" | {run['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def plot_by_angle(result: dict, path: Path) -> None:
    """Validation error against the rotation angle (mean over flip and no flip), one line per arm with its
    spread over seeds, the mean-face baseline dashed."""
    arms, base = result["summary"]["arms"], result["summary"]["mean_face"]
    fig = Figure(figsize=(13, 4), layout="constrained")
    for ax, metric in zip(fig.subplots(1, 4), ("yaw", "pitch", "roll", "nme"), strict=True):
        for arm, row in arms.items():
            angles = [float(a) for a in row["by_angle"]]
            mean = np.array([v[metric]["mean"] for v in row["by_angle"].values()])
            std = np.array([v[metric]["std"] for v in row["by_angle"].values()])
            ax.plot(angles, mean, marker="o", label=ARMS[arm])
            ax.fill_between(angles, mean - std, mean + std, alpha=0.2)
        ax.plot([float(a) for a in base["by_angle"]], [v[metric] for v in base["by_angle"].values()], "k--", lw=0.8,
                label="mean face")
        ax.set(xlabel="validation rotation, degrees", ylabel=METRICS[metric], xticks=EVAL_ANGLES, yscale="log")
        for axis_format in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis_format("{x:g}")  # plain numbers on the log axis
    fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(arms) + 1)
    fig.suptitle(f"Validation error vs rotation (training used +-15 degrees); {result['environment']['device']}")
    fig.savefig(path, dpi=110)


def compare(args: argparse.Namespace, feed: Feed, split: tuple[np.ndarray, np.ndarray], data: str,
            baseline: dict) -> list[Path]:
    """Every arm for each of ``args.seeds`` seeds (seeds outer, so a slow spell on a shared machine hits all
    arms alike); writes the table (md, json) and the plot to ``args.results``."""
    start, load = time.perf_counter(), os.getloadavg()[0]
    runs = []
    for seed in range(args.seed, args.seed + args.seeds):
        for arm in ARMS:
            runs.append(train(args, arm, seed, feed, split, args.out / f"{arm}_seed{seed}"))
            (args.out / "runs.json").write_text(json.dumps(runs) + "\n")  # partial results survive a stop
    device = device_name(args.device)
    result = {
        "environment": {
            "device": device, "command": " ".join(["python", *sys.orig_argv[1:]]), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "data": data,
            "note": f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: timings on a "
                    "shared machine",
            **{k: runs[0][k] for k in ("train_frames", "val_frames", "parameters", "epochs", "batch", "size", "lr",
                                       "steps", "threads", "path")},
            "run_seconds_mean": float(np.mean([r["seconds"] for r in runs])),
            "total_seconds": time.perf_counter() - start,
        },
        "summary": summarise(runs, baseline),
        "runs": [{k: v for k, v in r.items() if k not in ("history", "train_loss_steps")} for r in runs],
    }
    stem = args.results / f"train_compare_{re.sub(r'[^a-z0-9]+', '-', device.lower()).strip('-')}"
    args.results.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(result, indent=1) + "\n")
    paths[1].write_text(markdown(result))
    plot_by_angle(result, paths[2])
    return paths


def heads_markdown(result: dict) -> str:
    """The head comparison's table: mean ± std over seeds per head, the mean face, then every run."""
    env, heads, base = result["environment"], result["heads"], result["mean_face"]
    lines = [f"# Landmark heads trained from gpuaug's targets ({env['device']})", "",
             f"Command: `{env['command']}` ({env['date']}, torch {env['torch']}; {env['note']}).", "",
             f"Data: {env['data']}; {env['train_frames']} training and {env['val_frames']} validation frames (split by "
             f"video). {env['size']}x{env['size']} grey crops, {env['epochs']} epochs of batch {env['batch']} "
             f"({env['steps']} steps), gpuaug's default augmentation; the same trunk and pose, z and gaze heads for "
             "every row. Heads (`LandmarkHead` in examples/train_multitask.py): regression = coordinates from the "
             f"pooled features (L1); heatmap = {env['size'] // 2}x{env['size'] // 2} maps from a feature pyramid, "
             f"gpuaug `HeatmapTarget(encoding=\"udp\", sigma={LandmarkHead.HEATMAP_SIGMA:g})`, decoded by "
             f"`decode_heatmaps` (UDP's DARK step); simcc = `SimCCTarget(split_ratio={LandmarkHead.SIMCC_SPLIT:g}, "
             f"sigma={LandmarkHead.SIMCC_SIGMA:g})` from the same pyramid, decoded by `decode_simcc` (argmax). "
             "Metrics as in train_compare: NME in source pixels over the outer-eye-corner distance (%), plain = eval "
             "framing, rotated = turned by -30, -15, 15, 30 degrees with and without a flip.", "",
             "| landmark head | validation | parameters | " + " | ".join(METRICS.values()) + " |",
             "|---|---|---:|" + "---:|" * len(METRICS)]
    for split in ("plain", "rotated"):
        lines.append(f"| mean face (baseline) | {split} | | " + " | ".join(f"{base[split][m]:.2f}" for m in METRICS)
                     + " |")
        for head, row in heads.items():
            cells = [f"{row[split][m]['mean']:.2f} ± {row[split][m]['std']:.2f}" for m in METRICS]
            lines.append(f"| {head} | {split} | {row['parameters']:,} | " + " | ".join(cells) + " |")
    lines += ["", "Each run (plain / rotated):", "", "| head | seed | " + " | ".join(METRICS.values()) + " | seconds |",
              "|---|---:|" + "---:|" * (len(METRICS) + 1)]
    for run in result["runs"]:
        cells = [f"{run['plain'][m]:.2f} / {run['rotated'][m]:.2f}" for m in METRICS]
        lines.append(f"| {run['head']} | {run['seed']} | " + " | ".join(cells) + f" | {run['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def compare_heads(args: argparse.Namespace, feed: Feed, split: tuple[np.ndarray, np.ndarray], data: str,
                  baseline: dict) -> list[Path]:
    """Every landmark head for each of ``args.seeds`` seeds (seeds outer), gpuaug's augmentation; writes
    ``train_heads_<device>.{md,json}`` to ``args.results``."""
    start, load = time.perf_counter(), os.getloadavg()[0]
    runs = []
    for seed in range(args.seed, args.seed + args.seeds):
        for head in LandmarkHead.KINDS:
            run_args = argparse.Namespace(**{**vars(args), "head": head})
            runs.append(train(run_args, "gpuaug", seed, feed, split, args.out / f"{head}_seed{seed}"))
            (args.out / "runs.json").write_text(json.dumps(runs) + "\n")  # partial results survive a stop
    heads = summarise(runs, baseline, key="head", groups=LandmarkHead.KINDS)["arms"]
    device = device_name(args.device)
    result = {
        "environment": {
            "device": device, "command": " ".join(["python", *sys.orig_argv[1:]]), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "data": data,
            "note": f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
            **{k: runs[0][k] for k in ("train_frames", "val_frames", "epochs", "batch", "size", "steps", "threads")},
            "total_seconds": time.perf_counter() - start,
        },
        "heads": {head: {**row, "parameters": next(r["parameters"] for r in runs if r["head"] == head)}
                  for head, row in heads.items()},
        "mean_face": baseline,
        "runs": [{k: v for k, v in r.items() if k not in ("history", "train_loss_steps")} for r in runs],
    }
    stem = args.results / f"train_heads_{re.sub(r'[^a-z0-9]+', '-', device.lower()).strip('-')}"
    args.results.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md")]
    paths[0].write_text(json.dumps(result, indent=1) + "\n")
    paths[1].write_text(heads_markdown(result))
    return paths


def main(argv: Sequence[str] | None = None) -> dict:
    """Run (or ``--compare``) as the command line says; returns the run's metrics (or the comparison's files)."""
    args = parse_args(argv)
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    frames, path = open_data(args.data)
    split = split_by_video(frames)
    feed = Feed(frames, args.device, args.batch, args.path)
    data = f"{path} ({len(frames.videos)} videos, {len(frames)} frames)"
    print(f"{data}: {len(split[0])} training and {len(split[1])} validation frames, {feed.path} on {args.device}")
    if feed.path == "loader" and path.is_dir() and not (path / "index.json").exists():
        print("shuffled reads from npz decode a whole video per frame: `python -m gpuaug pack` the data first")
    aug = gpuaug.FaceAugment(augment_config(args.size, args.device)).to(args.device)
    baseline = evaluate_all(mean_face_predictor(feed, split[0], aug), feed, split[1], aug)
    if args.compare or args.compare_heads:
        paths = (compare if args.compare else compare_heads)(args, feed, split, data, baseline)
        print("wrote", *paths)
        return {"files": paths}
    metrics = train(args, args.aug, args.seed, feed, split, args.out)
    metrics["mean_face"] = baseline
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    for name in ("plain", "rotated"):
        got, ref = metrics[name], baseline[name]
        print(f"validation {name}: " + ", ".join(f"{METRICS[m]} {got[m]:.2f} (mean face {ref[m]:.2f})"
                                                  for m in METRICS))
    print(f"{time.perf_counter() - start:.0f} s in all; wrote {args.out}/{{checkpoint.pt, metrics.json, "
          "learning_curve.png}")
    return metrics


if __name__ == "__main__":
    main()
