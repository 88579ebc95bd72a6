"""Safe inside a real training loop: autocast, matmul precision, grad/inference modes, odd batch sizes and
views never change a label, the output dtype or the compiled kernel; caller errors are clear messages."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch
from conftest import cuda_only

from gpuaug import AugmentConfig, AugmentedBatch, AugmentParams, BatchError, FaceAugment, FaceBatch
from gpuaug.backends import staged_gather, torch_backend
from gpuaug.camera.sample import OCC
from gpuaug.transfer import move

LABELS = ("landmarks2d", "landmarks3d", "bbox", "head_pose", "gaze", "matrix", "visible", "valid", "flipped")


def _step(aug: FaceAugment, batch: FaceBatch, seed: int = 0) -> AugmentedBatch:
    return aug(batch, torch.Generator().manual_seed(seed))


def assert_same(out: AugmentedBatch, ref: AugmentedBatch) -> None:
    for name in (*LABELS, "images"):
        a, b = getattr(out, name), getattr(ref, name)
        assert a.dtype == b.dtype, name
        assert torch.equal(a, b), (name, (a.float() - b.float()).abs().max())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_changes_nothing(face_batch: FaceBatch, device: str, dtype: torch.dtype) -> None:
    """Under a training loop's autocast the labels stay float32 and exact, images keep the configured dtype."""
    batch = face_batch.to(device)
    aug = FaceAugment(AugmentConfig(out_size=24, grayscale_p=0.5))
    ref = _step(aug, batch)
    with torch.autocast(device, dtype=dtype):
        out = _step(aug, batch)
    assert out.landmarks2d.dtype == torch.float32 and out.images.dtype == torch.float32
    assert_same(out, ref)


@pytest.mark.parametrize("precision", ["high", "medium"])
def test_matmul_precision_changes_nothing(face_batch: FaceBatch, device: str, precision: str) -> None:
    """``set_float32_matmul_precision`` (TF32 / bf16 matmuls) never reaches the label and matrix maths."""
    batch = face_batch.to(device)
    aug = FaceAugment(AugmentConfig(out_size=24))
    ref = _step(aug, batch)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        out = _step(aug, batch)
    finally:
        torch.set_float32_matmul_precision(before)
    assert_same(out, ref)


def _tf32(t: torch.Tensor) -> torch.Tensor:
    """float32 rounded to TF32's 10-bit mantissa (what a TF32 matmul reads), other dtypes as they are."""
    if t.dtype != torch.float32:
        return t
    return (t.view(torch.int32) & ~0x1FFF).view(torch.float32)


def test_no_label_maths_goes_through_a_matmul(face_batch: FaceBatch, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every matrix product a precision switch could reach (``@``, ``matmul``, ``bmm``, ``einsum``) rounds its
    inputs to TF32 here, as a TF32 GPU would: the labels and images must not move by a bit. (The precision test
    above only bites on CUDA; this one holds on any machine.)"""
    aug = FaceAugment(AugmentConfig(out_size=24, grayscale_p=0.5))
    ref = _step(aug, face_batch)
    matmul, bmm, einsum = torch.matmul, torch.bmm, torch.einsum
    monkeypatch.setattr(torch.Tensor, "__matmul__", lambda a, b: matmul(_tf32(a), _tf32(b)))
    monkeypatch.setattr(torch, "matmul", lambda a, b, **kw: matmul(_tf32(a), _tf32(b), **kw))
    monkeypatch.setattr(torch, "bmm", lambda a, b, **kw: bmm(_tf32(a), _tf32(b), **kw))
    monkeypatch.setattr(torch, "einsum", lambda eq, *ops: einsum(eq, *map(_tf32, ops)))
    points = face_batch.landmarks2d
    assert not torch.equal(points @ torch.eye(2), matmul(points, torch.eye(2)))  # the emulation does round
    assert_same(_step(aug, face_batch), ref)


def _cache_entries() -> dict[tuple, int]:
    """Compiled variants per config of the CPU gather (Dynamo's cache entries on each kernel's code object)."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    return {key: len(_debug_get_cache_entry_list(fn._torchdynamo_orig_callable.__code__))
            for key, fn in staged_gather.stage_kernels.items() if key[0] == "cpu"}


