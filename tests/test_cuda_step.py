"""The augment step on CUDA: no host synchronisation, and a captured CUDA graph equals the plain step.

Every test here needs a GPU (``python -m pytest -m cuda`` runs them with the other CUDA cases)."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch
from conftest import cuda_only

from gpuaug import AugmentConfig, FaceAugment
from gpuaug.graph import CapturedAugment

CONFIGS = {"grey": AugmentConfig(out_size=64),
           "colour bf16 normalised channels-last": AugmentConfig(out_size=64, grayscale_p=0.5, out_dtype="bfloat16",
                                                                 mean=(0.5,), std=(0.25,), channels_last=True)}


@cuda_only
@pytest.mark.parametrize("name", list(CONFIGS))
def test_step_never_syncs(face_batch, name):
    """A warmed-up step (params drawn on the CPU, labels, render) runs under sync debug mode "error"."""
    aug = FaceAugment(CONFIGS[name]).cuda()
    batch = face_batch.to("cuda")
    gen = torch.Generator().manual_seed(0)
    aug(batch, gen)  # compiles the kernel and puts the constants on the device
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = aug(batch, gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.images.device.type == "cuda" and out.valid.all()


@cuda_only
@pytest.mark.parametrize("name", list(CONFIGS))
def test_captured_step_equals_plain_step(face_batch, name):
    aug = FaceAugment(CONFIGS[name]).cuda()
    batch = face_batch.to("cuda")
    captured = CapturedAugment(aug, batch)
    for seed in (0, 1):
        out = captured(batch, torch.Generator().manual_seed(seed))
        ref = aug(batch, torch.Generator().manual_seed(seed))
        for f in fields(ref):
            if f.name != "params":
                torch.testing.assert_close(getattr(out, f.name), getattr(ref, f.name), atol=0, rtol=0,
                                           equal_nan=True, msg=f.name)
    # A batch with other values (same layout) is copied into the graph's inputs.
    other = face_batch.to("cuda")
    other.landmarks2d += 1
    ref = aug(other, torch.Generator().manual_seed(5))
    assert torch.equal(captured(other, torch.Generator().manual_seed(5)).landmarks2d, ref.landmarks2d)


@cuda_only
def test_captured_step_on_resident_batches(synth_dir):
    """Resident batches all point into one buffer: captured with share_pixels, replays equal the plain step."""
    from gpuaug import FaceFrames, ResidentFrames

    resident = ResidentFrames(FaceFrames(synth_dir), "cuda", progress=False)
    aug = FaceAugment(AugmentConfig(out_size=64)).cuda()
    batches = list(resident.batches(0, 4, drop_last=True))
    captured = CapturedAugment(aug, batches[0], share_pixels=True)
    assert captured.batch.pixels.data_ptr() == resident.data.pixels.data_ptr()  # not copied
    for i, batch in enumerate(batches):
        out = captured(batch, torch.Generator().manual_seed(i))
        ref = aug(batch, torch.Generator().manual_seed(i))
        assert torch.equal(out.images, ref.images) and torch.equal(out.landmarks2d, ref.landmarks2d)
