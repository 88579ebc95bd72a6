"""``python -m gpuaug info``: what this install has and what runs where. One short augment step on every device
present (the bundled synthetic data, 8 frames), then for each: the render that ran, the output, the time."""

from __future__ import annotations

import importlib.metadata
import platform
import tempfile
import time

import torch


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report() -> str:
    """The lines ``gpuaug info`` prints."""
    from gpuaug import AugmentConfig, FaceAugment, FaceFrames, collate
    from gpuaug.backends.torch_backend import auto_render
    from gpuaug.synth.write import write_dataset

    cuda = torch.cuda.is_available()
    dali = [f"{p} {_version(p)}" for p in ("nvidia-dali-cuda120", "nvidia-dali-cuda130")
            if _version(p) != "not installed"]
    capability = "".join(map(str, torch.cuda.get_device_capability())) if cuda else ""
    lines = [
        f"gpuaug {_version('gpuaug')}, Python {platform.python_version()}, {platform.machine()}",
        f"torch {torch.__version__} (built for CUDA {torch.version.cuda or 'none: a CPU build'}), "
        f"kornia {_version('kornia')}, triton {_version('triton')}",
        "DALI: " + (", ".join(dali) if dali else "not installed (the dali backend and loader need it)"),
        "CUDA device: " + (f"{torch.cuda.get_device_name()} (sm_{capability})" if cuda else "none"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(tmp, videos=1, frames=8)
        batch = collate([s for s in FaceFrames(tmp, progress=False)])
    for device in ["cpu", *(["cuda"] if cuda else [])]:
        aug = FaceAugment(AugmentConfig(out_size=64))
        on = batch.to(device)
        aug(on, torch.Generator().manual_seed(0))  # first step: compiles
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = aug(on, torch.Generator().manual_seed(0))
        if device == "cuda":
            torch.cuda.synchronize()
        ms = 1e3 * (time.perf_counter() - start)
        lines.append(f"{device}: render = {auto_render(device)}; 8 frames -> {tuple(out.images.shape)} "
                     f"{out.images.dtype}, all valid: {bool(out.valid.all())}, {ms:.1f} ms a step after warm-up")
    return "\n".join(lines)


def main() -> None:
    print(report())
