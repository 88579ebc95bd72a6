"""The scene ops (gamma, occluders) inside the Triton render, held to the camera chain's torch ops: Triton's
interpreter runs the GPU source on CPU tensors (compiled on CUDA tensors when a GPU is present)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from render_cases import smooth_batch

pytest.importorskip("triton", reason="triton is not installed")

from gpuaug import AugmentConfig, FaceAugment
from gpuaug.backends.torch_backend import TorchBackend, render
from gpuaug.camera.occluders import covers, occluder_table
from gpuaug.camera.ops import fusible_ops
from gpuaug.camera.sample import OCC, OCCLUDER_COLUMNS
from gpuaug.config import OCCLUDER_FILLS

SCENE = dict(gamma_p=0.7, occluder_p=1.0, occluder_max=3, occluder_ellipse_p=0.5, occluder_fill=("colour", "noise"))


def _step(config: AugmentConfig, device: str, seed: int = 0) -> tuple:
    """The same params through the Triton step (scene ops fused) and the eager gather's (the torch chain)."""
    batch = smooth_batch(seed).to(device)
    fused, plain = FaceAugment(config, warp="triton"), FaceAugment(config, warp="gather")
    params = plain.sample_params(batch, torch.Generator().manual_seed(seed))
    return fused.apply(batch, params), plain.apply(batch, params), params


def _painted(params, size: int) -> torch.Tensor:
    """(B, 1, S, S) bool: the pixels an active occluder covers (they show its fill, not the render)."""
    v, u = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    table = occluder_table(params.occluders.cpu())
    return covers(table[:, :, None, None], u, v).any(1, keepdim=True).to(params.occluders.device)


@pytest.mark.parametrize(("scene", "output"), [
    (dict(gamma_p=1.0), dict(grayscale_p=0.5)),
    (dict(SCENE, gamma_p=0.0), dict(grayscale_p=0.5)),
    (SCENE, dict(grayscale_p=0.5)),
    (SCENE, dict(grayscale_p=1.0)),  # grey output (C = 1)
    (SCENE, dict(grayscale_p=0.0, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.25), channels_last=True)),
    (dict(SCENE, occluder_fill=("noise",)), dict(grayscale_p=0.5)),
])
def test_fused_step_matches_the_chain(device: str, scene: dict, output: dict) -> None:
    """Every op of the config in the render (output format included): the step's images are the torch chain's
    to float rounding (gamma's exp and log), and the occluder fills (flat colour, counter noise) exactly."""
    config = AugmentConfig(out_size=20, **scene, **output)
    assert FaceAugment(config, warp="triton").backend.fused_ops(config, torch.device(device)) == fusible_ops(config)
    out, ref, params = _step(config, device)
    torch.testing.assert_close(out.images, ref.images, atol=2e-6, rtol=0)
    if config.occluder_p > 0:
        painted = _painted(params, config.out_size).expand_as(out.images)
        assert painted.any() and not painted.all()
        assert torch.equal(out.images[painted], ref.images[painted])
    assert torch.equal(out.occluded, ref.occluded)


@pytest.mark.parametrize("extra", [dict(blur_p=1.0, noise_p=1.0), dict(occluder_fill=OCCLUDER_FILLS)])
def test_partly_fused_step_matches_the_chain(device: str, extra: dict) -> None:
    """Ops left to the chain (blur and noise after the fused ones; a "texture" fill keeps occluders in the
    chain): still the chain's images, to float rounding."""
    config = AugmentConfig(out_size=20, grayscale_p=0.5, **{**SCENE, **extra})
    fused = fusible_ops(config)
    assert fused == (("gamma",) if "texture" in config.occluder_fill else ("gamma", "occluders"))
    out, ref, _ = _step(config, device, seed=1)
    torch.testing.assert_close(out.images, ref.images, atol=1e-5, rtol=0)


def _slot(cx: float, cy: float, hw: float, hh: float, angle: float = 0.0, ellipse: bool = False,
          fill: str = "colour", rgb: tuple[float, float, float] = (0.9, 0.2, 0.6)) -> list[float]:
    values = dict(active=1.0, ellipse=float(ellipse), cx=cx, cy=cy, half_w=hw, half_h=hh, angle=angle,
                  fill=float(OCCLUDER_FILLS.index(fill)), r=rgb[0], g=rgb[1], b=rgb[2])
    return [values.get(name, 0.0) for name in OCCLUDER_COLUMNS]


