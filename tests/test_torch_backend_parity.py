"""The torch backend's gather warp against kornia's ``warp_affine`` (the reference)."""

from __future__ import annotations

import pytest
import torch

from gpuaug import AugmentConfig, FaceAugment, FaceBatch
from gpuaug.backends import kornia_backend
from gpuaug.backends.gather import sample_colour
from gpuaug.backends.kornia_backend import render, render_gather, render_reference
from gpuaug.params import AugmentParams

SIZES = ((48, 64), (40, 64), (48, 37), (23, 30))  # true (H, W) of each frame; padded to (48, 64)
OUT = 32


def _batch(seed: int, padding_value: int = 0) -> FaceBatch:
    """Frames of mixed sizes with smooth content (so bilinear rounding is small), padded with a value."""
    g = torch.Generator().manual_seed(seed)
    n, (hmax, wmax) = len(SIZES), (max(s[0] for s in SIZES), max(s[1] for s in SIZES))
    coarse = torch.rand(n, 3, hmax // 4, wmax // 4, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(hmax, wmax), mode="bilinear")
    images = (smooth * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    boxes = []
    for i, (h, w) in enumerate(SIZES):
        images[i, h:], images[i, :, w:] = padding_value, padding_value
        boxes.append([w * 0.25, h * 0.2, w * 0.75, h * 0.8])
    bbox = torch.tensor(boxes)
    lm = bbox[:, None, :2] + torch.rand(n, 68, 2, generator=g) * (bbox[:, None, 2:] - bbox[:, None, :2])
    return FaceBatch.from_padded(
        images,
        sizes=torch.tensor(SIZES),
        bbox=bbox,
        landmarks2d=lm,
        landmarks3d=torch.cat([lm, torch.rand(n, 68, 1, generator=g)], -1),
        head_pose=torch.zeros(n, 3),
        gaze=torch.tensor([[0.0, 0.0, 1.0]]).repeat(n, 1),
        keys=torch.zeros(n, 2, dtype=torch.int64),
    )


def _args(batch: FaceBatch, grayscale_p: float, seed: int, **output: object) -> tuple:
    """Render arguments for sampled params; a wide margin and shift push parts of the crop off-frame."""
    config = AugmentConfig(out_size=OUT, grayscale_p=grayscale_p, crop_margin=(0.3, 0.8), max_shift=0.4,
                           max_rotation=40, **output)
    aug = FaceAugment(config)
    params = aug.sample_params(batch, torch.Generator().manual_seed(seed))
    return batch, aug.matrix(batch, params), params, config


@pytest.mark.parametrize("grayscale_p", [1.0, 0.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gather_matches_kornia(grayscale_p: float, seed: int) -> None:
    args = _args(_batch(seed), grayscale_p, seed)
    fast, ref = render_gather(*args), render_reference(*args)
    assert fast.shape == ref.shape == (len(SIZES), args[-1].channels, OUT, OUT)
    assert (fast - ref).abs().mean() <= 1 / 255
    assert torch.allclose(fast, ref, atol=2e-3)


def test_default_render_matches_kornia() -> None:
    """``render``'s default (compiled gather on the CPU when torch.compile works) agrees with kornia."""
    args = _args(_batch(3), 1.0, 3)
    out, ref = render(*args), render_reference(*args)
    assert (out - ref).abs().mean() <= 1 / 255
    assert torch.allclose(out, ref, atol=2e-3)


def test_padding_never_read() -> None:
    """Garbage beyond each frame's true size changes nothing: only real pixels are ever tapped."""
    clean, dirty = _batch(4), _batch(4, padding_value=255)
    args = _args(clean, 0.5, 4)
    assert torch.equal(render_gather(*args), render_gather(dirty, *args[1:]))


def test_outside_frame_is_zero() -> None:
    """Output pixels whose source point is over a pixel beyond the true frame are exactly 0 (zero fill)."""
    batch = _batch(5, padding_value=255)
    n = len(batch)
    params = AugmentParams.identity(n)  # colour map = identity, so output = warped RGB
    # Output = source scaled by 2, shifted so the frame's bottom-right corner sits mid-output.
    sizes = batch.sizes.float()
    matrix = torch.eye(3).repeat(n, 1, 1) * torch.tensor([2.0, 2.0, 1.0])[:, None]
    matrix[:, 0, 2] = OUT / 2 - 2 * (sizes[:, 1] - 1)
    matrix[:, 1, 2] = OUT / 2 - 2 * (sizes[:, 0] - 1)
    out = render_gather(batch, matrix, params, AugmentConfig(out_size=OUT, grayscale_p=0.0))
    inv = torch.linalg.inv(matrix)
    u = torch.arange(OUT, dtype=torch.float32)
    src_x = inv[:, 0, 0, None, None] * u + inv[:, 0, 2, None, None]
    src_y = inv[:, 1, 1, None, None] * u[:, None] + inv[:, 1, 2, None, None]
    outside = (src_x >= sizes[:, 1, None, None]) | (src_y >= sizes[:, 0, None, None])
    assert outside.any() and (~outside).any()
    assert (out.permute(1, 0, 2, 3)[:, outside] == 0).all()
    assert (out.permute(1, 0, 2, 3)[:, ~outside] > 0).any()


def test_one_pixel_wide_frame() -> None:
    """A 1-pixel-wide frame has no right-hand tap; the sampler must not read the padding next to it."""
    images = torch.full((1, 4, 4, 3), 255, dtype=torch.uint8)
    images[0, :, 0] = 100
    inverse = torch.tensor([[[0.0, 0.0, 0.25], [0.0, 1.0, 0.0]]])  # every output column reads x = 0.25
    layout = (images.reshape(-1), torch.tensor([0]), torch.tensor([12]), torch.tensor([[4, 1]]))
    out = sample_colour(*layout, inverse, torch.eye(3)[None], torch.zeros(1, 3), None, 4)
    assert torch.allclose(out, torch.full_like(out, 0.75 * 100 / 255))


def test_compile_failure_falls_back_to_kornia(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the compiled sampler cannot run (no C++ toolchain, ...), ``render`` falls back to kornia's warp."""

    def broken(*_: object) -> torch.Tensor:
        raise RuntimeError("no compiler")

    monkeypatch.setitem(kornia_backend._compiled, "cpu", broken)
    args = _args(_batch(6), 1.0, 6)
    assert torch.equal(render(*args), render_reference(*args))
    assert kornia_backend._compiled["cpu"] is None  # not retried on every batch
