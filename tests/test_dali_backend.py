"""DALI backend: parity with the kornia backend, dots land on their landmarks, caching, missing DALI."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import assert_same_output

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")

from gpuaug import AugmentConfig, AugmentParams, FaceAugment, FaceBatch, collate
from gpuaug.backends.dali_backend import DaliBackend
from gpuaug.backends.torch_backend import render_reference
from gpuaug.labels.matrix import translation
from gpuaug.sample import FaceSample

LEVEL = 1 / 255
# Wide geometry so crops leave the frame (its border and the zero fill are compared too).
WIDE = {"max_rotation": 45.0, "max_shift": 0.25, "scale": (0.6, 1.5), "crop_margin": (-0.1, 0.4)}


def kornia_reference(config: AugmentConfig) -> FaceAugment:
    """FaceAugment on kornia's ``warp_affine`` itself (not the compiled gather warp, whose compile per
    shape would dominate these tests' time)."""
    aug = FaceAugment(config)
    aug.backend = render_reference
    return aug


def take(batch: FaceBatch, n: int) -> FaceBatch:
    return batch.select(slice(0, n))


@pytest.mark.parametrize("grayscale_p", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("n", [1, 5, 8])
def test_parity_with_kornia(face_batch, device, grayscale_p, n):
    batch = take(face_batch, n).to(device)  # noise frames of two sizes: the hardest case for resampling
    cfg = AugmentConfig(out_size=72, grayscale_p=grayscale_p, **WIDE)
    ref_aug, dali_aug = kornia_reference(cfg).to(device), FaceAugment(cfg, backend="dali").to(device)
    params = ref_aug.sample_params(batch, torch.Generator().manual_seed(n))
    ref, out = ref_aug.apply(batch, params), dali_aug.apply(batch, params)
    assert out.images.shape == (n, cfg.channels, 72, 72) and out.images.dtype == torch.float32
    assert out.images.device == batch.device
    assert_same_output(out, ref, skip=("images",))
    diff = (out.images - ref.images).abs()
    assert diff.mean() <= 0.1 * LEVEL and diff.max() <= LEVEL


def test_grey_window_half_and_wholly_off_the_frame(face_batch):
    """Grey output warps only the window the warp reads: footprints moved half off each edge, and wholly
    off it (an empty window), still match kornia on the whole frame."""
    cfg = AugmentConfig(out_size=40, grayscale_p=1.0)
    aug = FaceAugment(cfg)
    params = aug.sample_params(face_batch, torch.Generator().manual_seed(0))
    off = torch.tensor([[0.5, 0], [-0.5, 0], [0, 0.5], [0, -0.5], [2, 0], [-2, 0], [0, 2], [0, -2]])
    matrix = aug.matrix(face_batch, params)
    matrix = matrix @ translation(-off * face_batch.sizes.flip(-1).to(matrix.dtype))  # footprint moves by it
    args = (face_batch, matrix, params, cfg)
    ref, out = render_reference(*args), DaliBackend(num_threads=1)(*args)
    assert ref[:4].amax((1, 2, 3)).min() > 0.5 and not out[4:].any()
    diff = (out - ref).abs()
    assert diff.mean() <= 0.1 * LEVEL and diff.max() <= LEVEL


def dot_frames(n: int, rng: np.random.Generator, sigma: float = 1.5) -> tuple[FaceBatch, torch.Tensor]:
    """Blank frames of mixed sizes with random landmarks; frame k has three Gaussian dots, one per channel,
    at landmarks 3k, 3k + 1, 3k + 2 (mod 68). Returns the batch and the dotted indices (n, 3)."""
    sizes = [(100, 130), (140, 90), (120, 120)]
    dotted = (3 * torch.arange(n)[:, None] + torch.arange(3)) % 68
    samples = []
    for k in range(n):
        h, w = sizes[k % len(sizes)]
        centre, half = np.array([w, h]) / 2 + rng.uniform(-8, 8, 2), rng.uniform(22, 28)
        box = np.concatenate([centre - half, centre + half]).astype(np.float32)
        lm = (centre + rng.uniform(-0.6, 0.6, (68, 2)) * half).astype(np.float32)
        yy, xx = np.mgrid[:h, :w]
        image = np.zeros((h, w, 3), np.uint8)
        for c, i in enumerate(dotted[k].tolist()):
            blob = np.exp(-((xx - lm[i, 0]) ** 2 + (yy - lm[i, 1]) ** 2) / (2 * sigma**2))
            image[..., c] = np.round(255 * blob)
        lm3d = np.concatenate([lm, np.zeros((68, 1), np.float32)], 1)
        samples.append(FaceSample(image, box, lm, lm3d, np.zeros(3, np.float32), np.zeros(3, np.float32), (0, k)))
    return collate(samples), dotted


def test_dots_land_on_their_landmarks(device):
    n, size = 23, 64  # odd batch; 69 dots cover all 68 indices
    batch, dotted = dot_frames(n, np.random.default_rng(0))
    batch = batch.to(device)
    aug = FaceAugment(AugmentConfig(out_size=size, grayscale_p=0.0, max_rotation=40.0), backend="dali").to(device)
    params = aug.sample_params(batch, torch.Generator().manual_seed(0))
    identity = AugmentParams.identity(n).to(device)  # colour off: offsets would bias the centroids
    params = replace(params, flip=torch.arange(n, device=device) % 2 == 1, **{
        k: getattr(identity, k) for k in ("brightness", "contrast", "saturation", "hue", "gray")})
    out = aug.apply(batch, params)

    img = out.images.double().cpu()  # (n, 3, S, S): channel c holds the dot of landmark dotted[:, c]
    grid = torch.arange(size, dtype=torch.float64)
    mass = img.sum((2, 3))
    centroid = torch.stack([(img * grid).sum((2, 3)), (img * grid[:, None]).sum((2, 3))], -1) / mass[..., None]
    # A mirrored sample lists source landmark i under output index inverse_table[i] (left <-> right).
    inverse_table = torch.argsort(out.flip_table.cpu())
    index = torch.where(out.flipped.cpu()[:, None], inverse_table[dotted], dotted)
    expected = torch.gather(out.landmarks2d.cpu().double(), 1, index[..., None].expand(-1, -1, 2))
    inside = ((expected > 6) & (expected < size - 7)).all(-1)  # dot wholly in the output
    assert inside.sum() >= 50 and out.flipped.any()
    err = (centroid - expected).norm(dim=-1)[inside]
    assert err.max() < 0.5, err.max()


def test_pipelines_cached_per_key(face_batch):
    backend = DaliBackend(num_threads=1)
    aug = FaceAugment(AugmentConfig(out_size=32, grayscale_p=0.5))
    for n in (3, 3, 2):
        batch = take(face_batch, n)
        params = aug.sample_params(batch, torch.Generator().manual_seed(n))
        for channels in (1, 3):  # grey and colour are different graphs: one pipeline each
            cfg = AugmentConfig(out_size=32, grayscale_p=1.0 if channels == 1 else 0.5)
            backend(batch, aug.matrix(batch, params), params, cfg)
    assert sorted(backend._pipes) == [("cpu", n, 32, c, False) for n in (2, 3) for c in (1, 3)]


def test_missing_dali_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "nvidia.dali" or m.startswith("nvidia.dali.")]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules makes the import fail
    monkeypatch.delitem(sys.modules, "gpuaug.backends.dali_backend")
    with pytest.raises(ImportError, match=r"pip install nvidia-dali-cuda120"):
        FaceAugment(backend="dali")