def test_one_compiled_variant_per_config(face_batch: FaceBatch, caplog: pytest.LogCaptureFixture) -> None:
    """Batch size (1 included), grad and inference mode, autocast and strided views of the batch: the compiled
    CPU gather is built once for the config and never falls back (Dynamo's default recompile limit)."""
    if torch_backend._compiled_gather("cpu") is None:
        pytest.skip("torch.compile is switched off (GPUAUG_COMPILE=0)")
    config = AugmentConfig(out_size=20, grayscale_p=0.5, out_dtype="float16", mean=0.5, std=0.25)
    aug = FaceAugment(config)
    keys = [staged_gather.stage_key(*key) for key in
            (("cpu", "taps"), ("cpu", "planes", 3, True), ("cpu", "output", 3, True, torch.float16, False))]
    ref = _step(aug, face_batch)
    assert [_cache_entries()[key] for key in keys] == [1, 1, 1]
    one = face_batch.select([5])
    variations = {
        "batch of 1": lambda: _step(aug, one),
        "short batch": lambda: _step(aug, face_batch.select(slice(0, 3))),
        "strided view": lambda: _step(aug, face_batch.select(slice(0, None, 2))),
        "no_grad": lambda: torch.no_grad()(_step)(aug, face_batch),
        "inference_mode": lambda: torch.inference_mode()(_step)(aug, face_batch),
        "autocast": lambda: torch.autocast("cpu", dtype=torch.bfloat16)(_step)(aug, face_batch),
        "eval": lambda: _step(aug.eval(), face_batch),
    }
    with caplog.at_level("WARNING"):
        outs = {name: run() for name, run in variations.items()}
    aug.train()
    assert [_cache_entries()[key] for key in keys] == [1, 1, 1], "a variation recompiled a stage"
    assert torch_backend._compiled["cpu"] is not None and "failed" not in caplog.text
    for name in ("no_grad", "inference_mode", "autocast"):
        assert_same(outs[name], ref)
    assert not outs["inference_mode"].images.is_inference()  # usable in a model's backward
    # The batch of one is the same sample as in the full batch: same params -> same image.
    params = aug.sample_params(face_batch, torch.Generator().manual_seed(4))
    single = aug.apply(one, params.rows(5, 6))
    torch.testing.assert_close(single.images[0], aug.apply(face_batch, params).images[5])


def test_params_from_another_batch_is_a_clear_error(face_batch: FaceBatch) -> None:
    aug = FaceAugment(AugmentConfig(out_size=20))
    params = aug.sample_params(face_batch.select(slice(0, 3)), torch.Generator().manual_seed(0))
    with pytest.raises(BatchError, match=r"params\.margin.*3 rows for a batch of 8"):
        aug.apply(face_batch, params)
    with pytest.raises(BatchError, match=r"'matrix'.*\(8, 3, 3\)"):
        aug.apply_matrix(face_batch, torch.eye(3).repeat(3, 1, 1), aug.sample_params(face_batch))
    assert torch_backend._compiled.get("cpu") is not None  # a caller's error never disables the kernel


def test_texture_source_outside_the_batch_is_a_clear_error(face_batch: FaceBatch) -> None:
    """Params sliced by hand (not with params.rows) keep texture sources that name rows of the batch they were
    drawn for: on CPU params (no sync to read them) a BatchError names the field, instead of an IndexError in
    eager mode or an abort of the whole process in the compiled chain."""
    aug = FaceAugment(AugmentConfig(out_size=20, occluder_p=1.0, occluder_fill=("texture",)))
    params = aug.sample_params(face_batch, torch.Generator().manual_seed(0))
    sliced = AugmentParams(**{f.name: getattr(params, f.name)[4:] for f in fields(params)})
    assert (sliced.occluders[..., OCC["source"]] >= 4).any()
    with pytest.raises(BatchError, match=r"params\.occluders.*source.*rows 0\.\.3"):
        aug.apply(face_batch.select(slice(4, 8)), sliced)
    aug.apply(face_batch.select(slice(4, 8)), params.rows(4, 8))


