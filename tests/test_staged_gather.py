"""The CPU render in three compiled stages: the reference's output, no per-call pixel buffers of its own,
outputs recycled only once nothing refers to them, scratch memory private to each thread."""

from __future__ import annotations

import re
import threading
from dataclasses import fields

import pytest
import torch
from render_cases import render_args, smooth_batch

from gpuaug import AugmentParams
from gpuaug.backends import staged_gather
from gpuaug.backends.gather import sample_colour
from gpuaug.backends.torch_backend import _compiled_gather, render_gather
from gpuaug.buffers import release_buffers, render_pool

FORMATS = [{}, {"out_dtype": "bfloat16", "mean": (0.5,), "std": (0.25,), "channels_last": True}]


@pytest.fixture(autouse=True)
def _compiled() -> None:
    if _compiled_gather("cpu") is None:
        pytest.skip("torch.compile is switched off (GPUAUG_COMPILE=0)")


def _staged(args: tuple) -> torch.Tensor:
    return render_gather(*args, sampler=staged_gather.sample_colour_staged)


@pytest.mark.parametrize("fmt", FORMATS, ids=["float32", "bf16-norm-channels_last"])
@pytest.mark.parametrize("grayscale_p", [1.0, 0.0])
def test_staged_equals_reference(grayscale_p: float, fmt: dict) -> None:
    """Same values (to float32 rounding of fused arithmetic), dtype, shape and memory layout as the eager
    reference; a batch of one is the first sample of the batch."""
    args = render_args(smooth_batch(3), grayscale_p, 3, **fmt)
    ref, out = render_gather(*args, sampler=sample_colour), _staged(args)
    assert out.dtype == ref.dtype and out.shape == ref.shape and out.stride() == ref.stride()
    torch.testing.assert_close(out.float(), ref.float(), atol=1e-5 if out.dtype == torch.float32 else 8e-3, rtol=0)
    batch, matrix, params, config = args
    first = AugmentParams(**{f.name: getattr(params, f.name)[:1] for f in fields(params)})
    one = _staged((batch.select([0]), matrix[:1], first, config))
    torch.testing.assert_close(one.float(), out[:1].float(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt", FORMATS, ids=["float32", "bf16-norm-channels_last"])
def test_stages_allocate_no_pixel_buffers(fmt: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the stages: Inductor's generated code allocates nothing per pixel (only per-sample
    vectors); every pixel-sized buffer is scratch or the pooled output."""
    from torch._inductor.utils import run_and_get_code

    args = render_args(smooth_batch(4), 0.5, 4, **fmt)
    monkeypatch.setattr(staged_gather, "stage_kernels", {})
    _, codes = run_and_get_code(lambda: _staged(args))
    assert len(codes) == 3  # one kernel per stage
    shapes = [shape for code in codes for shape in re.findall(r"empty_strided_cpu\(\((.*?)\), ", code)]
    assert all(re.fullmatch(r"\w+, ", shape) for shape in shapes), shapes


def test_output_recycled_only_when_unreferenced() -> None:
    """A rendered batch is never overwritten while anything refers to it (the tensor, a view); once
    nothing does, its memory serves the next batch."""
    release_buffers()
    args = render_args(smooth_batch(5), 0.0, 5)

    def ptr(t: torch.Tensor) -> int:
        return t.untyped_storage().data_ptr()

    first = _staged(args)
    kept = first.clone()
    view = first[2:]
    held = ptr(first)
    del first
    second = _staged(args)
    assert ptr(second) != held and torch.equal(view, kept[2:])  # the view keeps the batch alive and intact
    del view
    assert ptr(_staged(args)) == held  # nothing refers to it any more: recycled
    assert ptr(second) != held and torch.equal(second, kept)


def test_scratch_is_per_thread() -> None:
    """Threads rendering at once each get their own working memory: every result is its own batch's."""
    jobs = [render_args(smooth_batch(s), 0.5, s) for s in (6, 7)]
    refs = [render_gather(*a, sampler=sample_colour) for a in jobs]
    results: dict[int, list[torch.Tensor]] = {0: [], 1: []}

    def work(i: int) -> None:
        results[i] += [_staged(jobs[i]) for _ in range(4)]

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, ref in enumerate(refs):
        for out in results[i]:
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_release_buffers() -> None:
    """release_buffers hands the pools back; a batch still in use keeps its memory and values."""
    args = render_args(smooth_batch(8), 1.0, 8)
    out = _staged(args)
    kept = out.clone()
    release_buffers()
    assert render_pool._buffers == [] and torch.equal(out, kept)
    assert torch.equal(_staged(args), kept)


def test_word_loads_read_the_same_bytes() -> None:
    """Taps read as 32-bit words give exactly the byte loads' planes; wild strides and offsets stay inside the
    buffer (eager indexing would raise otherwise); buffers that cannot be seen as words are refused."""
    from gpuaug.backends.gather import output_grid, pixel_words, sample_planes, source_taps

    batch, matrix, _, config = render_args(smooth_batch(9), 0.0, 9)
    words = pixel_words(batch.pixels)
    assert words is not None and words.dtype == torch.int32
    strides = batch.strides.clone()
    strides[1] = 2**40  # a stride far past the buffer
    offsets = batch.offsets.clone()
    offsets[2] = -(2**35)
    inverse = torch.linalg.inv(matrix.double())[:, :2].float()
    taps = source_taps(inverse, batch.sizes, *output_grid(config.out_size, batch.device), config.out_size)
    rows = torch.rand(len(strides), 3, 3)
    for layout in ((batch.offsets, batch.strides), (offsets, strides)):
        plain = sample_planes(batch.pixels, *layout, batch.sizes, taps, rows)
        worded = sample_planes(batch.pixels, *layout, batch.sizes, taps, rows, words)
        for a, b in zip([*plain[0], plain[1]], [*worded[0], worded[1]], strict=True):
            assert torch.equal(a[[0, 3]], b[[0, 3]])  # the well-formed samples: the same bytes
            assert torch.isfinite(b).all()
            if layout[0] is batch.offsets:
                assert torch.equal(a, b)
    assert pixel_words(batch.pixels[:-1]) is None and pixel_words(batch.pixels[1:]) is None