def test_output_owns_its_memory(face_batch):
    """The frames go in without a copy and the output comes out of DALI's reused buffers: a second call
    must leave the first result as it was."""
    cfg = AugmentConfig(out_size=32, grayscale_p=0.0)
    backend, aug = DaliBackend(num_threads=1), FaceAugment(cfg)
    batch = take(face_batch, 3)
    outs = []
    for seed in (0, 1):
        params = aug.sample_params(batch, torch.Generator().manual_seed(seed))
        outs.append(backend(batch, aug.matrix(batch, params), params, cfg))
    first = outs[0].clone()
    params = aug.sample_params(batch, torch.Generator().manual_seed(2))
    backend(batch, aug.matrix(batch, params), params, cfg)
    assert torch.equal(outs[0], first) and not torch.equal(outs[0], outs[1])
    assert outs[0].is_contiguous() and outs[0].shape == (3, 3, 32, 32)


def test_bad_sample_is_fill(face_batch):
    """A sample with an inf in its box renders as fill on DALI too (its matrix is NaN), with valid False."""
    box = face_batch.bbox.clone()
    box[2, 0] = float("inf")
    batch = replace(face_batch, bbox=box)
    for channels in (1, 3):
        cfg = AugmentConfig(out_size=32, grayscale_p=1.0 if channels == 1 else 0.0)
        out = FaceAugment(cfg, backend="dali")(batch, torch.Generator().manual_seed(0))
        assert out.valid.tolist() == [i != 2 for i in range(len(batch))]
        assert (out.images[2] == 0).all() and out.images[3].any()


def test_camera_ops_run_on_dali_output(face_batch):
    """The camera ops are shared torch passes over whatever a backend rendered, so DALI gets them with the same
    parity as its render (JPEG aside: its 8-bit rounding turns sub-level differences into whole levels)."""
    ops = dict(gamma_p=1.0, gamma=(0.7, 1.5), occluder_p=1.0, occluder_fill=("colour", "texture"), blur_p=1.0,
               motion_blur_p=1.0, low_res_p=1.0, noise_p=1.0, shot_noise_p=1.0)
    cfg = AugmentConfig(out_size=48, grayscale_p=0.5, mean=0.5, std=0.25, **ops)
    ref_aug, dali_aug = kornia_reference(cfg), FaceAugment(cfg, backend="dali")
    params = ref_aug.sample_params(face_batch, torch.Generator().manual_seed(0))
    ref, out = ref_aug.apply(face_batch, params), dali_aug.apply(face_batch, params)
    assert torch.equal(out.occluded, ref.occluded) and out.occluded.any()
    diff = (out.images - ref.images).abs() * 0.25  # back to [0, 1] units
    assert diff.mean() <= 0.1 * LEVEL and diff.max() <= 2 * LEVEL


def test_dali_loader_names_the_camera_ops_it_lacks():
    from gpuaug.dali_loader import DaliFaceLoader

    with pytest.raises(ValueError, match=r"noise_p, jpeg_p"):
        DaliFaceLoader(None, 4, config=AugmentConfig(noise_p=0.5, jpeg_p=0.5))