def test_scalar_mean_and_std() -> None:
    config = AugmentConfig(grayscale_p=0.0, mean=0.5, std=0.25)
    assert config.mean == (0.5,) and config.normalisation() == ((4.0,) * 3, (-2.0,) * 3)


def test_copies_to_the_host_are_never_in_flight() -> None:
    """``non_blocking`` is dropped for copies to the CPU (their data could still be in flight), kept otherwise."""

    class Recorder:
        def to(self, device: object, non_blocking: bool = False) -> bool:
            return non_blocking

    assert move(Recorder(), "cpu", True) is False and move(Recorder(), "cuda", True) is True
    assert move(Recorder(), torch.device("cuda", 0), False) is False


def test_dali_workers_spawn_once_cuda_is_initialised(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed")
    from gpuaug.dali_loader import worker_start_method

    assert worker_start_method(torch.device("cpu")) == "fork"
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert worker_start_method(torch.device("cpu")) == "spawn"
    assert worker_start_method(torch.device("cuda", 0)) == "spawn"


def test_captured_step_needs_a_warmup(face_batch: FaceBatch) -> None:
    from gpuaug.graph import CapturedAugment

    with pytest.raises(ValueError, match="warmup must be >= 1"):
        CapturedAugment(FaceAugment(), face_batch, warmup=0)


def test_resident_index_out_of_range_is_an_index_error(synth_dir, device: str) -> None:
    """Checked on the host: on CUDA the device-side assert would end the context."""
    from gpuaug import FaceFrames, ResidentFrames

    resident = ResidentFrames(FaceFrames(synth_dir), device)
    with pytest.raises(IndexError, match="out of range"):
        resident[[0, len(resident)]]
    assert len(resident[[0, -1]]) == 2  # the context survived


@cuda_only
def test_device_to_host_copy_is_complete(face_batch: FaceBatch) -> None:
    """With the stream kept busy, a non-blocking copy to the host would hand back bytes not yet written."""
    out = FaceAugment(AugmentConfig(out_size=64)).cuda()(face_batch.to("cuda"))
    images, landmarks = out.images.cpu(), out.landmarks2d.cpu()
    torch.cuda._sleep(10**8)  # the copies queue behind ~0.1 s of work
    host = out.to("cpu", non_blocking=True)
    assert torch.equal(host.images, images) and torch.equal(host.landmarks2d, landmarks)


def test_recompile_limit_is_a_logged_fallback(face_batch: FaceBatch, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Should a variant ever exceed Dynamo's recompile limit, the kernel is not run eager unseen: a warning
    names the cause and the CPU switches to kornia's warp for good."""
    monkeypatch.setattr(torch_backend, "_compiled", {})
    monkeypatch.setattr(staged_gather, "stage_kernels", {})
    aug = FaceAugment(AugmentConfig(out_size=16))
    params = aug.sample_params(face_batch, torch.Generator().manual_seed(0))
    with torch._dynamo.config.patch(recompile_limit=1):
        aug.apply(face_batch, params)
        with torch.inference_mode():  # pixels made in inference mode: a second variant, past a limit of 1
            odd = face_batch._map(torch.Tensor.clone)
        with caplog.at_level("WARNING", logger="gpuaug.backends.torch_backend"):
            out = aug.apply(odd, params)
    assert "FailOnRecompileLimitHit" in caplog.text and torch_backend._compiled["cpu"] is None
    reference = torch_backend.render_reference(face_batch, out.matrix, params, aug.config)
    assert torch.equal(out.images, reference)
