"""Is the model kept busy? A ResNet-18-sized CNN trained on 128x128 batches from each data path.

``train only`` trains on one augmented batch over and over: the model's own speed, with no data to wait
for. Each data path (ragged DataLoader with each worker count, resident) feeds the same model a fresh
augmented batch per step. busy = path frames/s / train-only frames/s; data wait = 1 - busy: the share of
the training time the model waits for data. On CUDA the model runs in bfloat16 autocast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from gpuaug.augment import AugmentedBatch
from gpuaug.bench.end_to_end import PathRate, end_to_end_rates

#: Regression targets per sample: 68 x 2 + 68 x 3 landmarks, head pose, gaze.
OUTPUTS = 68 * 2 + 68 * 3 + 3 + 3


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm, identity (or 1x1 projected) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


def reference_cnn(in_channels: int = 1, width: int = 64) -> nn.Module:
    """ResNet-18 layout (stem, 4 stages of 2 basic blocks, widths w, 2w, 4w, 8w), :data:`OUTPUTS` outputs;
    width 64 is ResNet-18's size (11 M parameters); at least 8 (narrower stages meet a torch CPU bug, see
    :func:`feed_rates`)."""
    if width < 8:
        raise ValueError(f"width must be >= 8, got {width}")
    w = width
    stages, cin = [], w
    for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
        stages += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(
        nn.Conv2d(in_channels, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1), *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, OUTPUTS))


def train_step(model: nn.Module, device: torch.device, out_size: int = 128) -> Callable[[AugmentedBatch], None]:
    """One SGD step on an augmented batch: landmarks, pose and gaze regressed (scaled to about unit range)."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    cuda = device.type == "cuda"

    def step(batch: AugmentedBatch) -> None:
        target = torch.cat([batch.landmarks2d.flatten(1) / out_size, batch.landmarks3d.flatten(1) / out_size,
                            batch.head_pose / 90, batch.gaze], 1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = nn.functional.mse_loss(model(batch.images).float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def feed_rates(
    folder: Path, device: torch.device, batch_size: int, workers: tuple[int, ...], repeats: int, width: int = 64,
    on_pass: Callable[[], None] | None = None,
) -> list[dict]:
    """train only, then each data path feeding the reference CNN; rows with frames/s, busy and data wait."""
    model = reference_cnn(width=width).to(device)
    if device.type == "cuda":
        # channels_last is the fast layout for cuDNN. Not on the CPU: torch 2.13.0's oneDNN backward of a 1x1
        # stride-2 channels_last conv with 4 input channels hangs (2 threads) or corrupts the heap (1 thread)
        # on AVX2-only CPUs (AMD EPYC), and the CPU gains little from the layout.
        model = model.to(memory_format=torch.channels_last)
    step = train_step(model, device)
    fed = end_to_end_rates(folder, device, batch_size, workers, repeats, on_pass, consume=step,
                           paths=("ragged", "resident"))
    batch = _one_batch(folder, device, batch_size)
    steps = max(1, fed[0].frames // len(batch))  # as many steps as a timed pass of the data paths
    ceiling = PathRate("train only", 0, steps * len(batch), [_time_steps(step, batch, device, steps)
                                                              for _ in range(repeats)])
    rows = [ceiling, *fed]
    top = ceiling.frames_per_second
    return [{**r.as_dict(), "busy": r.frames_per_second / top, "data_wait": 1 - r.frames_per_second / top}
            for r in rows]


def _one_batch(folder: Path, device: torch.device, batch_size: int) -> AugmentedBatch:
    from gpuaug import AugmentConfig, FaceAugment, FaceFrames

    frames = FaceFrames(folder)
    raw = frames.batch(list(range(min(batch_size, len(frames))))).to(device)
    return FaceAugment(AugmentConfig()).to(device)(raw, torch.Generator().manual_seed(0))


def _time_steps(step: Callable[[AugmentedBatch], None], batch: AugmentedBatch, device: torch.device,
                steps: int) -> float:
    step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start
