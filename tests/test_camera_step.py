"""The camera ops inside the step: off by default (the previous draws and output), validated config, replay to
the bit, labels untouched, ``occluded`` against pixel truth, clips, eval mode, the fullgraph compiled step."""

from __future__ import annotations

import hashlib
from dataclasses import fields, replace

import numpy as np
import pytest
import torch
from PIL import Image

from gpuaug import AugmentConfig, AugmentParams, ClipAugment, FaceAugment, FaceBatch, sample_params
from gpuaug.camera import staged
from gpuaug.camera.ops import CAMERA_OPS, apply_camera
from gpuaug.camera.sample import CAMERA_IDENTITY, OCC
from gpuaug.clip_params import sample_clip_params
from gpuaug.config import CAMERA_PROBABILITIES
from gpuaug.output import render_config
from gpuaug.preview import draw_labels

ALL_OPS = dict(gamma_p=1.0, occluder_p=1.0, occluder_max=3, blur_p=1.0, motion_blur_p=1.0, low_res_p=1.0,
               noise_p=1.0, shot_noise_p=1.0, jpeg_p=1.0)
LABELS = ("landmarks2d", "landmarks3d", "bbox", "head_pose", "gaze", "matrix", "visible", "valid", "flipped")


def _seed(n: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(n)


def test_default_draws_are_the_previous_ones() -> None:
    """With every op off the params are the draws of the release before the ops (sha256 of its packed (5, 11)
    params for seed 3, train and eval, recorded from that code) and nothing more is drawn."""
    g = _seed(3)
    params = sample_params(AugmentConfig(), 5, g)
    old = params.pack()[:, :11].contiguous().numpy().tobytes()
    assert hashlib.sha256(old).hexdigest() == "bafa9ac3dc4adc06ee072311ab4fecaeea1723baa2e6014616649c32345277b7"
    assert torch.randint(0, 2**31, (2,), generator=g).tolist() == [1666323861, 1874253518]
    eval_params = sample_params(AugmentConfig(), 5, _seed(3), train=False).pack()[:, :11].contiguous()
    assert hashlib.sha256(eval_params.numpy().tobytes()).hexdigest() == (
        "af1af65565803b9a99773eab27e4de14fd53125088626e06ef8fcdee28a52045")
    for name, value in CAMERA_IDENTITY.items():
        assert torch.equal(getattr(params, name), torch.full((5,), value)), name
    assert params.occluders.shape == (5, 0, 12)


def test_default_step_is_the_fused_render(face_batch: FaceBatch) -> None:
    """Ops off: the backend's fused render, output format included, exactly as before; occluded all False."""
    aug = FaceAugment(AugmentConfig(out_size=24, grayscale_p=0.5, mean=0.5, std=0.25, out_dtype="bfloat16"))
    out = aug(face_batch, _seed())
    assert torch.equal(out.images, aug.backend(face_batch, out.matrix, out.params, aug.config))
    assert out.occluded.shape == (8, 68) and out.occluded.dtype == torch.bool and not out.occluded.any()


@pytest.mark.parametrize(("field", "value"), [
    ("gamma_p", 1.5), ("blur_p", -0.1), ("jpeg_p", 2), ("occluder_ellipse_p", 1.1), ("gamma", (0.0, 2.0)),
    ("gamma", (2.0, 1.0)), ("blur_sigma", (0.5, 100.0)), ("motion_blur_length", (0.5, 3.0)),
    ("motion_blur_length", (3.0, 70.0)), ("low_res", (0.001, 0.5)), ("low_res", (0.5, 1.5)),
    ("noise_std", (0.0, 2.0)), ("shot_noise", (-0.1, 0.1)),
    ("jpeg_quality", (0, 50)), ("jpeg_quality", (30, 101)), ("jpeg_quality", (30.5, 50)), ("occluder_max", 0),
    ("occluder_max", 2.5), ("occluder_size", (0.2, 1.5)), ("occluder_fill", ("paint",)), ("occluder_fill", ()),
])
def test_config_names_the_field_and_range(field: str, value: object) -> None:
    """Each op switched on (its range is checked against out_size only then)."""
    with pytest.raises(ValueError, match=field):
        AugmentConfig(out_size=64, **{**ALL_OPS, field: value})


@pytest.mark.parametrize("out_size", [1, 2, 4, 6])
def test_ranges_of_ops_switched_off_are_not_checked_against_out_size(out_size: int) -> None:
    """Any out_size >= 1 with every op off (as before the ops existed): a default range that would not fit the
    size (blur sigma 1.5 needs out_size >= 5.5) belongs to an op that never runs; switched on, it is refused."""
    assert AugmentConfig(out_size=out_size).out_size == out_size
    assert AugmentConfig(out_size=out_size, blur_p=0.0, blur_sigma=(0.5, 40.0)).out_size == out_size
    for gate, field in (("blur_p", "blur_sigma"), ("motion_blur_p", "motion_blur_length"), ("low_res_p", "low_res")):
        with pytest.raises(ValueError, match=field):
            AugmentConfig(out_size=out_size, **{gate: 0.5, field: (2.0, 8.0) if field != "low_res" else (0.1, 0.2)})
    with pytest.raises(ValueError, match="blur_sigma"):  # the form of a range is checked all the same
        AugmentConfig(out_size=out_size, blur_sigma=(2.0, 1.0))


def test_every_op_is_off_by_default() -> None:
    config = AugmentConfig()
    assert not config.camera and config.occluder_slots == 0
    assert all(getattr(config, name) == 0 for name in CAMERA_PROBABILITIES)
    assert AugmentConfig(noise_p=0.1).camera and AugmentConfig(occluder_p=0.1, occluder_max=4).occluder_slots == 4


def test_replay_gives_the_same_bits_noise_included(face_batch: FaceBatch) -> None:
    aug = FaceAugment(AugmentConfig(out_size=32, grayscale_p=0.5, **ALL_OPS))
    out = aug(face_batch, _seed(1))
    again = aug.apply(face_batch, out.params)
    assert torch.equal(out.images, again.images) and torch.equal(out.occluded, again.occluded)
    packed = AugmentParams.unpack(out.params.pack())  # the CUDA transfer's round trip keeps every draw
    for f in fields(packed):
        assert torch.equal(getattr(packed, f.name), getattr(out.params, f.name)), f.name
    other = aug.apply(face_batch, replace(out.params, noise_seed=out.params.noise_seed + 1))
    assert float((other.images - out.images).abs().mean()) > 1e-3  # the seed is what the noise comes from


def test_labels_do_not_depend_on_camera_ops(face_batch: FaceBatch) -> None:
    """Same draws with and without the ops: every label bit-identical; the geometry and colour draws do not move
    when ops are turned on (camera draws come after them)."""
    on = FaceAugment(AugmentConfig(out_size=32, grayscale_p=0.5, **ALL_OPS))
    off = FaceAugment(AugmentConfig(out_size=32, grayscale_p=0.5))
    out = on(face_batch, _seed(2))
    plain = off.apply(face_batch, out.params)
    for name in LABELS:
        assert torch.equal(getattr(out, name), getattr(plain, name)), name
    assert not torch.equal(out.images, plain.images)
    drawn_off = off.sample_params(face_batch, _seed(2))
    for name in ("margin", "shift", "angle", "scale", "flip", "brightness", "contrast", "saturation", "hue", "gray"):
        assert torch.equal(getattr(out.params, name), getattr(drawn_off, name)), name


def _occlusion_pair(face_batch: FaceBatch, fill: str, grayscale_p: float, seed: int = 4):
    config = AugmentConfig(out_size=32, grayscale_p=grayscale_p, occluder_p=1.0, occluder_max=3,
                           occluder_size=(0.3, 0.6), occluder_fill=(fill,))
    out = FaceAugment(config)(face_batch, _seed(seed))
    plain = FaceAugment(replace(config, occluder_p=0.0)).apply(face_batch, out.params)
    return out, plain


@pytest.mark.parametrize("seed", [4, 5])
def test_occluded_is_pixel_truth(face_batch: FaceBatch, seed: int) -> None:
    """A landmark is marked exactly when its output pixel shows occluder fill (differs from the same step
    without occluders); landmarks outside the image never are; positions are untouched."""
    out, plain = _occlusion_pair(face_batch, "colour", 0.5, seed)
    size = out.images.shape[-1]
    pixel = torch.floor(out.landmarks2d + 0.5)  # the pixel a landmark falls in: pixel i spans [i - 0.5, i + 0.5)
    inside = ((pixel >= 0) & (pixel <= size - 1)).all(-1)
    changed = (out.images != plain.images).any(1)  # (B, S, S)
    b = torch.arange(len(out))[:, None].expand_as(inside)
    x, y = pixel[..., 0].clamp(0, size - 1).long(), pixel[..., 1].clamp(0, size - 1).long()
    truth = changed[b, y, x] & inside
    assert torch.equal(out.occluded, truth)
    assert 0 < int(truth.sum()) < int(inside.sum())  # both cases occur
    assert torch.equal(out.landmarks2d, plain.landmarks2d)


@pytest.mark.parametrize("length", [1, 3])
def test_params_rows_renumber_texture_sources(length: int) -> None:
    """AugmentParams.rows: every field's rows; the whole range gives the same params; a slice's texture sources
    name another item of the slice at the same frame (itself in a slice of one item); off item boundaries
    raises."""
    config = AugmentConfig(out_size=16, occluder_p=1.0, occluder_max=3, occluder_fill=("texture",))
    params = sample_clip_params(config, 12, length, _seed(4))
    whole = params.rows(0, len(params), length)
    for f in fields(params):
        assert torch.equal(getattr(whole, f.name), getattr(params, f.name)), f.name
    for start, stop in ((0, 4), (4, 9), (9, 10), (3, 12)):
        part = params.rows(start * length, stop * length, length)
        for f in fields(params):
            if f.name != "occluders":
                assert torch.equal(getattr(part, f.name), getattr(params, f.name)[start * length:stop * length])
        source = part.occluders[..., OCC["source"]].long()
        row = torch.arange(len(part))[:, None].expand_as(source)
        assert ((source >= 0) & (source < len(part))).all() and torch.equal(source % length, row % length)
        assert (source // length != row // length).all() if stop - start > 1 else (source == row).all()
        kept = torch.cat([part.occluders[..., :OCC["source"]], params.occluders[start * length:stop * length,
                                                                                 :, :OCC["source"]]])
        assert torch.equal(*kept.chunk(2))
    with pytest.raises(ValueError, match="rows"):
        params.rows(1, 5, 3) if length == 3 else params.rows(5, 4)


def test_texture_fill_is_another_sample(face_batch: FaceBatch) -> None:
    out, plain = _occlusion_pair(face_batch, "texture", 1.0)
    source = out.params.occluders[..., OCC["source"]].long()
    assert (source != torch.arange(len(out))[:, None]).all()
    for i in range(len(out)):
        changed = out.images[i] != plain.images[i]
        shown = torch.stack([plain.images[int(s)] for s in source[i]])  # the slots' sources
        assert changed.any()
        assert bool((shown == out.images[i]).any(0)[changed].all())


def test_noise_fill_and_grey_samples(face_batch: FaceBatch) -> None:
    out, plain = _occlusion_pair(face_batch, "noise", 0.5)
    gray = out.params.gray
    assert gray.any() and (~gray).any()
    assert torch.equal(out.images[gray][:, 0], out.images[gray][:, 1])  # grey samples stay grey
    changed = (out.images != plain.images).any(1)
    assert float(out.images[~gray].permute(1, 0, 2, 3)[:, changed[~gray]].std()) > 0.2  # uniform noise: std 0.29


@pytest.mark.parametrize("n", [0, 1])
def test_batches_of_none_and_one(face_batch: FaceBatch, n: int) -> None:
    aug = FaceAugment(AugmentConfig(out_size=24, grayscale_p=0.5, **ALL_OPS))
    out = aug(face_batch.select(slice(0, n)), _seed())
    assert out.images.shape == (n, 3, 24, 24) and out.occluded.shape == (n, 68)


def test_eval_mode_has_no_camera_ops(face_batch: FaceBatch) -> None:
    on = FaceAugment(AugmentConfig(out_size=24, **ALL_OPS)).eval()
    off = FaceAugment(AugmentConfig(out_size=24)).eval()
    out = on(face_batch, _seed())
    assert torch.equal(out.images, off(face_batch, _seed()).images) and not out.occluded.any()


def test_clips_draw_once_per_clip_noise_per_frame() -> None:
    config = AugmentConfig(out_size=32, **ALL_OPS)
    p = sample_clip_params(config, 3, 4, _seed())
    for name in ("blur_sigma", "motion_length", "motion_angle", "low_res", "jpeg_quality", "gamma"):
        per_clip = getattr(p, name).view(3, 4)
        assert torch.equal(per_clip, per_clip[:, :1].expand(-1, 4)), name
    occ = p.occluders.view(3, 4, 3, 12)
    kept = [i for i in range(12) if i != OCC["source"]]
    assert torch.equal(occ[..., kept], occ[:, :1, :, kept].expand(-1, 4, -1, -1))
    source = occ[..., OCC["source"]].long()
    assert torch.equal(source % 4, torch.arange(4)[None, :, None].expand_as(source))  # the same frame t...
    assert (source // 4 != torch.arange(3)[:, None, None]).all()  # ...of another clip
    assert len(set(p.noise_seed.tolist())) == 12


def test_clip_occluders_move_with_drift() -> None:
    """With drift each occluder's centre moves linearly across the clip (first frame: the clip's draw); its shape,
    size and fill stay."""
    config = AugmentConfig(out_size=32, occluder_p=1.0, occluder_max=2)
    held = sample_clip_params(config, 3, 5, _seed(), drift=0.0).occluders.view(3, 5, 2, 12)
    moving = sample_clip_params(config, 3, 5, _seed(), drift=1.0).occluders.view(3, 5, 2, 12)
    centre = [OCC["cx"], OCC["cy"]]
    kept = [i for i in range(12) if i not in centre]
    assert torch.equal(moving[..., kept], held[..., kept])
    assert torch.equal(moving[:, 0, :, centre], held[:, 0, :, centre])
    steps = moving[:, 1:, :, centre] - moving[:, :-1, :, centre]
    torch.testing.assert_close(steps, steps[:, :1].expand_as(steps), atol=1e-4, rtol=0)  # linear in time
    assert float(steps.abs().max()) > 0.5


def test_clip_step_has_occluded(face_batch: FaceBatch) -> None:
    clips = ClipAugment(FaceAugment(AugmentConfig(out_size=24, occluder_p=1.0, occluder_size=(0.5, 0.9))), 4)
    out = clips(face_batch, _seed())
    assert out.occluded.shape == (2, 4, 68) and out.occluded.any()


@pytest.mark.timeout(600)  # Inductor builds the whole step: measured 213 s on 2 shared cores (load ~4)
def test_fullgraph_step_with_every_op(face_batch: FaceBatch) -> None:
    """The whole step with every op on traces as one graph and gives the eager step's labels and its pixels to
    float rounding (a rounding near a JPEG level boundary can flip one 8-bit level; measured: none)."""
    aug = FaceAugment(AugmentConfig(out_size=24, grayscale_p=0.5, **ALL_OPS))
    params = aug.sample_params(face_batch, _seed(3))
    eager = aug.apply(face_batch, params)
    torch._dynamo.reset()
    compiled = torch.compile(aug.apply, fullgraph=True)(face_batch, params)
    for name in LABELS:  # Inductor fuses the label arithmetic its own way: float32 rounding (as test_step_graph)
        torch.testing.assert_close(getattr(compiled, name), getattr(eager, name), atol=1e-6, rtol=1e-6, msg=name)
    assert torch.equal(compiled.occluded, eager.occluded)
    diff = (compiled.images - eager.images).abs()
    assert float(diff.max()) <= 1 / 255 + 1e-5 and float(diff.mean()) < 1e-3


@pytest.mark.timeout(600)  # compiles the seven ops: about 2 min on 2 cores
@pytest.mark.parametrize("grayscale_p", [1.0, 0.5])
def test_cpu_chain_runs_each_op_on_its_rows(face_batch: FaceBatch, grayscale_p: float,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU the step runs each op compiled, on the rows that draw it (:mod:`gpuaug.camera.staged`): the
    pixels of every op over every sample (``apply_camera``, what CUDA and a caller's compile run) to float
    rounding (a rounding at a JPEG level boundary may move one 8-bit level: measured none)."""
    config = AugmentConfig(out_size=32, grayscale_p=grayscale_p, occluder_max=2,
                           **dict.fromkeys(CAMERA_PROBABILITIES, 0.5))
    aug = FaceAugment(config)
    params = aug.sample_params(face_batch, _seed(8))
    drawn = torch.stack([op.drawn(params) for op in CAMERA_OPS])
    assert drawn.any(1).all() and not drawn.all(1).any()  # every op drawn by some rows, none by all
    monkeypatch.setenv("GPUAUG_COMPILE_CAMERA", "1")  # the suite runs the ops eagerly on their rows (conftest)
    staged.op_kernels.clear()
    out = aug.apply(face_batch, params)
    assert {key[1] for key in staged.op_kernels} == {op.name for op in CAMERA_OPS}  # the staged chain ran
    rendered = aug.backend(face_batch, out.matrix, params, render_config(config))
    whole = apply_camera(rendered, params, config)
    diff = (out.images - whole).abs()
    assert float(diff.max()) <= 1 / 255 + 1e-5 and float((diff > 1e-5).float().mean()) < 1e-3


@pytest.mark.timeout(300)
def test_cpu_chain_texture_reads_rows_before_they_are_painted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each staged op writes its rows back inside its compiled kernel; a texture fill reads another drawn row
    that the same kernel paints: it must see that row as it was before the op (as ``apply_camera`` does)."""
    config = AugmentConfig(out_size=32, occluder_p=1.0, occluder_max=2, occluder_fill=("texture",),
                           occluder_size=(0.5, 0.9))
    b = 12
    params = sample_params(config, b, _seed(5))
    occ = params.occluders.clone()
    occ[:, :, OCC["active"]] = 1.0
    occ[:, :, OCC["source"]] = ((torch.arange(b) + 1) % b).float()[:, None]  # row i shows row i + 1
    params = replace(params, occluders=occ)
    images = torch.rand(b, 1, 32, 32, generator=_seed(6))
    monkeypatch.setenv("GPUAUG_COMPILE_CAMERA", "1")
    staged.op_kernels.clear()
    out = staged.apply_camera_staged(images.clone(), params, config)
    assert [(key[1], k is not None) for key, k in staged.op_kernels.items()] == [("occluders", True)]  # compiled
    whole = apply_camera(images.clone(), params, config)
    assert not torch.equal(whole, images) and torch.equal(out, whole)


def test_cpu_chain_under_inference_mode(face_batch: FaceBatch) -> None:
    """A render made under the caller's inference mode (the eager gather's) goes through the staged chain too,
    which writes rows back outside it: the same pixels as outside inference mode."""
    aug = FaceAugment(AugmentConfig(out_size=16, gamma_p=1.0, blur_p=1.0), warp="gather")
    params = aug.sample_params(face_batch, _seed(3))
    ref = aug.apply(face_batch, params)
    with torch.inference_mode():
        out = aug.apply(face_batch, params)
    assert torch.equal(out.images, ref.images)


def test_cpu_chain_leaves_undrawn_rows_alone(face_batch: FaceBatch) -> None:
    """Rows that draw no op keep the render's bits; rows that do get the op (gamma: the formula)."""
    config = AugmentConfig(out_size=24, gamma_p=0.5)
    aug = FaceAugment(config)
    params = aug.sample_params(face_batch, _seed(9))
    drawn = params.gamma != 1
    assert drawn.any() and (~drawn).any()
    out = aug.apply(face_batch, params)
    rendered = aug.backend(face_batch, out.matrix, params, render_config(config))
    assert torch.equal(out.images[~drawn], rendered[~drawn])
    expected = rendered[drawn] ** params.gamma[drawn][:, None, None, None]
    torch.testing.assert_close(out.images[drawn], expected, atol=2e-6, rtol=0)


def test_preview_draws_occluded_landmarks_hollow() -> None:
    img = Image.new("RGB", (40, 40))
    landmarks = np.full((68, 2), 30.0)
    landmarks[0] = (10.0, 10.0)
    occluded = np.zeros(68, dtype=bool)
    occluded[0] = True
    draw_labels(img, landmarks, np.zeros(3), np.array([0.0, 0.0, 1.0]), zoom=2.0, occluded=occluded)
    pixels = np.asarray(img)
    assert not pixels[21, 21].any() and pixels[21, 17:26].any()  # centre of landmark 0 empty, its ring drawn