@pytest.mark.parametrize("grayscale_p", [0.0, 0.5, 1.0])
def test_occluder_edges_and_overlaps(device: str, grayscale_p: float) -> None:
    """Hand-placed occluders with pixel centres exactly on their edges (a rectangle of integer half sides on a
    pixel, a circle of integer radius through lattice points, a rectangle turned 90 degrees), rotated ones and
    overlapping slots painted in order, colour and noise fills, an inactive slot: per pixel what the torch
    chain draws, on colour and grey samples and grey output."""
    config = AugmentConfig(out_size=21, grayscale_p=grayscale_p, occluder_p=1.0, occluder_max=4,
                           occluder_fill=("colour", "noise"))
    batch = smooth_batch(2).to(device)
    plain = FaceAugment(config, warp="gather")
    params = plain.sample_params(batch, torch.Generator().manual_seed(2))
    slots = [
        [_slot(10, 10, 3, 3), _slot(10, 10, 3, 3, ellipse=True, fill="noise"), _slot(4, 15, 3.5, 1.5, torch.pi / 2),
         _slot(16, 5, 4, 2, 0.7, ellipse=True)],
        [_slot(6, 6, 5, 2, 0.3, fill="noise"), _slot(9, 8, 4, 4, 2.1, rgb=(0.1, 0.8, 0.3)),
         _slot(12, 12, 6, 3, 1.2, ellipse=True), _slot(3, 3, 2, 2)],
    ]
    occ = torch.tensor([slots[i % 2] for i in range(len(batch))], device=device)
    occ[3, 3, OCC["active"]] = 0.0  # inactive: draws nothing
    params = replace(params, occluders=occ, gray=torch.tensor([False, True, False, True], device=device),
                     noise_seed=torch.tensor([5.0, 77.0, 2**24 - 1, 0.0], device=device))
    fused = FaceAugment(config, warp="triton")
    out, ref = fused.apply(batch, params), plain.apply(batch, params)
    painted = _painted(params, 21).expand_as(out.images)
    assert torch.equal(out.images[painted], ref.images[painted])
    torch.testing.assert_close(out.images, ref.images, atol=1e-5, rtol=0)
    # The edge pixels are painted: the 7 x 7 rectangle around (10, 10), the turned one's 3 x 7 around (4, 15).
    assert bool(painted[0, 0, 7:14, 7:14].all()) and bool(painted[0, 0, 12:19, 3:6].all())


def test_identity_scene_is_the_plain_render(device: str) -> None:
    """Gamma 1 and inactive occluders leave the render bit for bit; so does gamma 1 on the samples that draw
    it with the others changed; no scene ops launches the plain kernel."""
    batch = smooth_batch(3).to(device)
    config = AugmentConfig(out_size=16, grayscale_p=0.5, gamma_p=0.5, occluder_p=1.0, occluder_max=2,
                           occluder_fill=("colour", "noise"))
    aug = FaceAugment(config)
    params = aug.sample_params(batch, torch.Generator().manual_seed(3))
    args = (batch, aug.matrix(batch, params), params, config)
    plain = render(*args, warp="triton")
    assert not (params.gamma == 1).all()
    gamma = render(*args, warp="triton", scene=("gamma",))
    same = params.gamma == 1
    assert torch.equal(gamma[same], plain[same]) and not torch.equal(gamma[~same], plain[~same])
    off = replace(params, gamma=torch.ones_like(params.gamma), occluders=torch.zeros_like(params.occluders))
    assert torch.equal(render(*args[:2], off, config, warp="triton", scene=("gamma", "occluders")), plain)


def test_fused_ops_follow_the_warp(device: str) -> None:
    """The ops a torch backend applies itself: only where the Triton kernel renders, only a leading run."""
    config = AugmentConfig(gamma_p=1.0, occluder_p=1.0, occluder_fill=("colour",), blur_p=1.0)
    dev = torch.device(device)
    assert TorchBackend("triton").fused_ops(config, dev) == ("gamma", "occluders")
    assert TorchBackend("gather").fused_ops(config, dev) == ()
    assert TorchBackend("auto").fused_ops(config, dev) == (("gamma", "occluders") if device == "cuda" else ())
    assert fusible_ops(replace(config, gamma_p=0.0)) == ("occluders",)
    assert fusible_ops(replace(config, gamma_p=0.0, occluder_p=0.0)) == ()
