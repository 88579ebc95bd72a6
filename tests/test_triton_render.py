"""The Triton render kernel held to its references: Triton's interpreter runs the exact GPU source on CPU
tensors (compiled on CUDA tensors when a GPU is present), against the torch gather and kornia's warp."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import pytest
import torch
from conftest import assert_same_output
from render_cases import OUT, SIZES, render_args, smooth_batch

pytest.importorskip("triton", reason="triton is not installed")

from gpuaug import AugmentConfig, FaceAugment, FaceBatch
from gpuaug.backends.gather import sample_colour
from gpuaug.backends.torch_backend import render, render_gather, render_reference
from gpuaug.backends.triton_render import launch_shape, sample_colour_triton
from gpuaug.params import AugmentParams

triton_warp = partial(render, warp="triton")


@pytest.mark.parametrize("grayscale_p", [1.0, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_triton_matches_kornia_and_gather(device: str, grayscale_p: float, seed: int) -> None:
    args = render_args(smooth_batch(seed).to(device), grayscale_p, seed)
    out, ref, gather = triton_warp(*args), render_reference(*args), render_gather(*args)
    assert out.shape == ref.shape == (len(SIZES), args[-1].channels, OUT, OUT) and out.device == ref.device
    assert (out - ref).abs().mean() <= 1 / 255 and torch.allclose(out, ref, atol=2e-3)
    # Same maths as its torch reference, op for op: float rounding apart, equal.
    torch.testing.assert_close(out, gather, atol=1e-5, rtol=0)


def test_tiles_and_strides(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several tiles per image (pass 1 sums the tiles' partial grey sums, the last tile masked), odd sizes,
    padded rows (stride > 3 W): against the torch gather, which addresses taps the same way."""
    from gpuaug.backends import triton_render

    monkeypatch.setattr(triton_render, "_INTERPRETER_BLOCK_MAX", 128)  # the GPU's tiles are 256 pixels
    batch = smooth_batch(7).to(device)
    args = render_args(batch, 0.5, 7)
    inverse = torch.linalg.inv(args[1].double())[:, :2].float()
    g = torch.Generator().manual_seed(7)
    rows, bias = torch.rand(len(batch), 3, 3, generator=g).to(device), torch.rand(len(batch), 3, generator=g).to(device)
    layout = (batch.pixels, batch.offsets, batch.strides, batch.sizes, inverse, rows, bias, None)
    assert (batch.strides > 3 * batch.sizes[:, 1]).any()  # padded frames: stride and width really differ
    for size, tiles in ((OUT, 8), (17, 3), (1, 1)):
        assert launch_shape(size, interpreted=True)[1] == tiles
        out, ref = sample_colour_triton(*layout, size), sample_colour(*layout, size)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_layouts_identical(device: str) -> None:
    """Padded, ragged and resident-style (a batch pointing into a bigger buffer) layouts of the same frames
    render bit for bit the same; the labels are the torch path's exactly."""
    padded = smooth_batch(8).to(device)
    frames = [padded.frame(i) for i in range(len(padded))]
    ragged_pixels = torch.cat([f.reshape(-1) for f in frames])
    sizes = torch.tensor([f.numel() for f in frames], device=device)
    ragged = replace(padded, pixels=ragged_pixels, offsets=sizes.cumsum(0) - sizes, strides=padded.sizes[:, 1] * 3)
    head = torch.randint(0, 256, (1000,), dtype=torch.uint8, device=device)
    resident = replace(ragged, pixels=torch.cat([head, ragged_pixels, head]), offsets=ragged.offsets + 1000)
    aug = FaceAugment(AugmentConfig(out_size=OUT, grayscale_p=0.5))
    params = aug.sample_params(padded, torch.Generator().manual_seed(8))
    reference = aug.apply(padded, params)
    aug.backend = triton_warp
    outs = [aug.apply(b, params) for b in (padded, ragged, resident)]
    for out in outs:
        assert torch.equal(out.images, outs[0].images)
        assert_same_output(out, reference, skip=("images",))
    torch.testing.assert_close(outs[0].images, reference.images, atol=1e-5, rtol=0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e30, 0.0])
def test_never_reads_outside_the_buffer(device: str, value: float) -> None:
    """Black frames inside a buffer between two guard regions of 255s: with bad matrices, and with offsets
    and strides that do not fit the buffer, every tap is clamped into the frames' bytes, so the output is
    black; one byte read from a guard region would show (colour map = identity)."""
    batch = smooth_batch(9).to(device)
    n = batch.pixels.numel()
    guarded = torch.full((3 * n,), 255, dtype=torch.uint8, device=device)
    guarded[n:2 * n] = 0
    black = replace(batch, pixels=guarded[n:2 * n])  # a view: the guards are the bytes right beside it
    params = AugmentParams.identity(len(batch)).to(device)
    config = AugmentConfig(out_size=OUT, grayscale_p=0.0)
    matrix = torch.eye(3, device=device).repeat(len(batch), 1, 1) * 0.5
    matrix[:, 2, 2] = 1
    matrix[::2, :2] = value
    # First offsets that land in the guards (a missing clamp reads 255s), then wild ones (it would crash).
    for offsets, strides in ((batch.offsets, batch.strides), (batch.offsets + n // 2, batch.strides),
                             (batch.offsets - n // 2, batch.strides), (batch.offsets * 1000 - 7, batch.strides * 99),
                             (-batch.offsets - n, -batch.strides)):
        out = triton_warp(replace(black, offsets=offsets, strides=strides), matrix, params, config)
        assert torch.isfinite(out).all() and (out == 0).all()
    # The same frames, white: the odd samples (sane matrix) really read them, the bad ones are fill.
    white = triton_warp(replace(black, pixels=torch.full_like(black.pixels, 255)), matrix, params, config)
    assert (white[1::2] > 0).any()
    if value != 1e30:
        assert (white[::2] == 0).all()


def test_labels_untouched_by_the_warp(face_batch: FaceBatch, device: str) -> None:
    """Choosing the warp changes pixels only: every label and the matrix equal the default step's."""
    batch = face_batch.to(device)
    aug = FaceAugment(AugmentConfig(out_size=24))
    params = aug.sample_params(batch, torch.Generator().manual_seed(2))
    plain = aug.apply(batch, params)
    aug.backend = triton_warp
    out = aug.apply(batch, params)
    assert_same_output(out, plain, skip=("images",))
    assert (out.images - plain.images).abs().mean() <= 1 / 255


def test_strided_and_empty_buffers(device: str) -> None:
    """A strided view of the pixel buffer reads the view's bytes (not the storage's); an empty buffer (every
    frame 0 x 0) renders fill without a read."""
    batch = smooth_batch(10).to(device)
    args = render_args(batch, 0.5, 10)
    interleaved = torch.stack([batch.pixels, 255 - batch.pixels], 1).reshape(-1)
    strided = replace(batch, pixels=interleaved[::2])
    assert strided.pixels.stride(0) == 2
    torch.testing.assert_close(triton_warp(strided, *args[1:]), triton_warp(*args), atol=0, rtol=0)
    empty = replace(batch, pixels=batch.pixels[:0], sizes=torch.zeros_like(batch.sizes))
    out = triton_warp(empty, *args[1:])
    assert out.shape == (len(batch), 3, OUT, OUT) and (out == 0).all()
