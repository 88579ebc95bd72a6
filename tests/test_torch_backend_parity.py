"""The torch backend's gather warp against kornia's ``warp_affine`` (the reference)."""

from __future__ import annotations

import pytest
import torch
from render_cases import OUT, SIZES, render_args, smooth_batch

from gpuaug import AugmentConfig
from gpuaug.backends import torch_backend
from gpuaug.backends.gather import sample_colour
from gpuaug.backends.torch_backend import render, render_gather, render_reference
from gpuaug.params import AugmentParams


@pytest.mark.parametrize("grayscale_p", [1.0, 0.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gather_matches_kornia(grayscale_p: float, seed: int) -> None:
    args = render_args(smooth_batch(seed), grayscale_p, seed)
    fast, ref = render_gather(*args), render_reference(*args)
    assert fast.shape == ref.shape == (len(SIZES), args[-1].channels, OUT, OUT)
    assert (fast - ref).abs().mean() <= 1 / 255
    assert torch.allclose(fast, ref, atol=2e-3)


def test_default_render_matches_kornia() -> None:
    """``render``'s default (compiled gather on the CPU when torch.compile works) agrees with kornia."""
    args = render_args(smooth_batch(3), 1.0, 3)
    out, ref = render(*args), render_reference(*args)
    assert (out - ref).abs().mean() <= 1 / 255
    assert torch.allclose(out, ref, atol=2e-3)


def test_padding_never_read() -> None:
    """Garbage beyond each frame's true size changes nothing: only real pixels are ever tapped."""
    clean, dirty = smooth_batch(4), smooth_batch(4, padding_value=255)
    args = render_args(clean, 0.5, 4)
    assert torch.equal(render_gather(*args), render_gather(dirty, *args[1:]))


def test_outside_frame_is_zero() -> None:
    """Output pixels whose source point is over a pixel beyond the true frame are exactly 0 (zero fill)."""
    batch = smooth_batch(5, padding_value=255)
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


def test_compiler_failure_falls_back_to_kornia(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """A compiler's own failure (named type) switches the CPU to kornia's warp, logged, and is not retried."""
    from torch._dynamo.exc import BackendCompilerFailed

    def broken(*_: object) -> torch.Tensor:
        raise BackendCompilerFailed(lambda: None, RuntimeError("no C++ compiler"), None)

    monkeypatch.setitem(torch_backend._compiled, "cpu", broken)
    args = render_args(smooth_batch(6), 1.0, 6)
    with caplog.at_level("WARNING", logger="gpuaug.backends.torch_backend"):
        assert torch.equal(render(*args), render_reference(*args))
    assert torch_backend._compiled["cpu"] is None  # not retried on every batch
    assert "failed to compile" in caplog.text and "BackendCompilerFailed" in caplog.text


def test_other_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything else (a caller's mistake, a device error) propagates and keeps the compiled path."""

    def wrong(*_: object) -> torch.Tensor:
        raise RuntimeError("shape mismatch")

    monkeypatch.setitem(torch_backend._compiled, "cpu", wrong)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        render(*render_args(smooth_batch(6), 1.0, 6))
    assert torch_backend._compiled["cpu"] is wrong
