"""The whole step is one graph: ``torch.compile(aug.apply, fullgraph=True)`` traces matrices, checks, labels and
the render without a break (no .item(), .tolist(), data-dependent shape or branch on a tensor value), and the
compiled step gives the eager step's output."""

from __future__ import annotations

from dataclasses import fields

import torch

from gpuaug import AugmentConfig, FaceAugment, FaceBatch


def test_step_compiles_as_one_graph(face_batch: FaceBatch) -> None:
    aug = FaceAugment(AugmentConfig(out_size=24, grayscale_p=0.5))
    params = aug.sample_params(face_batch, torch.Generator().manual_seed(0))
    eager = aug.apply(face_batch, params)
    torch._dynamo.reset()
    compiled = torch.compile(aug.apply, fullgraph=True)(face_batch, params)
    for f in fields(eager):
        a, b = getattr(compiled, f.name), getattr(eager, f.name)
        if isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype and a.shape == b.shape, f.name
            # Labels to float32 rounding; pixels to 1e-5 (1/400 of an 8-bit level): Inductor fuses the whole
            # step's arithmetic differently from the render kernel compiled alone (measured: 5e-6).
            atol = 1e-5 if f.name == "images" else 1e-6
            torch.testing.assert_close(a, b, atol=atol, rtol=1e-6, equal_nan=True, msg=f.name)
